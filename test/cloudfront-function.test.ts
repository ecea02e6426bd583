// The CloudFront viewer-request function against the sidecar. A harness runs the generated code
// with a stand-in for the `cloudfront` module, fed from the KeyValueStore entries a deploy writes,
// in front of a stand-in bucket holding the objects a deploy uploads. Every route of the sample
// goes to both, and the answers are compared.
// The same events also run through njs 0.7.9, the engine cloudfront-js-2.0 descends from.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCatalog } from '../generator/load/index.ts';
import { loadTemplates } from '../generator/load/templates.ts';
import { kvsSource } from '../generator/publish/cloudfront/kvs-format.ts';
import { checkKvsLimits, kvsEntries, kvsEntriesOfParts, kvsEntryStream, kvsPart, KvsLimitError, KvsReplayError } from '../generator/publish/cloudfront/kvs-entries.ts';
import { FUNCTION_CODE_LIMIT, cloudFrontFunctionCode } from '../generator/publish/cloudfront/function-code.ts';
import { deployObjects, type DeployObject } from '../generator/publish/deploy-plan.ts';
import { currentBuild, readRoutes } from '../generator/publish/local-dir.ts';
import { render } from '../generator/render/index.ts';
import type { PathTarget, RouteTable } from '../generator/render/route-table.ts';
import { keysDir, loadSigning } from '../generator/trust/index.ts';
import { createKey } from '../generator/trust/keyring.ts';
import { signSite } from '../generator/trust/sign-site.ts';
import { openSignatureCache } from '../generator/trust/signature-cache.ts';
import { eventFor, loadFunction, type CfResult, type LoadedFunction } from './helpers/edge-function.ts';
import { API, BINARY, BROWSER, MSI, ODD_QUERIES, TRAVERSAL, UNKNOWN, ZIP, endpointTargets, send, withoutSlash, type Sent } from './helpers/route-requests.ts';
import { SAMPLE_BLOBS, SAMPLE_RELEASES, startSampleSite, type SampleSite } from './helpers/sample-site.ts';

interface Answer {
  status: number;
  headers: Record<string, string | undefined>;
  body: string;
}

/** The headers the function or the bucket's object metadata decide. */
const COMPARED = ['content-type', 'cache-control', 'location', 'content-disposition', 'allow'];

/** What the viewer receives: the function's response, or the bucket's answer for the rewritten URI. */
async function viewerAnswer(method: string, result: CfResult, objects: Map<string, DeployObject>): Promise<Answer> {
  if ('statusCode' in result) {
    const headers = Object.fromEntries(Object.entries(result.headers).map(([name, entry]) => [name, entry.value]));
    return { status: result.statusCode, headers, body: method === 'HEAD' ? '' : Buffer.from(result.body?.data ?? '').toString('latin1') };
  }
  assert.deepEqual(result.querystring, {}, 'a rewritten request carries no query to the bucket');
  const key = decodeURIComponent(result.uri.slice(1));
  const object = objects.get(key);
  assert.ok(object, `the function rewrote to ${key}, which the bucket lacks`);
  const bytes = object.source.type === 'body' ? Buffer.from(object.source.body) : await readFile(path.join(SAMPLE_BLOBS, object.source.blob));
  return {
    status: 200,
    headers: { 'content-type': object.contentType, 'cache-control': object.cacheControl, 'content-disposition': object.contentDisposition },
    body: method === 'HEAD' ? '' : bytes.toString('latin1'),
  };
}

/** JSON's media type has no charset parameter (RFC 8259); Koa adds one, S3 serves what the deploy set. */
function comparable(answer: Answer): Answer {
  const headers: Record<string, string | undefined> = {};
  for (const name of COMPARED) headers[name] = answer.headers[name];
  if (headers['content-type'] === 'application/json; charset=utf-8') headers['content-type'] = 'application/json';
  return { status: answer.status, headers, body: answer.body };
}

/** A path's target as the edge serves it: every target is an object of the bucket, an artifact its blob. */
function atTheEdge(target: PathTarget): PathTarget {
  if (target.type === 'blob') return { type: 'file', key: target.blob };
  return target;
}

