// The example CloudFormation stack: nothing here can deploy it, so the test holds it to the
// contract the deploy, the function and the generator rely on, and runs its placeholder code.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parseDocument } from 'yaml';

// A parsed template is untyped by nature; a wrong path fails the assertion that reads it.
type Node = any;

const ALL_METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'POST', 'PATCH', 'DELETE'];
const CACHING_OPTIMIZED = '658327ea-f89d-4fab-a63d-7e88639e58f6';
const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';
// Only the attributes this template reads; a typo in one fails only at stack creation otherwise.
const ATTRIBUTES: Record<string, string[]> = {
  'AWS::S3::Bucket': ['Arn', 'DomainName', 'RegionalDomainName'],
  'AWS::CloudFront::KeyValueStore': ['Arn', 'Id', 'Status'],
  'AWS::CloudFront::Function': ['FunctionARN', 'Stage'],
  'AWS::CloudFront::Distribution': ['DomainName', 'Id'],
};

const doc = parseDocument(readFileSync(new URL('../templates/aws/distribution.yaml', import.meta.url), 'utf8'));
const template: Node = doc.toJS();
const resources: Record<string, Node> = template.Resources;
const distribution: Node = resources.Distribution.Properties.DistributionConfig;

/** Every Ref, Fn::GetAtt and Fn::Sub variable in the document, with where it was found. */
function references(node: Node, at: string, found: { at: string; name: string; attribute?: string }[] = []) {
  if (Array.isArray(node)) node.forEach((item, i) => references(item, `${at}[${i}]`, found));
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'Ref') found.push({ at, name: value as string });
      else if (key === 'Fn::GetAtt') {
        const [name, attribute] = Array.isArray(value) ? value : String(value).split(/\.(.*)/);
        found.push({ at, name, attribute });
      } else if (key === 'Fn::Sub') {
        const [text, locals = {}] = (Array.isArray(value) ? value : [value]) as [string, object?];
        for (const [, variable = ''] of text.matchAll(/\$\{([^!}][^}]*)\}/g)) {
          const [name = '', attribute] = variable.split(/\.(.*)/);
          if (!(name in locals)) found.push({ at, name, attribute: name.startsWith('AWS::') ? undefined : attribute });
        }
      }
      references(value, `${at}.${key}`, found);
    }
  }
  return found;
}

