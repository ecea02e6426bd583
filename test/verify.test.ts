// `mirror verify` over real HTTP: the sample mirror passes with counts taken from its manifests; a
// proxy in front of it that corrupts answers gets each corruption reported, and the rest checked.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadCatalog } from '../generator/load/index.ts';
import { REGISTRY_DIRECTORY } from '../generator/load/registry.ts';
import { CHANNELS, resolveChannel, type Artifact } from '../generator/model/catalog.ts';
import { formatVerifyReport, verifyMirror, type VerifyCounts, type VerifyProgressEvent, type VerifyReport } from '../generator/verify.ts';
import { SAMPLE_RELEASES, serveSampleForSuite } from './helpers/sample-site.ts';
import { runCli } from './helpers/store.ts';

const sample = serveSampleForSuite();

const BINARY = '/binary/releases/agent-as-code';
const AGENT = '/v2/agent-releases';

/** What a full verify of the sample must count, worked out from the manifest store. */
async function expectedSampleCounts(): Promise<VerifyCounts & { binaryArtifacts: Artifact[] }> {
  const catalog = await loadCatalog(SAMPLE_RELEASES);
  const binaryReleases = catalog.products.filter((product) => product.layout === 'binary').flatMap((product) => product.releases);
  const agent = catalog.products.find((product) => product.layout === 'agent')!;
  const binaryArtifacts = binaryReleases.flatMap((release) => release.artifacts);
  // Yanked agent releases are left out of the list, so a crawl from the list never meets them.
  const agentArtifacts = agent.releases.filter((release) => release.status === 'active').flatMap((release) => release.artifacts);
  // Each channel's release is downloaded once more through its latest/download redirects.
  const channelArtifacts = CHANNELS.flatMap((channel) => resolveChannel(agent, channel)?.artifacts ?? []);
  const downloaded = [...binaryArtifacts, ...agentArtifacts, ...channelArtifacts];
  return {
    binaryArtifacts,
    artifactsChecked: binaryArtifacts.length + agentArtifacts.length,
    checksumFilesChecked: binaryReleases.length,
    filesDownloaded: downloaded.length,
    bytesDownloaded: downloaded.reduce((sum, artifact) => sum + artifact.size, 0),
    redirectsFollowed: agentArtifacts.length + channelArtifacts.length,
    // The sample site here is built without a signing key: no snapshot, no signatures.
    snapshotFilesChecked: 0,
    signaturesChecked: 0,
  };
}

/** How many release manifests the sample store holds, counted from its folders rather than through the loader. */
async function sampleReleaseManifests(): Promise<number> {
  let count = 0;
  for (const entry of await readdir(SAMPLE_RELEASES, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === REGISTRY_DIRECTORY) continue;
    count += (await readdir(path.join(SAMPLE_RELEASES, entry.name))).filter((file) => file.endsWith('.json') && file !== 'product.json').length;
  }
  return count;
}

async function verifyWithEvents(baseUrl: string, concurrency?: number): Promise<{ report: VerifyReport; downloads: string[] }> {
  const downloads: string[] = [];
  const onProgress = (event: VerifyProgressEvent) => {
    if (event.type === 'download') downloads.push(event.url);
  };
  return { report: await verifyMirror({ baseUrl, concurrency, onProgress }), downloads };
}