/**
 * A binary minor with what the layout must tell apart: versions that hold one another (1.2.1 and
 * 1.2.10), a pre-release, a release missing a platform, one with a file of another kind, a file
 * without a version, and a name with `*`.
 */
function oddMinor(): RouteTable {
  const folder = '/binary/releases/odd/1/2/';
  const paths: Record<string, PathTarget> = { [folder]: { type: 'file', key: `${folder.slice(1)}index.json`, html: `${folder.slice(1)}index.html` } };
  const release = (patch: string, targets: string[], extra: string[] = []) => {
    const version = `1.2.${patch}`;
    paths[`/binary/releases/odd/${version}/`] = { type: 'redirect', location: `${folder}#v${version}` };
    const sums = `odd_${version}_SHA256SUMS`;
    paths[folder + sums] = { type: 'file', key: folder.slice(1) + sums };
    for (const name of [...targets.map((target) => `odd_${version}_${target}.zip`), ...extra]) {
      paths[folder + name] = { type: 'blob', blob: `releases/1/2/${patch}/${name}`, filename: name, contentType: 'application/zip', size: 1, sha256: '0'.repeat(64) };
    }
  };
  release('1', ['linux_amd64', 'windows_amd64']);
  release('10', ['linux_amd64', 'windows_amd64']);
  release('3-rc.1', ['windows_amd64']);
  release('4', ['linux_amd64'], ['odd-notes.txt']);
  release('6', ['linux_amd64', 'windows_amd64'], ['odd_1.2.6_*.zip']);
  paths[`${folder}odd_1.2.10_linux_amd64.zip.sig`] = { type: 'file', key: `${folder.slice(1)}odd_1.2.10_linux_amd64.zip.1234.sig` };
  return { version: 1, paths, endpoints: [], fallbacks: [{ prefix: '/', shape: 'flat', message: 'Not found' }], errorCacheControl: 'no-store' };
}

const METHODS = ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
const MISSING_ARTIFACTS = [`${BINARY}/1/12/agent_as_code_1.12.2_linux_amd64.tar.gz`, `${BINARY}/1/12/agent_as_code_1.12.2_darwin_amd64.zip.sig`, `${BINARY}/1/12/agent_as_code_1.12.9_linux_amd64.zip`, `${BINARY}/1/12/agent_as_code_1.12.2_plan9_amd64.zip`, `${BINARY}/7/0/agent_as_code_7.0.0_linux_amd64.zip`, `${BINARY}/1/12/agent_as_code_1.12.20_linux_amd64.zip`, `${BINARY}/1/12/agent_as_code_1.12.2_SHA256SUMS.sig`, `${BINARY}/1/12/agent_as_code_1.12.7_SHA256SUMS`, `${BINARY}/1.12.7/`, `${BINARY}/1.12.2-rc.1/`];

/** Every request the comparison sends, with the headers and methods that change answers. */
function allRequests(table: RouteTable): Sent[] {
  const sent: Sent[] = [];
  for (const path of Object.keys(table.paths)) sent.push({ path }, { path, method: 'HEAD' }, { path, headers: { Accept: BROWSER } });
  for (const path of [...withoutSlash(table), ...ODD_QUERIES, ...TRAVERSAL, ...UNKNOWN, ...MISSING_ARTIFACTS]) sent.push({ path });
  for (const path of endpointTargets()) sent.push({ path }, { path, method: 'HEAD' });
  for (const accept of [BROWSER, 'application/json', 'text/html', 'text/html;q=0.5, application/json', 'application/json;q=0.5, text/html', '*/*', 'text/html;q=0', 'TEXT/HTML']) {
    for (const path of ['/', '/binary/releases/', `${BINARY}/`, `${BINARY}/versions`, `${BINARY}/1/12/`, API, `${API}/latest?channel=latest`]) sent.push({ path, headers: { Accept: accept } });
  }
  for (const method of METHODS) for (const path of ['/', ZIP, MSI, `${API}/latest/download?platform=windows`, '/nope', `${API}/nope/x/y`]) sent.push({ path, method });
  return sent;
}

