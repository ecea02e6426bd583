// mirror deploy with a CloudFront distribution: the bucket is s3rver over real HTTP; CloudFront and
// its KeyValueStore, which have no emulator, are aws-sdk-client-mock stand-ins that keep state
// and enforce the API's rules (ETags carried forward, at most 50 keys a batch, 50 keys a page).
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import {
  CloudFrontClient,
  CreateInvalidationCommand,
  DescribeFunctionCommand,
  GetDistributionConfigCommand,
  GetFunctionCommand,
  GetInvalidationCommand,
  PublishFunctionCommand,
  TooManyInvalidationsInProgress,
  UpdateFunctionCommand,
} from '@aws-sdk/client-cloudfront';
import { CloudFrontKeyValueStoreClient, DescribeKeyValueStoreCommand, ListKeysCommand, UpdateKeysCommand } from '@aws-sdk/client-cloudfront-keyvaluestore';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { loadCatalog } from '../generator/load/index.ts';
import { loadTemplates } from '../generator/load/templates.ts';
import { deploy } from '../generator/pipeline.ts';
import { createCloudFrontTarget } from '../generator/publish/cloudfront/cloudfront-target.ts';
import { invalidationPaths } from '../generator/publish/cloudfront/edge-plan.ts';
import { cloudFrontFunctionCode } from '../generator/publish/cloudfront/function-code.ts';
import { kvsEntries } from '../generator/publish/cloudfront/kvs-entries.ts';
import { kvsSource } from '../generator/publish/cloudfront/kvs-format.ts';
import { formatPlan } from '../generator/publish/deploy.ts';
import { STATE_KEY, createS3Target } from '../generator/publish/s3-target.ts';
import { render, type RenderedSite } from '../generator/render/index.ts';
import { createFsBlobStore } from '../generator/stores/blob-fs.ts';
import { keysDir, loadSigning, type SigningSettings } from '../generator/trust/index.ts';
import { createKey } from '../generator/trust/keyring.ts';
import { verifyMirror } from '../generator/verify.ts';
import { eventFor, loadFunction, type LoadedFunction } from './helpers/edge-function.ts';
import { CREDENTIALS, startFakeS3, type FakeS3 } from './helpers/s3.ts';
import { SAMPLE_BLOBS, SAMPLE_RELEASES } from './helpers/sample-site.ts';
import { addPatchRelease, runCli } from './helpers/store.ts';

const DISTRIBUTION = 'E2MIRRORTEST';
const FUNCTION = 'mirror-routes';
const KVS_ARN = 'arn:aws:cloudfront::123456789012:key-value-store/0f0e0d0c-aaaa-bbbb-cccc-123456789012';

/** CloudFront and the KeyValueStore as the deploy sees them, with a log of every call in order. */
class FakeEdge {
  entries = new Map<string, string>();
  etag = 1;
  liveCode = 'function handler(event) { return event.request; }';
  developmentCode = this.liveCode;
  functionEtag = 1;
  associated = [KVS_ARN];
  invalidations: string[][] = [];
  /** `TooManyInvalidationsInProgress` answers before one is accepted. */
  busy = 0;
  completes = true;
  calls: string[] = [];
  /** Run after each UpdateKeys batch is applied, before its answer. */
  afterUpdate?: () => Promise<void>;
  /** S3 requests made before each call, to check the order against the bucket. */
  s3Before: number[] = [];
}

let s3: FakeS3;
let edge: FakeEdge;
let work: string;
let store: string;
let bucket: string;
let bucketNumber = 0;
const cloudFront = mockClient(CloudFrontClient);
const keyValueStore = mockClient(CloudFrontKeyValueStoreClient);