describe('mirror verify against the sample mirror', () => {
  test('finds no problem and counts every artifact, SHA256SUMS file, download and redirect', async () => {
    const { binaryArtifacts, ...expected } = await expectedSampleCounts();
    // The counts come through the loader, as the served site does: a release both lost would go unnoticed.
    const catalog = await loadCatalog(SAMPLE_RELEASES);
    assert.equal(catalog.products.flatMap((product) => product.releases).length, await sampleReleaseManifests(), 'every release manifest of the sample store is counted');
    const { report, downloads } = await verifyWithEvents(sample.url());
    assert.deepEqual(report.problems, []);
    assert.deepEqual(report.counts, expected);
    assert.equal(downloads.length, expected.filesDownloaded);
    for (const artifact of binaryArtifacts) {
      assert.ok(downloads.some((url) => url.endsWith(`/${artifact.filename}`)), `${artifact.filename} was downloaded`);
    }
    const summary = `${expected.artifactsChecked} artifacts \\(${expected.filesDownloaded} downloads, ${expected.bytesDownloaded} bytes\\), ${expected.checksumFilesChecked} SHA256SUMS files, ${expected.redirectsFollowed} redirects`;
    assert.match(formatVerifyReport(report), new RegExp(`^verified http://127\\.0\\.0\\.1:\\d+/: ${summary}: no problems\\ntrust: unsigned mirror \\(no /\\.well-known/mirror/keys\\.json\\)[^\\n]*\\n$`));
  });

  test('keeps at most `concurrency` requests in flight', async () => {
    const proxy = await startProxy(sample.url(), {});
    try {
      const { report } = await verifyWithEvents(proxy.url, 2);
      assert.deepEqual(report.problems, []);
      assert.equal(proxy.maxInFlight(), 2);
    } finally {
      await proxy.close();
    }
  });

  test('a 429 with Retry-After is waited out and asked again, not reported', async () => {
    const proxy = await startProxy(sample.url(), {}, { throttleFirst: true });
    try {
      const { report } = await verifyWithEvents(proxy.url, 8);
      assert.deepEqual(report.problems, []);
      const { binaryArtifacts: _binary, ...expected } = await expectedSampleCounts();
      assert.deepEqual(report.counts, expected);
    } finally {
      await proxy.close();
    }
  });

  test('an unreachable mirror is a problem in the report, not an exception', async () => {
    const report = await verifyMirror({ baseUrl: await closedPortUrl() });
    assert.equal(report.problems.length, 1);
    assert.match(report.problems[0]!.problem, /^request failed: fetch failed: .*ECONNREFUSED/);
    assert.match(formatVerifyReport(report), /: 1 problem\n {2}http:\/\/127\.0\.0\.1:\d+\/: request failed/);
  });

  test('a bad base URL or concurrency is refused at the call', async () => {
    await assert.rejects(verifyMirror({ baseUrl: 'releases.example.com' }), { name: 'TypeError', message: /got `releases\.example\.com`/ });
    await assert.rejects(verifyMirror({ baseUrl: sample.url(), concurrency: 0 }), { name: 'TypeError', message: /got `0`/ });
  });
});

