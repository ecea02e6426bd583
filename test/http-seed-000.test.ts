// Seed 000 (binary releases) reproduced over real HTTP against the sidecar serving the sample.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SAMPLE_RELEASES, serveSampleForSuite } from './helpers/sample-site.ts';

const BASE = '/binary/releases/agent-as-code';
const { get } = serveSampleForSuite();
const manifest = async (version: string) => JSON.parse(await readFile(path.join(SAMPLE_RELEASES, 'agent-as-code', `${version}.json`), 'utf8'));

describe('GET /binary/releases/<product>/versions', () => {
  test('lists every version in ascending semver order with the seed envelope', async () => {
    const response = await get(`${BASE}/versions`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^application\/json/);
    assert.deepEqual(await response.json(), { success: true, versions: ['1.0.0', '1.1.0', '1.12.2', '1.13.0-beta.1'], count: 4 });
  });
});

describe('GET /binary/releases/<product>/<major>/<minor>/', () => {
  test('lists the files of every patch of the minor with the seed fields, in order', async () => {
    const response = await get(`${BASE}/1/12/`);
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.deepEqual(Object.keys(body), ['success', 'major', 'minor', 'files', 'count']);
    assert.equal(body.success, true);
    assert.equal(body.major, 1);
    assert.equal(body.minor, 12);
    assert.equal(body.count, 6);
    const release = await manifest('1.12.2');
    assert.deepEqual(
      body.files.slice(0, 3).map((file: { platform: string; architecture: string }) => `${file.platform}/${file.architecture}`),
      ['windows/amd64', 'linux/amd64', 'darwin/arm64'],
    );
    const first = body.files[0];
    assert.deepEqual(Object.keys(first), ['filename', 'version', 'platform', 'architecture', 'size', 'last_modified', 'download_url']);
    assert.deepEqual(first, {
      filename: 'agent_as_code_1.12.2_windows_amd64.zip',
      version: '1.12.2',
      platform: 'windows',
      architecture: 'amd64',
      size: release.artifacts[0].size,
      last_modified: '2024-01-15T10:30:00Z',
      download_url: '/binary/releases/agent-as-code/1/12/agent_as_code_1.12.2_windows_amd64.zip',
    });
  });

  test('a minor with several patches lists all of them', async () => {
    const body = await (await get(`${BASE}/1/13/`)).json();
    assert.deepEqual([...new Set(body.files.map((file: { version: string }) => file.version))], ['1.13.0-beta.1']);
    assert.equal(body.count, body.files.length);
  });

  test('without the trailing slash redirects permanently to it', async () => {
    const response = await get(`${BASE}/1/12`);
    assert.equal(response.status, 301);
    assert.equal(response.headers.get('location'), `${BASE}/1/12/`);
  });
});

describe('GET /binary/releases/<product>/<major>/<minor>/<filename>', () => {
  test('serves the artifact bytes with type, length, ETag and sha256 headers', async () => {
    const release = await manifest('1.12.2');
    for (const artifact of release.artifacts) {
      const response = await get(`${BASE}/1/12/${artifact.filename}`);
      assert.equal(response.status, 200, artifact.filename);
      const bytes = Buffer.from(await response.arrayBuffer());
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      assert.equal(sha256, artifact.sha256);
      assert.equal(bytes.length, artifact.size);
      assert.equal(response.headers.get('content-type'), 'application/zip');
      assert.equal(response.headers.get('content-length'), String(artifact.size));
      assert.equal(response.headers.get('etag'), `"${artifact.sha256}"`);
      assert.equal(response.headers.get('x-checksum-sha256'), artifact.sha256);
      assert.equal(response.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.equal(response.headers.get('content-disposition'), `attachment; filename="${artifact.filename}"`);
    }
  });

  test('an unknown file answers the seed 404 body', async () => {
    const response = await get(`${BASE}/1/12/agent_as_code_1.12.2_plan9_amd64.zip`);
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), { error: 'Not Found', message: 'Binary not found' });
  });

  test('HEAD answers the headers without a body', async () => {
    const release = await manifest('1.12.2');
    const response = await get(`${BASE}/1/12/${release.artifacts[1].filename}`, { method: 'HEAD' });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-length'), String(release.artifacts[1].size));
    assert.equal((await response.arrayBuffer()).byteLength, 0);
  });

  test('If-None-Match with the ETag answers 304', async () => {
    const release = await manifest('1.12.2');
    const url = `${BASE}/1/12/${release.artifacts[0].filename}`;
    const etag = (await get(url)).headers.get('etag')!;
    const response = await get(url, { headers: { 'If-None-Match': `W/"x", ${etag}` } });
    assert.equal(response.status, 304);
    assert.equal(await response.text(), '');
    const changed = await get(url, { headers: { 'If-None-Match': '"other"' } });
    assert.equal(changed.status, 200);
  });

  test('Range answers 206 with the requested bytes, 416 past the end', async () => {
    const release = await manifest('1.12.2');
    const url = `${BASE}/1/12/${release.artifacts[0].filename}`;
    const whole = Buffer.from(await (await get(url)).arrayBuffer());
    const partial = await get(url, { headers: { Range: 'bytes=10-19' } });
    assert.equal(partial.status, 206);
    assert.equal(partial.headers.get('content-range'), `bytes 10-19/${whole.length}`);
    assert.deepEqual(Buffer.from(await partial.arrayBuffer()), whole.subarray(10, 20));
    const suffix = await get(url, { headers: { Range: 'bytes=-5' } });
    assert.deepEqual(Buffer.from(await suffix.arrayBuffer()), whole.subarray(whole.length - 5));
    const beyond = await get(url, { headers: { Range: `bytes=${whole.length + 10}-` } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), `bytes */${whole.length}`);
    const stale = await get(url, { headers: { Range: 'bytes=0-1', 'If-Range': '"stale"' } });
    assert.equal(stale.status, 200);
  });
});