function wireEdge(): void {
  const log = (call: string) => {
    edge.calls.push(call);
    edge.s3Before.push(s3.requests.length);
  };
  cloudFront.reset();
  keyValueStore.reset();
  cloudFront.on(GetDistributionConfigCommand).callsFake(() => {
    log('GetDistributionConfig');
    const FunctionAssociations = { Quantity: 1, Items: [{ EventType: 'viewer-request', FunctionARN: `arn:aws:cloudfront::123456789012:function/${FUNCTION}` }] };
    return { ETag: 'D1', DistributionConfig: { DefaultCacheBehavior: { FunctionAssociations } } };
  });
  const summary = () => ({ Name: FUNCTION, FunctionConfig: { Comment: 'routes', Runtime: 'cloudfront-js-2.0', KeyValueStoreAssociations: { Quantity: edge.associated.length, Items: edge.associated.map((KeyValueStoreARN) => ({ KeyValueStoreARN })) } } });
  cloudFront.on(DescribeFunctionCommand).callsFake(({ Stage }) => {
    log(`DescribeFunction ${Stage}`);
    return { ETag: `F${edge.functionEtag}`, FunctionSummary: summary() };
  });
  cloudFront.on(GetFunctionCommand).callsFake(({ Stage }) => {
    log(`GetFunction ${Stage}`);
    return { ETag: `F${edge.functionEtag}`, FunctionCode: Buffer.from(Stage === 'LIVE' ? edge.liveCode : edge.developmentCode) };
  });
  cloudFront.on(UpdateFunctionCommand).callsFake(({ IfMatch, FunctionCode, FunctionConfig }) => {
    log('UpdateFunction');
    assert.equal(IfMatch, `F${edge.functionEtag}`, 'UpdateFunction carries the current ETag');
    assert.equal(FunctionConfig.Runtime, 'cloudfront-js-2.0');
    edge.developmentCode = Buffer.from(FunctionCode).toString('utf8');
    edge.associated = FunctionConfig.KeyValueStoreAssociations.Items.map((item: { KeyValueStoreARN: string }) => item.KeyValueStoreARN);
    return { ETag: `F${++edge.functionEtag}`, FunctionSummary: summary() };
  });
  cloudFront.on(PublishFunctionCommand).callsFake(({ IfMatch }) => {
    log('PublishFunction');
    assert.equal(IfMatch, `F${edge.functionEtag}`, 'PublishFunction carries the ETag UpdateFunction returned');
    edge.liveCode = edge.developmentCode;
    return { FunctionSummary: summary() };
  });
  cloudFront.on(CreateInvalidationCommand).callsFake(({ DistributionId, InvalidationBatch }) => {
    log('CreateInvalidation');
    assert.equal(DistributionId, DISTRIBUTION);
    if (edge.busy > 0) {
      edge.busy--;
      throw new TooManyInvalidationsInProgress({ message: 'Too many invalidations in progress', $metadata: {} });
    }
    assert.equal(InvalidationBatch.Paths.Quantity, InvalidationBatch.Paths.Items.length);
    edge.invalidations.push(InvalidationBatch.Paths.Items);
    return { Invalidation: { Id: `I${edge.invalidations.length}`, Status: 'InProgress' } };
  });
  cloudFront.on(GetInvalidationCommand).callsFake(({ Id }) => {
    log('GetInvalidation');
    return { Invalidation: { Id, Status: edge.completes ? 'Completed' : 'InProgress' } };
  });
  keyValueStore.on(DescribeKeyValueStoreCommand).callsFake(({ KvsARN }) => {
    log('DescribeKeyValueStore');
    assert.equal(KvsARN, KVS_ARN);
    return { ETag: `K${edge.etag}`, KvsARN };
  });
  keyValueStore.on(ListKeysCommand).callsFake(({ MaxResults, NextToken }) => {
    log('ListKeys');
    assert.ok(MaxResults <= 50);
    const keys = [...edge.entries.keys()].sort();
    const start = NextToken ? Number(NextToken) : 0;
    const Items = keys.slice(start, start + MaxResults).map((Key) => ({ Key, Value: edge.entries.get(Key) }));
    return { Items, ...(start + MaxResults < keys.length ? { NextToken: String(start + MaxResults) } : {}) };
  });
  keyValueStore.on(UpdateKeysCommand).callsFake(async ({ IfMatch, Puts = [], Deletes = [] }) => {
    log('UpdateKeys');
    assert.equal(IfMatch, `K${edge.etag}`, 'UpdateKeys carries the ETag forward');
    assert.ok(Puts.length + Deletes.length <= 50 && Puts.length + Deletes.length > 0, `${Puts.length + Deletes.length} keys in one batch`);
    for (const { Key, Value } of Puts) edge.entries.set(Key, Value);
    for (const { Key } of Deletes) edge.entries.delete(Key);
    await edge.afterUpdate?.();
    return { ETag: `K${++edge.etag}` };
  });
}