describe('mirror verify against a corrupted mirror', () => {
  test('reports each corruption at its URL and still checks everything else', async () => {
    const { binaryArtifacts, ...expected } = await expectedSampleCounts();
    const digest = (filename: string) => binaryArtifacts.find((artifact) => artifact.filename === filename)!.sha256;
    const agentDigest = async (version: string) => (await (await sample.get(`${AGENT}/${version}`)).json()).artifacts.windows.sha256 as string;
    const flipped = `${BINARY}/1/12/agent_as_code_1.12.2_linux_amd64.zip`;
    const missing = `${BINARY}/1/13/agent_as_code_1.13.0-beta.1_windows_amd64.zip`;
    const droppedLine = `${BINARY}/1/1/agent_as_code_1.1.0_SHA256SUMS`;
    const alteredLine = `${BINARY}/1/0/agent_as_code_1.0.0_SHA256SUMS`;
    const notRedirected = `${AGENT}/1.8.2/download?platform=macos&arch=arm64`;
    const misdirected = `${AGENT}/1.8.2/download?platform=windows`;
    const proxy = await startProxy(sample.url(), {
      [flipped]: (answer) => ({ ...answer, body: Buffer.from(answer.body.map((byte, index) => (index === 0 ? byte ^ 0xff : byte))) }),
      [missing]: () => ({ status: 404, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"error":"Not Found","message":"Binary not found"}') }),
      [droppedLine]: (answer) => ({ ...answer, body: Buffer.from(answer.body.toString().split('\n').filter((line) => !line.endsWith('_darwin_arm64.zip')).join('\n')) }),
      [alteredLine]: (answer) => ({ ...answer, body: Buffer.from(answer.body.toString().replace(digest('agent_as_code_1.0.0_linux_amd64.zip'), '0'.repeat(64))) }),
      [notRedirected]: (answer) => ({ status: 200, headers: { 'content-type': 'text/plain' }, body: answer.body }),
      [misdirected]: (answer) => ({ ...answer, headers: { ...answer.headers, location: answer.headers.location!.replaceAll('1.8.2', '1.8.3') } }),
    });
    try {
      const { report, downloads } = await verifyWithEvents(proxy.url);
      const at = (path: string) => report.problems.filter((problem) => problem.url === proxy.url + path).map((problem) => problem.problem);
      const atOnly = (path: string, pattern: RegExp) => {
        assert.equal(at(path).length, 1, `one problem at ${path}: ${JSON.stringify(at(path))}`);
        assert.match(at(path)[0]!, pattern);
      };
      const escapeRegExp = (value: string) => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

      atOnly(flipped, new RegExp(`^expected sha256 ${digest('agent_as_code_1.12.2_linux_amd64.zip')} \\(its X-Checksum-Sha256 header\\), got [0-9a-f]{64}$`));
      atOnly(`${BINARY}/1/12/agent_as_code_1.12.2_SHA256SUMS`, new RegExp(`^expected sha256 [0-9a-f]{64} for agent_as_code_1\\.12\\.2_linux_amd64\\.zip \\(the bytes of ${escapeRegExp(proxy.url + flipped)}\\), got ${digest('agent_as_code_1.12.2_linux_amd64.zip')}$`));
      atOnly(missing, /^expected status 200, got 404$/);
      atOnly(droppedLine, /^expected a line for agent_as_code_1\.1\.0_darwin_arm64\.zip, which .*\/1\/1\/ lists; got none$/);
      atOnly(alteredLine, new RegExp(`^expected sha256 ${digest('agent_as_code_1.0.0_linux_amd64.zip')} for agent_as_code_1\\.0\\.0_linux_amd64\\.zip .*, got 0{64}$`));
      atOnly(notRedirected, /^expected status 302, got 200$/);
      atOnly(misdirected, new RegExp(`^expected sha256 ${await agentDigest('1.8.2')}, got ${await agentDigest('1.8.3')} \\(.*followed to .*/1\\.8\\.3/ScalepadAgent-1\\.8\\.3\\.msi\\)$`));
      assert.equal(report.problems.length, 7, formatVerifyReport(report));

      assert.deepEqual(report.counts, {
        ...expected,
        bytesDownloaded: report.counts.bytesDownloaded,
        filesDownloaded: expected.filesDownloaded - 2,
        redirectsFollowed: expected.redirectsFollowed - 1,
      });
      for (const artifact of binaryArtifacts.filter(({ filename }) => !missing.endsWith(`/${filename}`))) {
        assert.ok(downloads.some((downloaded) => downloaded.endsWith(`/${artifact.filename}`)), `${artifact.filename} was still downloaded`);
      }
      assert.match(formatVerifyReport(report), /: 7 problems\ntrust: unsigned mirror[^\n]*\n( {2}http:\/\/\S+: .+\n){7}$/);
    } finally {
      await proxy.close();
    }
  });

  test('a listing that is not JSON is reported, and the other listings are still crawled', async () => {
    const { binaryArtifacts: _binary, ...expected } = await expectedSampleCounts();
    const listing = `${BINARY}/1/0/`;
    const proxy = await startProxy(sample.url(), {
      [listing]: () => ({ status: 200, headers: { 'content-type': 'text/html' }, body: Buffer.from('<!doctype html><title>Maintenance</title>') }),
    });
    try {
      const { report } = await verifyWithEvents(proxy.url);
      assert.deepEqual(report.problems, [{ url: proxy.url + listing, problem: 'expected a JSON body, got text/html: `<!doctype html><title>Maintenance</title>`' }]);
      // Only agent-as-code's 1.0 listing is hidden; other products' 1.0 listings are still crawled.
      const catalog = await loadCatalog(SAMPLE_RELEASES);
      const hidden = catalog.products.find((product) => product.name === 'agent-as-code')!.releases.filter((release) => release.major === 1 && release.minor === 0);
      assert.ok(hidden.length > 0, 'agent-as-code has 1.0 releases');
      assert.equal(report.counts.artifactsChecked, expected.artifactsChecked - hidden.flatMap((release) => release.artifacts).length);
      assert.equal(report.counts.checksumFilesChecked, expected.checksumFilesChecked - hidden.length);
      assert.equal(report.counts.redirectsFollowed, expected.redirectsFollowed);
    } finally {
      await proxy.close();
    }
  });
});

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Rewrites the upstream answer for one request path (with its query). */
type Corruption = (answer: Answer) => Answer;

interface Proxy {
  url: string;
  maxInFlight(): number;
  close(): Promise<void>;
}

/** A real HTTP proxy in front of `upstream` that passes answers through, or corrupts them. */
async function startProxy(upstream: string, corruptions: Record<string, Corruption>, options: { throttleFirst?: boolean } = {}): Promise<Proxy> {
  const throttled = new Set<string>();
  let inFlight = 0;
  let maxInFlight = 0;
  const server = createServer(async function proxyRequest(request, response) {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    // `finish` comes before the client can read the last byte, so the count never lags the client.
    response.once('finish', () => inFlight--);
    if (options.throttleFirst && !throttled.has(request.url ?? '')) {
      throttled.add(request.url ?? '');
      response.writeHead(429, { 'Retry-After': '1', 'Content-Type': 'application/json' }).end('{"error":"Too Many Requests"}');
      return;
    }
    try {
      const answer = await fetchUpstream(upstream + request.url, request.headers);
      const corrupt = corruptions[request.url ?? ''];
      const { status, headers, body } = corrupt ? corrupt(answer) : answer;
      response.writeHead(status, { ...headers, 'content-length': String(body.length) });
      response.end(body);
    } catch (error) {
      response.writeHead(502).end(String(error));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    maxInFlight: () => maxInFlight,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

/** The whole upstream answer: the sample's files are small. */
async function fetchUpstream(url: string, requestHeaders: IncomingHttpHeaders): Promise<Answer> {
  const response = await fetch(url, { redirect: 'manual', headers: requestHeaders.accept ? { accept: requestHeaders.accept } : {} });
  const headers: Record<string, string> = {};
  for (const [name, value] of response.headers) {
    if (!['content-length', 'transfer-encoding', 'connection', 'keep-alive'].includes(name)) headers[name] = value;
  }
  return { status: response.status, headers, body: Buffer.from(await response.arrayBuffer()) };
}

/** A URL where nothing listens: a port the system handed out, then closed again. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/`;
}

describe('mirror verify (CLI)', () => {
  const site = serveSampleForSuite();
  test('exits 0 and prints the summary for a sound mirror; exits 2 on a bad flag', async () => {
    const ok = await runCli(['verify', '--base-url', site.url()]);
    assert.equal(ok.code, 0, ok.stderr);
    const { artifactsChecked } = await expectedSampleCounts();
    assert.match(ok.stdout, new RegExp(`: ${artifactsChecked} artifacts .*: no problems`));
    const bad = await runCli(['verify', '--base-url', site.url(), '--concurrency', 'many']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^mirror verify: --concurrency expects a positive integer, got "many"/);
  });
});