describe('the CloudFront function', () => {
  let dir: string;
  let sidecar: SampleSite;
  let table: RouteTable;
  let objects: Map<string, DeployObject>;
  let entries: Map<string, string>;
  let code: string;
  let edge: LoadedFunction;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mirror-edge-'));
    sidecar = await startSampleSite();
    table = await readRoutes((await currentBuild(sidecar.site))!);
    const site = render(await loadCatalog(SAMPLE_RELEASES), await loadTemplates());
    objects = new Map(deployObjects(site).map((object) => [object.key, object]));
    entries = kvsEntries(table);
    code = await cloudFrontFunctionCode();
    edge = await loadFunction(dir, code, entries);
  });
  after(async () => {
    await sidecar?.close();
    await rm(dir, { recursive: true, force: true });
    assert.deepEqual(sidecar?.errors ?? [], []);
  });

  test('is generic and within CloudFront\'s 10 KB: no catalog data in the code', () => {
    assert.ok(Buffer.byteLength(code) <= FUNCTION_CODE_LIMIT, `${Buffer.byteLength(code)} bytes`);
    for (const word of ['agent-as-code', 'agent-releases', '1.8.3', 'ScalepadAgent']) assert.ok(!code.includes(word), word);
    assert.match(code, /^import \w+ ?from ?"cloudfront";/);
    assert.match(code, /\nasync function handler\(event\)\{return \w+\(event\)\}\n$/);
  });

  test('answers every route of the sample as the sidecar does, reading at most 6 keys a request', async () => {
    for (const sent of allRequests(table)) {
      const method = sent.method ?? 'GET';
      const [expected, result] = await Promise.all([send(sidecar.url, sent), edge.handler(eventFor(sent))]);
      const reads = edge.takeReads();
      const actual = await viewerAnswer(method, result, objects);
      const sidecarAnswer = { status: expected.status, headers: Object.fromEntries(COMPARED.map((name) => [name, expected.headers[name] as string | undefined])), body: expected.body.toString('latin1') };
      assert.deepEqual(comparable(actual), comparable(sidecarAnswer), `${method} ${sent.path} ${JSON.stringify(sent.headers ?? {})}`);
      // A key the store lacks costs two calls: `get` rejects, `exists` tells a miss from a failure.
      assert.ok(reads <= 12, `${sent.path}: ${reads} store calls`);
    }
  });

  test('keeps a binary minor\'s releases in one value: its artifacts, checksum files and release pages have no key of their own', () => {
    const covered = Object.keys(table.paths).filter((path) => /^\/binary\/releases\/agent-as-code\/(\d+\/\d+\/.*|[^/]+\.[^/]+\/)$/.test(path));
    assert.ok(covered.length > 20, `${covered.length} paths`);
    for (const path of covered) assert.ok(!entries.has(path), path);
    for (const [path, target] of Object.entries(table.paths)) if (target.type === 'blob' && !path.startsWith('/binary/')) assert.equal(entries.get(path), `o${target.blob}`);
    const [patches, hash] = entries.get('~agent-as-code/1/13')!.split(':');
    assert.equal(patches, '0-beta.1');
    assert.equal(entries.get(`~#${hash}`), 'faaaa\nagent_as_code_*_/SHA256SUMS/darwin_arm64.zip/linux_amd64.zip/linux_arm64.zip/windows_amd64.zip');
    const [, , hash12] = /^([^:]+):(.+)$/.exec(entries.get('~agent-as-code/1/12')!)!;
    assert.equal(entries.get(`~#${hash12}`), 'faaaaaa\nagent_as_code_*_/SHA256SUMS/darwin_amd64.zip/darwin_arm64.zip/linux_amd64.zip/linux_arm64.zip/windows_386.zip/windows_amd64.zip');
    assert.ok(!entries.has(`${BINARY}/1/13/`), 'the value stands for the minor\'s own listing too');
  });

  test('a minor\'s value reads back as the route table says, signed sites and odd names included, and lists nothing else', async () => {
    const data = await mkdtemp(path.join(dir, 'keys-'));
    await createKey(keysDir(data), { name: 'Edge test' });
    const signing = await loadSigning(data, {});
    const signed = (await signSite(render(await loadCatalog(SAMPLE_RELEASES), await loadTemplates()), { keyring: signing.keyring, cache: await openSignatureCache(undefined), now: new Date(), expirySeconds: signing.expirySeconds })).site.routes;
    const odd = oddMinor();
    for (const routes of [signed, odd]) {
      const stored = kvsEntries(routes);
      const source = kvsSource((key) => stored.get(key) ?? null);
      for (const [url, target] of Object.entries(routes.paths)) assert.deepEqual(source.path(url), atTheEdge(target), url);
      for (const url of [
        `${BINARY}/1/12/agent_as_code_1.12.2_SHA256SUMS.asc`,
        `${BINARY}/1/12/agent_as_code_1.12.20_linux_amd64.zip`,
        `${BINARY}/1/12/agent_as_code_1.12.2_linux_amd64.zip.sha256`,
        `${BINARY}/1/12/agent_as_code_1.12.2_linux_amd64.zi`,
        `${BINARY}/1/12/agent_as_code_1.13.2_linux_amd64.zip`,
        `${BINARY}/1.12.7/`,
        `${BINARY}/1.12.2-rc.1/`,
        '/binary/releases/odd/1/2/odd_1.2.3-rc.1_linux_amd64.zip',
        '/binary/releases/odd/1/2/odd_1.2.4_windows_amd64.zip',
        '/binary/releases/odd/1/2/odd_1.2.100_linux_amd64.zip',
        '/binary/releases/odd/1/2/odd_1.2.1_linux_amd64.zip.sig',
        '/binary/releases/odd/1.2.5/',
      ]) {
        assert.equal(source.path(url), undefined, url);
      }
      const signatures = Object.keys(routes.paths).filter((url) => url.startsWith(`${BINARY}/1/12/`) && url.endsWith('.sig'));
      if (routes === signed) assert.equal(signatures.length, 2, 'the signed sample has the checksum files\' signatures');
      for (const url of signatures) assert.ok(!stored.has(url), `${url} is in its minor's value`);
    }
    const stored = kvsEntries(odd);
    assert.ok(stored.has('/binary/releases/odd/1/2/odd-notes.txt'), 'a file without its release\'s version keeps its key');
    assert.ok(stored.has('/binary/releases/odd/1/2/odd_1.2.6_*.zip'), 'so does a name with the layout\'s `*`');
    assert.deepEqual(stored.get('~odd/1/2')!.split(';').map((group) => group.split(':')[0]).sort(), ['1,6', '10', '3-rc.1', '4'], 'releases with other files are other groups');
  });

  test('read a render\'s parts one at a time, as a build reads its route spill, the entries are the whole table\'s; a minor in two parts is refused', async () => {
    const site = render(await loadCatalog(SAMPLE_RELEASES), await loadTemplates());
    const parts = site.routeParts!;
    assert.ok(parts.length > 3);
    assert.deepEqual(new Map(kvsEntryStream(site.routes, parts)), kvsEntries(site.routes));
    const isListing = (path: string) => /^\/binary\/releases\/[^/]+\/\d+\/\d+\/$/.test(path);
    const minor = parts.findIndex((part) => Object.keys(part).some(isListing));
    const [listing, rest] = [Object.entries(parts[minor]!).filter(([path]) => isListing(path)), Object.entries(parts[minor]!).filter(([path]) => !isListing(path))];
    const split = [...parts.slice(0, minor), Object.fromEntries(listing), Object.fromEntries(rest), ...parts.slice(minor + 1)];
    assert.throws(() => [...kvsEntryStream(site.routes, split)], /The paths of \/binary\/releases\/[^ ]+ come from two parts of the route table/);
  });

  test('each part\'s entries, made on their own (kept in a render memo), replay to the stream\'s in order; files shared under one key with other files are refused', async () => {
    const renderedSample = render(await loadCatalog(SAMPLE_RELEASES), await loadTemplates());
    const parts = renderedSample.routeParts!;
    const kept = parts.map(kvsPart);
    assert.deepEqual([...kvsEntriesOfParts(renderedSample.routes, kept)], [...kvsEntryStream(renderedSample.routes, parts)]);
    // The replay leaves out what an earlier part shared: the sample's minors share their files' groups.
    const sharing = kept.filter((part) => part.entries.some(([, , shared]) => shared));
    assert.ok(sharing.length >= 2, `parts with shared files: ${sharing.length}`);
    const [key, value] = sharing[0]!.entries.find(([, , shared]) => shared)!;
    assert.ok(sharing.slice(1).some((part) => part.entries.some(([other, files]) => other === key && files === value)), 'a later part names the same shared files');
    assert.throws(() => [...kvsEntriesOfParts(renderedSample.routes, [...kept, { folders: [], entries: [[key, `${value}x`, 1]] }])], KvsReplayError);
    assert.throws(() => [...kvsEntriesOfParts(renderedSample.routes, [...kept, { folders: [kept.find((part) => part.folders.length > 0)!.folders[0]!], entries: [] }])], /come from two parts of the route table/);
  });

  test('the store\'s limits are checked: key, value and total size, with the offender named', () => {
    assert.ok(checkKvsLimits(entries) < 64 * 1024);
    assert.throws(() => checkKvsLimits(new Map([[`/${'k'.repeat(600)}`, 'f']])), (error: Error) => error instanceof KvsLimitError && /key `\/k+…` is 601 bytes, over 512/.test(error.message));
    assert.throws(() => checkKvsLimits(new Map([['/big', `o${'v'.repeat(1100)}`]])), /the value of `\/big` is 1101 bytes, over 1024/);
    const full = new Map(Array.from({ length: 6000 }, (_, i) => [`/${String(i).padStart(400, '0')}`, `o${'v'.repeat(500)}`] as [string, string]));
    assert.throws(() => checkKvsLimits(full), /6000 entries take \d+ bytes, over the store's 5242880/);
  });

  const njsMissing = spawnSync('njs', ['-v']).status === 0 ? false : 'the njs command-line tool is not installed (Debian package njs)';

  test('njs 0.7.9 runs the same code to the same results', { skip: !process.env.CI && njsMissing }, async () => {
    assert.equal(njsMissing, false, njsMissing || '');
    const events = allRequests(table).map(eventFor);
    const njsDir = path.join(dir, 'njs');
    await mkdir(njsDir);
    await writeFile(path.join(njsDir, 'kvs.json'), JSON.stringify(Object.fromEntries(entries)));
    await writeFile(path.join(njsDir, 'events.json'), JSON.stringify(events));
    await writeFile(path.join(njsDir, 'cloudfront'), [
      "import fs from 'fs';",
      `const entries = JSON.parse(fs.readFileSync(${JSON.stringify(path.join(njsDir, 'kvs.json'))}));`,
      'const own = (key) => Object.prototype.hasOwnProperty.call(entries, key);',
      "const store = { get: async function (key) { if (!own(key)) throw new Error('not found'); return entries[key]; }, exists: async function (key) { return own(key); } };",
      'export default { kvs: () => store };',
    ].join('\n'));
    await writeFile(path.join(njsDir, 'function.js'), `${code}\nexport default handler;\n`);
    await writeFile(path.join(njsDir, 'main.js'), [
      "import fs from 'fs';",
      "import handler from 'function.js';",
      `const events = JSON.parse(fs.readFileSync(${JSON.stringify(path.join(njsDir, 'events.json'))}));`,
      'async function run() {',
      '  const results = [];',
      '  for (let i = 0; i < events.length; i++) {',
      '    const result = await handler(events[i]);',
      '    results.push(result);',
      '  }',
      `  fs.writeFileSync(${JSON.stringify(path.join(njsDir, 'results.json'))}, JSON.stringify(results));`,
      '}',
      'run();',
    ].join('\n'));
    const run = spawnSync('njs', ['-t', 'module', '-p', njsDir, path.join(njsDir, 'main.js')], { encoding: 'utf8' });
    assert.equal(run.status, 0, `njs exited ${run.status}: ${run.stdout}${run.stderr}`);
    const fromNjs = JSON.parse(await readFile(path.join(njsDir, 'results.json'), 'utf8')) as CfResult[];
    const fromNode: CfResult[] = [];
    for (const event of allRequests(table).map(eventFor)) fromNode.push(await edge.handler(event));
    assert.equal(fromNjs.length, fromNode.length);
    for (let i = 0; i < events.length; i++) assert.deepEqual(fromNjs[i], JSON.parse(JSON.stringify(fromNode[i])), `${events[i]!.request.method} ${events[i]!.request.uri}`);
  });
});