before(async () => {
  s3 = await startFakeS3();
});
after(async () => {
  await s3.close();
  cloudFront.restore();
  keyValueStore.restore();
});
beforeEach(async () => {
  bucket = `mirror-edge-${++bucketNumber}`;
  await s3.createBucket(bucket);
  work = await mkdtemp(path.join(tmpdir(), 'mirror-edge-deploy-'));
  store = path.join(work, 'releases');
  await cp(SAMPLE_RELEASES, store, { recursive: true });
  await cp(SAMPLE_BLOBS, path.join(work, 'blobs'), { recursive: true });
  s3.requests.length = 0;
  edge = new FakeEdge();
  wireEdge();
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function runDeploy(options: { dryRun?: boolean; kvsArn?: string; timeout?: number; signing?: SigningSettings } = {}) {
  const target = await createS3Target({ bucket, endpoint: s3.endpoint, region: 'us-east-1', clientConfig: { credentials: CREDENTIALS } });
  const cloudfront = await createCloudFrontTarget({
    distributionId: DISTRIBUTION,
    ...(options.kvsArn ? { kvsArn: options.kvsArn } : {}),
    invalidationTimeoutSeconds: options.timeout ?? 30,
    pollSeconds: 1,
    sleep: async () => {},
    clientConfig: { credentials: CREDENTIALS },
  });
  const blobs = createFsBlobStore({ root: path.join(work, 'blobs') });
  return deploy({ releasesDir: store, blobs, target, edge: cloudfront, dryRun: options.dryRun ?? false, delete: true, signing: options.signing });
}

async function routesOf(dir: string): Promise<Map<string, string>> {
  return kvsEntries(render(await loadCatalog(dir), await loadTemplates()).routes);
}

/** The position of the last upload of a site file or artifact among the bucket's requests. */
const lastUpload = () => s3.requests.map((r) => r.method === 'PUT' && !r.key.startsWith('.mirror/')).lastIndexOf(true);
const count = (name: string) => edge.calls.filter((call) => call === name).length;

/** Keys of the files both renders have, with other bytes (bodies may be text or binary). */
function changedFiles(before: RenderedSite, after: RenderedSite): string[] {
  const old = new Map(before.files.map((file) => [file.key, Buffer.from(file.body)]));
  return after.files.filter((file) => old.has(file.key) && !old.get(file.key)!.equals(Buffer.from(file.body))).map((file) => file.key);
}

describe('mirror deploy to CloudFront', () => {
  test('a first deploy fills the store, publishes the function and invalidates nothing new', async () => {
    await runDeploy();
    assert.deepEqual(new Map([...edge.entries].sort()), new Map([...(await routesOf(store))].sort()));
    assert.equal(edge.liveCode, await cloudFrontFunctionCode());
    assert.equal(count('UpdateKeys'), Math.ceil(edge.entries.size / 50));
    assert.deepEqual(edge.invalidations, []);
    assert.ok(edge.s3Before[edge.calls.indexOf('UpdateKeys')]! > lastUpload(), 'the store is written after every upload');
  });

  test('a second deploy with nothing changed trusts its record: no listing, no writes anywhere', async () => {
    await runDeploy();
    edge.calls.length = 0;
    s3.requests.length = 0;
    await runDeploy();
    assert.deepEqual(edge.calls, ['GetDistributionConfig', 'DescribeFunction LIVE', 'GetFunction LIVE', 'DescribeKeyValueStore']);
    assert.deepEqual(s3.requests.map((r) => `${r.method} ${r.key}`), [`GET ${STATE_KEY}`, 'GET .mirror/edge-state.json']);
  });

  test('a new release: its keys into the store after its uploads, then only changed files invalidated, waited for', async () => {
    await runDeploy();
    const before = await routesOf(store);
    const renderedBefore = render(await loadCatalog(store), await loadTemplates());
    await addPatchRelease(store, path.join(work, 'blobs'));
    const after = await routesOf(store);
    const renderedAfter = render(await loadCatalog(store), await loadTemplates());
    edge.calls.length = 0;
    edge.s3Before.length = 0;
    s3.requests.length = 0;
    const { deploy: report } = await runDeploy();

    const changedKeys = [...after].filter(([key, value]) => before.get(key) !== value).map(([key]) => key);
    const unrouted = [...before.keys()].filter((key) => !after.has(key));
    assert.equal(count('UpdateKeys'), Math.ceil(changedKeys.length / 50) + Math.ceil(unrouted.length / 50));
    assert.deepEqual(new Map([...edge.entries].sort()), new Map([...after].sort()));
    assert.equal(count('ListKeys'), 0, 'the record of the store is trusted while its ETag is current');
    assert.equal(count('UpdateFunction'), 0, 'the function is published only when its code changed');

    const newFiles = renderedAfter.files.filter((file) => !renderedBefore.files.some((old) => old.key === file.key)).map((file) => file.key);
    const changed = changedFiles(renderedBefore, renderedAfter).map((key) => `/${key}`).sort();
    assert.ok(changed.includes('/binary/releases/agent-as-code/install.sh') && changed.includes('/homebrew/Formula/agent-as-code.rb'), changed.join(', '));
    assert.deepEqual(edge.invalidations, [changed]);
    assert.ok(edge.invalidations[0]!.every((p) => !p.startsWith('/releases/')), 'artifacts are never invalidated');
    assert.equal(report.invalidation, 'I1');

    // New objects, then the routes to them, then the files that now name them, then the invalidation.
    const update = edge.calls.indexOf('UpdateKeys');
    const invalidation = edge.calls.indexOf('CreateInvalidation');
    const putsBefore = s3.requests.slice(0, edge.s3Before[update]).filter((r) => r.method === 'PUT' && !r.key.startsWith('.mirror/')).map((r) => r.key);
    const putsAfter = s3.requests.slice(edge.s3Before[update]).filter((r) => r.method === 'PUT' && !r.key.startsWith('.mirror/')).map((r) => r.key);
    assert.deepEqual(newFiles, ['binary/releases/agent-as-code/1/12/agent_as_code_1.12.3_SHA256SUMS']);
    assert.deepEqual(putsBefore.sort(), [...newFiles, 'releases/1/12/3/agent_as_code_1.12.3_linux_amd64.zip']);
    assert.deepEqual(putsAfter.map((key) => `/${key}`).sort(), changed);
    assert.ok(edge.s3Before[invalidation]! > lastUpload(), 'the invalidation follows every upload');
    assert.ok(edge.calls.lastIndexOf('GetInvalidation') > invalidation);
  });

  test('deletions wait for the invalidation; one that never completes stops the deploy before them', async () => {
    await addPatchRelease(store, path.join(work, 'blobs'));
    await runDeploy();
    await rm(path.join(store, 'agent-as-code', '1.12.3.json'));
    edge.completes = false;
    s3.requests.length = 0;
    await assert.rejects(runDeploy({ timeout: 2 }), /deploy step "invalidate" failed: Invalidation I\d did not complete within 2 s/);
    assert.ok(!s3.requests.some((r) => r.method === 'POST'), 'nothing was deleted');
    const routed = (url: string) => kvsSource((key) => edge.entries.get(key) ?? null).path(url) !== undefined;
    const release = ['/binary/releases/agent-as-code/1.12.3/', '/binary/releases/agent-as-code/1/12/agent_as_code_1.12.3_linux_amd64.zip'];
    assert.ok(release.every(routed), 'the release is still routed');
    const owed = edge.invalidations.at(-1);
    edge.completes = true;
    s3.requests.length = 0;
    await runDeploy();
    assert.deepEqual(edge.invalidations.at(-1), owed, 'the re-run makes the invalidation it owes, though nothing changed since');
    assert.ok(s3.requests.some((r) => r.method === 'POST'), 'the re-run deletes');
    assert.ok(!release.some(routed), 'and unroutes');
  });

  test('TooManyInvalidationsInProgress is retried until CloudFront accepts', async () => {
    await runDeploy();
    await addPatchRelease(store, path.join(work, 'blobs'));
    edge.busy = 3;
    await runDeploy();
    assert.equal(count('CreateInvalidation'), 4);
    assert.equal(edge.invalidations.length, 1);
  });

  test('a store changed behind the deploy\'s back is listed again and put right', async () => {
    await runDeploy();
    edge.entries.set('/stray', 'f');
    edge.entries.set(':routes', '{}');
    edge.etag++;
    edge.calls.length = 0;
    await runDeploy();
    assert.ok(count('ListKeys') >= Math.ceil((edge.entries.size + 1) / 50));
    assert.deepEqual(new Map([...edge.entries].sort()), new Map([...(await routesOf(store))].sort()));
  });

  test('a store that keeps changing while it is listed stops the deploy before its uploads', async () => {
    keyValueStore.on(DescribeKeyValueStoreCommand).callsFake(({ KvsARN }) => ({ ETag: `K${++edge.etag}`, KvsARN }));
    await assert.rejects(runDeploy(), /KeyValueStore .* kept changing while it was read; is another deploy running\?/);
    assert.equal(s3.requests.filter((r) => r.method === 'PUT').length, 0);
  });

  test('a function running other code, or reading another store, is updated and published', async () => {
    await runDeploy();
    edge.liveCode = 'function handler(event) { return event.request; }';
    await runDeploy();
    assert.equal(edge.liveCode, await cloudFrontFunctionCode());
    edge.associated = ['arn:aws:cloudfront::123456789012:key-value-store/other'];
    edge.calls.length = 0;
    await runDeploy({ kvsArn: KVS_ARN });
    assert.deepEqual(edge.associated, [KVS_ARN]);
    assert.equal(count('PublishFunction'), 1);
  });

  test('--dry-run prints the store keys, the function and the paths, and changes nothing', async () => {
    await runDeploy();
    await addPatchRelease(store, path.join(work, 'blobs'));
    edge.liveCode = 'function handler(event) { return event.request; }';
    edge.calls.length = 0;
    s3.requests.length = 0;
    const { deploy: report } = await runDeploy({ dryRun: true });
    assert.deepEqual(edge.calls.filter((call) => /^(Update|Publish|Create)/.test(call)), []);
    assert.ok(s3.requests.every((r) => r.method === 'GET' || r.method === 'HEAD'));
    const text = formatPlan(report, 'the bucket');
    const before = new Map(edge.entries);
    const after = await routesOf(store);
    const puts = [...after].filter(([key, value]) => before.get(key) !== value).length;
    const unrouted = [...before.keys()].filter((key) => !after.has(key));
    assert.match(text, new RegExp(`KeyValueStore ${KVS_ARN}: ${puts} to put, ${unrouted.length} to delete\n`));
    for (const key of unrouted) assert.ok(text.includes(`\n  delete ${key} (no longer routed)\n`), key);
    assert.match(text, /put ~agent-as-code\/1\/12 \(changed\)/);
    assert.match(text, /function mirror-routes: update and publish \(its code changed\)/);
    assert.match(text, /invalidate \d+ paths:\n( {2}\/\S+\n)*? {2}\/binary\/releases\/agent-as-code\/1\/12\/index\.json\n/);
  });
});

describe('mirror deploy without a distribution', () => {
  test('skips the CloudFront steps and says so; --kvs-arn alone is refused', async () => {
    const env = { AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey, MIRROR_DATA_DIR: work, MIRROR_RELEASES: store };
    const run = await runCli(['deploy', '--bucket', bucket, '--endpoint', s3.endpoint, '--region', 'us-east-1'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^cloudfront: skipped, no --distribution-id given \(routes, function and invalidation left alone\)$/m);
    assert.match(run.stdout, /deployed to s3:\/\/mirror-edge-\d+\/ at http:\/\/127\.0\.0\.1:\d+: \d+ uploaded/);
    assert.deepEqual(edge.calls, []);
    const refused = await runCli(['deploy', '--bucket', bucket, '--endpoint', s3.endpoint, '--kvs-arn', KVS_ARN], env);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--kvs-arn needs --distribution-id/);
  });
});

describe('a deployed mirror served through the function', () => {
  test('passes mirror verify with its keys pinned: bucket, store, function, signatures and snapshot together', async () => {
    const dataDir = path.join(work, 'signer');
    await createKey(keysDir(dataDir), { name: 'Edge releases' });
    const signing = await loadSigning(dataDir, {});
    const { signing: signed } = await runDeploy({ signing });
    assert.ok(signed.snapshot?.resigned, 'the deploy signed a snapshot');
    const code = await cloudFrontFunctionCode();
    assert.equal(edge.liveCode, code);
    const edgeFunction = await loadFunction(work, code, edge.entries);
    // CloudFront in front of the bucket: the function answers, or its rewrite is fetched from s3rver.
    const server = createServer(async (request, response) => {
      const accept = request.headers.accept;
      const result = await edgeFunction.handler(eventFor({ method: request.method!, path: request.url!, headers: accept ? { Accept: accept } : {} }));
      if ('statusCode' in result) {
        response.writeHead(result.statusCode, Object.fromEntries(Object.entries(result.headers).map(([name, entry]) => [name, entry.value])));
        response.end(result.body?.data ?? '');
        return;
      }
      const object = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: decodeURIComponent(result.uri.slice(1)) })).catch(() => undefined);
      if (!object) {
        response.writeHead(502).end(`the function routed to ${result.uri}, which the bucket lacks`);
        return;
      }
      const bytes = Buffer.from(await object.Body!.transformToByteArray());
      response.writeHead(200, { 'content-type': object.ContentType!, 'cache-control': object.CacheControl!, 'x-amz-meta-sha256': object.Metadata!.sha256!, ...(object.ContentDisposition ? { 'content-disposition': object.ContentDisposition } : {}) });
      response.end(bytes);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const keys = Buffer.concat(signing.keyring.active.map((key) => key.publicKey));
      const report = await verifyMirror({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, trust: { keys } });
      assert.deepEqual(report.problems, []);
      assert.match(report.trust ?? '', new RegExp(`^snapshot version ${signed.snapshot!.version}, .*signed by ${signing.keyring.active[0]!.id} \\(keys pinned with --keys\\)`));
      assert.ok(report.counts.signaturesChecked > 0 && report.counts.snapshotFilesChecked > 0);
      const site = render(await loadCatalog(store), await loadTemplates());
      // verify crawls the products' indexes; registry tarballs are listed by the sidecar's API, which it does not read.
      const artifacts = new Set(Object.entries(site.routes.paths).flatMap(([path, target]) => (target.type === 'blob' && !path.startsWith('/agents/') ? [target.blob] : [])));
      assert.equal(report.counts.artifactsChecked, artifacts.size, 'every artifact checked');
      assert.ok(report.counts.redirectsFollowed > 0 && report.counts.checksumFilesChecked > 0, JSON.stringify(report.counts));
      // The same crawl sees a corrupted object behind the CDN.
      const blob = [...artifacts][0]!;
      const head = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: blob }));
      await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: blob, Body: 'corrupted', ContentType: head.ContentType, CacheControl: head.CacheControl, ContentDisposition: head.ContentDisposition, Metadata: head.Metadata }));
      const corrupted = await verifyMirror({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      const file = blob.slice(blob.lastIndexOf('/') + 1);
      assert.ok(corrupted.problems.some((problem) => problem.url.endsWith(file) && /x-amz-meta-sha256/.test(problem.problem)), JSON.stringify(corrupted.problems));
      assert.ok(corrupted.problems.every((problem) => `${problem.url} ${problem.problem}`.includes(file)), JSON.stringify(corrupted.problems));
    } finally {
      server.close();
    }
  });
});