describe('SHA256SUMS', () => {
  test('lists every artifact of the version in sha256sum format', async () => {
    const release = await manifest('1.12.2');
    const response = await get(`${BASE}/1/12/agent_as_code_1.12.2_SHA256SUMS`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^text\/plain/);
    const lines = (await response.text()).trimEnd().split('\n').sort();
    const expected = release.artifacts.map((artifact: { sha256: string; filename: string }) => `${artifact.sha256}  ${artifact.filename}`).sort();
    assert.deepEqual(lines, expected);
  });
});

describe('HTML listings', () => {
  test('a browser gets the product page at the same URL as the JSON, with Vary: Accept', async () => {
    const response = await get(`${BASE}/versions`, { headers: { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(response.headers.get('vary')!, /Accept/);
    const html = await response.text();
    for (const [version, minor] of [['1.0.0', '1/0'], ['1.1.0', '1/1'], ['1.12.2', '1/12'], ['1.13.0-beta.1', '1/13']]) {
      assert.ok(html.includes(`href="${BASE}/${minor}/#v${version}"`), version);
    }
  });

  test('the minor page lists files with size, sha256 and links', async () => {
    const release = await manifest('1.12.2');
    const html = await (await get(`${BASE}/1/12/`, { headers: { Accept: 'text/html' } })).text();
    for (const artifact of release.artifacts) {
      assert.ok(html.includes(`href="${BASE}/1/12/${artifact.filename}"`));
      assert.ok(html.includes(artifact.sha256));
    }
    assert.ok(html.includes(`href="${BASE}/1/12/agent_as_code_1.12.2_SHA256SUMS"`));
  });

  test("a version's page is its section of the minor page", async () => {
    const response = await get(`${BASE}/1.12.2/`, { headers: { Accept: 'text/html' } });
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('location'), `${BASE}/1/12/#v1.12.2`);
    const html = await (await get(`${BASE}/1/12/`, { headers: { Accept: 'text/html' } })).text();
    const section = html.slice(html.indexOf('id="v1.12.2"'));
    assert.match(section, /agent_as_code_1\.12\.2_windows_386\.zip/);
    assert.match(section, /href="https:\/\/github\.com\/example\/agent-as-code\/releases\/tag\/v1\.12\.2"/);
  });

  test('curl-style Accept gets JSON', async () => {
    const response = await get(`${BASE}/versions`, { headers: { Accept: '*/*' } });
    assert.match(response.headers.get('content-type')!, /^application\/json/);
  });
});

describe('methods', () => {
  test('a write to a static path is 405 with Allow; to an unknown path 404', async () => {
    const response = await get(`${BASE}/versions`, { method: 'POST', body: '{}' });
    assert.equal(response.status, 405);
    assert.equal(response.headers.get('allow'), 'GET, HEAD');
    assert.deepEqual(await response.json(), { error: 'Method Not Allowed', message: 'POST is not allowed here; use GET or HEAD' });
    const unknown = await get(`${BASE}/nothing-here`, { method: 'DELETE' });
    assert.equal(unknown.status, 404);
  });
});