describe('templates/aws/distribution.yaml', () => {
  test('parses as plain YAML', () => {
    // Short tags (!Ref) would read as plain strings, with only a warning, and lose their meaning.
    assert.deepEqual([...doc.errors, ...doc.warnings].map((e) => e.message), [], 'no YAML errors or unknown tags');
  });

  test('every reference names a parameter, resource or pseudo parameter, and a real attribute', () => {
    const refs = references(template, '$');
    assert.ok(refs.length > 10, 'the walk finds the references');
    for (const { at, name, attribute } of refs) {
      const defined = name in (template.Parameters ?? {}) || name in resources || /^AWS::(Region|AccountId|StackName|Partition|URLSuffix)$/.test(name);
      assert.ok(defined, `${at} refers to ${name}, which the template does not define`);
      if (attribute === undefined) continue;
      assert.ok(ATTRIBUTES[resources[name]?.Type]?.includes(attribute), `${at} reads ${name}.${attribute}, not an attribute of ${resources[name]?.Type}`);
    }
  });

  test('the bucket is private and readable only by this distribution, without ListBucket', () => {
    const bucket = resources.SiteBucket.Properties;
    assert.deepEqual(bucket.PublicAccessBlockConfiguration, { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true }, 'all public access blocked');
    const policy = resources.SiteBucketPolicy.Properties.PolicyDocument;
    // Least privilege: CloudFront only reads the objects the function routes to.
    assert.ok(!JSON.stringify(policy).includes('ListBucket'), 'the policy grants no s3:ListBucket');
    const statements: Node[] = policy.Statement;
    assert.equal(statements.length, 1, 'one statement, nothing else granted');
    const [only] = statements;
    assert.deepEqual([only.Action].flat(), ['s3:GetObject'], 'only s3:GetObject');
    assert.deepEqual(only.Principal, { Service: 'cloudfront.amazonaws.com' }, 'granted to the CloudFront service only');
    assert.deepEqual(only.Condition, { StringEquals: { 'AWS:SourceArn': { 'Fn::Sub': 'arn:aws:cloudfront::${AWS::AccountId}:distribution/${Distribution}' } } }, 'and only for this distribution');
  });

  test('the default behaviour reads the bucket through OAC, behind the routing function', () => {
    const site = distribution.Origins.find((o: Node) => o.Id === 'site');
    assert.deepEqual(site.OriginAccessControlId, { Ref: 'OriginAccessControl' }, 'the S3 origin signs with the OAC');
    assert.equal(site.S3OriginConfig.OriginAccessIdentity, '', 'no legacy OAI beside the OAC');
    const behaviour = distribution.DefaultCacheBehavior;
    assert.equal(behaviour.TargetOriginId, 'site');
    assert.equal(behaviour.CachePolicyId, CACHING_OPTIMIZED, 'managed CachingOptimized');
    // With fewer, CloudFront itself refuses the rest (403), without the sidecar's 405 and Allow.
    assert.deepEqual([...behaviour.AllowedMethods].sort(), [...ALL_METHODS].sort(), 'all seven methods reach the function');
    assert.deepEqual(behaviour.FunctionAssociations, [{ EventType: 'viewer-request', FunctionARN: { 'Fn::GetAtt': ['RouteFunction', 'FunctionARN'] } }]);
    assert.equal(distribution.DefaultRootObject, undefined, 'the function routes /, not a root object');
  });

  test('the API and uploads go to the sidecar, uncached', () => {
    assert.equal(distribution.Origins.find((o: Node) => o.Id === 'sidecar')?.CustomOriginConfig?.OriginProtocolPolicy, 'https-only');
    const behaviours: Node[] = distribution.CacheBehaviors;
    assert.deepEqual(behaviours.map((b) => b.PathPattern), ['/api/*', '*/upload']);
    for (const b of behaviours) {
      assert.equal(b.TargetOriginId, 'sidecar', `${b.PathPattern} goes to the sidecar`);
      assert.equal(b.CachePolicyId, CACHING_DISABLED, `${b.PathPattern} is never cached`);
      assert.deepEqual([...b.AllowedMethods].sort(), [...ALL_METHODS].sort(), `${b.PathPattern} takes writes`);
      assert.equal(b.FunctionAssociations, undefined, `${b.PathPattern} bypasses the routing function`);
    }
  });

  test('no custom error responses: they would replace the sidecar\'s error bodies as well', () => {
    assert.equal(distribution.CustomErrorResponses, undefined);
  });

  test('the function runs cloudfront-js-2.0 with the KeyValueStore the deploy writes', () => {
    const config = resources.RouteFunction.Properties.FunctionConfig;
    assert.equal(config.Runtime, 'cloudfront-js-2.0', 'KeyValueStore access needs the 2.0 runtime');
    assert.deepEqual(config.KeyValueStoreAssociations, [{ KeyValueStoreARN: { 'Fn::GetAtt': ['RouteStore', 'Arn'] } }]);
  });

  test('the placeholder code answers 503 until the first deploy replaces it', () => {
    const code: string = resources.RouteFunction.Properties.FunctionCode;
    const handler = new Function(`${code}; return handler;`)() as (event: unknown) => Node;
    const answer = handler({ request: { uri: '/', method: 'GET', headers: {}, querystring: {} } });
    assert.equal(answer.statusCode, 503, 'the placeholder answers 503');
    assert.deepEqual(JSON.parse(answer.body.data), { error: 'Service Unavailable', message: 'The mirror has not been deployed yet' });
  });
});