describe('the publish order at the edge', () => {
  /** The object a GET of `path` reaches at the edge now through `edgeFunction`, or undefined (answered by the function, or missing). */
  const reaching = (edgeFunction: LoadedFunction) => async (target: string): Promise<string | undefined> => {
    const result = await edgeFunction.handler(eventFor({ path: target }));
    if ('statusCode' in result) return undefined;
    const object = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: decodeURIComponent(result.uri.slice(1)) })).catch(() => undefined);
    return object ? await object.Body!.transformToString() : undefined;
  };

  /** Runs a deploy, checking after every upload and every store update that the versions and the 1/12 listing name only what the edge serves. */
  async function deployChecked(edgeFunction: LoadedFunction): Promise<void> {
    const reach = reaching(edgeFunction);
    let checks = 0;
    // Collected, not thrown: the checks run inside the S3 proxy and the store's stand-in.
    const broken = new Set<string>();
    const check = async () => {
      const versions = await reach('/binary/releases/agent-as-code/versions');
      for (const version of versions ? (JSON.parse(versions) as { versions: string[] }).versions : []) {
        const page = await edgeFunction.handler(eventFor({ path: `/binary/releases/agent-as-code/${version}/` }));
        if (!('statusCode' in page) || page.statusCode !== 302) broken.add(`versions names ${version}, whose page the edge does not route`);
      }
      const listing = await reach('/binary/releases/agent-as-code/1/12/');
      for (const file of listing ? (JSON.parse(listing) as { files: { download_url: string }[] }).files : []) {
        if ((await reach(file.download_url)) === undefined) broken.add(`the 1/12 listing names ${file.download_url}, which the edge cannot serve`);
      }
      checks++;
    };
    s3.afterPut = check;
    edge.afterUpdate = check;
    try {
      await runDeploy();
    } finally {
      s3.afterPut = undefined;
      edge.afterUpdate = undefined;
    }
    assert.deepEqual([...broken], []);
    assert.ok(checks >= 4, `${checks} checks`);
  }

  test('at every moment, what a client reaches through the function names only what it can download', async () => {
    await runDeploy();
    const edgeFunction = await loadFunction(work, await cloudFrontFunctionCode(), edge.entries);
    await addPatchRelease(store, path.join(work, 'blobs'));
    await deployChecked(edgeFunction);
    assert.ok((await reaching(edgeFunction)('/binary/releases/agent-as-code/1/12/agent_as_code_1.12.3_linux_amd64.zip')) !== undefined);
  });

  test('a release removed stays in its minor\'s value until the listings that named it are invalidated', async () => {
    await addPatchRelease(store, path.join(work, 'blobs'));
    await runDeploy();
    const edgeFunction = await loadFunction(work, await cloudFrontFunctionCode(), edge.entries);
    await rm(path.join(store, 'agent-as-code', '1.12.3.json'));
    edge.calls.length = 0;
    await deployChecked(edgeFunction);
    assert.equal((await reaching(edgeFunction)('/binary/releases/agent-as-code/1/12/agent_as_code_1.12.3_linux_amd64.zip')), undefined);
    assert.deepEqual(new Map([...edge.entries].sort()), new Map([...(await routesOf(store))].sort()));
    assert.ok(edge.calls.indexOf('CreateInvalidation') < edge.calls.lastIndexOf('UpdateKeys'), 'the minor\'s final value goes in after the invalidation');
  });
});

describe('invalidation paths', () => {
  const pages = (n: number) => Array.from({ length: n }, (_, i) => `v2/agent-releases/pages/20/${i + 1}.json`);

  test('one path per changed file, artifacts never passed in', () => {
    assert.deepEqual(invalidationPaths(['index.json', 'binary/releases/p/1/2/index.json'], ['index.json', 'binary/releases/p/1/2/index.json', 'binary/releases/p/versions.json']), ['/binary/releases/p/1/2/index.json', '/index.json']);
  });

  test('a folder where many files changed, and at least half of them, becomes one wildcard', () => {
    assert.deepEqual(invalidationPaths([...pages(30), 'index.json'], [...pages(40), 'index.json']), ['/v2/*', '/index.json']);
    assert.deepEqual(invalidationPaths(pages(30), pages(100)).length, 30, 'under half of the folder: exact paths');
    assert.deepEqual(invalidationPaths(pages(5), pages(5)).length, 5, 'few files: exact paths');
  });

  test('at most 15 wildcards, and a single /* past the limit of paths in flight', () => {
    const folders = Array.from({ length: 20 }, (_, f) => Array.from({ length: 10 }, (_, i) => `f${f}/${i}.json`)).flat();
    const paths = invalidationPaths(folders, folders);
    assert.equal(paths.filter((p) => p.endsWith('*')).length, 15);
    assert.equal(paths.length, 15 + 50);
    const many = Array.from({ length: 4000 }, (_, i) => `d${i}/x.json`);
    assert.deepEqual(invalidationPaths(many, many), ['/*']);
  });
});
