// Seeds 001 (download redirects) and 002 (agent releases) reproduced over real HTTP.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { SAMPLE_RELEASES, serveSampleForSuite } from './helpers/sample-site.ts';

const API = '/v2/agent-releases';
const { get } = serveSampleForSuite();
const manifest = async (version: string) => JSON.parse(await readFile(path.join(SAMPLE_RELEASES, 'scalepad-agent', `${version}.json`), 'utf8'));
interface ManifestArtifact {
  platform: string;
  arch: string;
  filename: string;
  size: number;
  sha256: string;
}
const artifactOf = (release: { artifacts: ManifestArtifact[] }, platform: string, arch: string) =>
  release.artifacts.find((artifact) => artifact.platform === platform && artifact.arch === arch)!;

async function expectError(url: string, status: number, code: string, details?: Record<string, unknown>) {
  const response = await get(url);
  assert.equal(response.status, status, url);
  const body = await response.json();
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error), ['code', 'message', 'details']);
  assert.equal(body.error.code, code);
  assert.equal(typeof body.error.message, 'string');
  if (details) assert.deepEqual(body.error.details, details);
  return body.error;
}

describe('GET /v2/agent-releases/latest/download (seed 001)', () => {
  test('redirects to the stable Windows artifact by default', async () => {
    const response = await get(`${API}/latest/download?platform=windows`);
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('location'), '/downloads/agent/windows/1.8.3/ScalepadAgent-1.8.3.msi');
  });

  test('channel=latest resolves to the prerelease; channel=stable skips it', async () => {
    const latest = await get(`${API}/latest/download?channel=latest&platform=macos&arch=arm64`);
    assert.equal(latest.headers.get('location'), '/downloads/agent/macos/arm64/1.9.0-rc.1/ScalepadAgent-1.9.0-rc.1.pkg');
    const stable = await get(`${API}/latest/download?channel=stable&platform=macos&arch=arm64`);
    assert.equal(stable.headers.get('location'), '/downloads/agent/macos/arm64/1.8.3/ScalepadAgent-1.8.3.pkg');
  });

  test('the redirect target serves the bytes the release lists', async () => {
    const release = await manifest('1.8.3');
    for (const [query, platform, arch] of [
      ['platform=windows', 'windows', 'amd64'],
      ['platform=macos&arch=arm64', 'darwin', 'arm64'],
      ['platform=macos&arch=x86_64', 'darwin', 'amd64'],
    ] as const) {
      const location = (await get(`${API}/latest/download?${query}`)).headers.get('location')!;
      const bytes = Buffer.from(await (await get(location)).arrayBuffer());
      assert.equal(createHash('sha256').update(bytes).digest('hex'), artifactOf(release, platform, arch).sha256, query);
    }
  });

  test('400 for macOS without arch, unknown platform, arch, channel, parameter, or arch on Windows', async () => {
    await expectError(`${API}/latest/download?platform=macos`, 400, 'invalid_request', { parameter: 'arch', value: null });
    await expectError(`${API}/latest/download?platform=linux`, 400, 'invalid_request', { parameter: 'platform', value: 'linux' });
    await expectError(`${API}/latest/download?platform=macos&arch=ppc`, 400, 'invalid_request', { parameter: 'arch', value: 'ppc' });
    await expectError(`${API}/latest/download?channel=nightly&platform=windows`, 400, 'invalid_request', { parameter: 'channel', value: 'nightly' });
    await expectError(`${API}/latest/download?platform=windows&flavour=x`, 400, 'invalid_request', { parameter: 'flavour', value: 'x' });
    await expectError(`${API}/latest/download?platform=windows&arch=arm64`, 400, 'invalid_request', { parameter: 'arch', value: 'arm64' });
    await expectError(`${API}/latest/download?platform=windows&platform=macos`, 400, 'invalid_request', { parameter: 'platform', value: 'macos' });
    await expectError(`${API}/latest/download`, 400, 'invalid_request', { parameter: 'platform', value: null });
  });
});

describe('GET /v2/agent-releases/{version}/download (seed 001)', () => {
  test('redirects per platform and architecture, as in the seed examples', async () => {
    const windows = await get(`${API}/1.8.3/download?platform=windows`);
    assert.equal(windows.status, 302);
    assert.equal(windows.headers.get('location'), '/downloads/agent/windows/1.8.3/ScalepadAgent-1.8.3.msi');
    const mac = await get(`${API}/1.8.3/download?platform=macos&arch=x86_64`);
    assert.equal(mac.headers.get('location'), '/downloads/agent/macos/x86_64/1.8.3/ScalepadAgent-1.8.3.pkg');
  });

  test('404 with the seed body for an unknown version, naming version, platform and arch', async () => {
    const error = await expectError(`${API}/1.8.4/download?platform=macos&arch=x86_64`, 404, 'not_found', { version: '1.8.4', platform: 'macos', arch: 'x86_64' });
    assert.equal(error.message, 'Agent release not found');
    const windows = await expectError(`${API}/9.9.9/download?platform=windows`, 404, 'not_found', { version: '9.9.9', platform: 'windows', arch: null });
    assert.equal(windows.message, 'Agent release not found');
  });

  test('validation comes before lookup: a bad query on an unknown version is a 400', async () => {
    await expectError(`${API}/9.9.9/download?platform=macos`, 400, 'invalid_request');
  });
});

describe('GET /v2/agent-releases (seed 002 list)', () => {
  test('pages newest first with the documented envelope', async () => {
    const response = await get(API);
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.deepEqual(Object.keys(body), ['data', 'pagination']);
    assert.deepEqual(body.data.map((release: { version: string }) => release.version), ['1.9.0-rc.1', '1.8.3', '1.8.2']);
    assert.deepEqual(body.data.map((release: { channel: string }) => release.channel), ['latest', 'stable', 'stable']);
    assert.deepEqual(body.pagination, { page: 1, limit: 20, total_items: 3, total_pages: 1, next: null, prev: null });
  });

  test('page and limit select a page; links point to neighbours', async () => {
    const body = await (await get(`${API}?limit=10&page=1`)).json();
    assert.equal(body.pagination.limit, 10);
    assert.equal(body.data.length, 3);
  });

  test('invalid page or limit is a 400; a page past the end is a 404', async () => {
    await expectError(`${API}?page=0`, 400, 'invalid_request', { parameter: 'page', value: '0' });
    await expectError(`${API}?page=abc`, 400, 'invalid_request', { parameter: 'page', value: 'abc' });
    await expectError(`${API}?limit=7`, 400, 'invalid_request', { parameter: 'limit', value: '7' });
    await expectError(`${API}?page=2`, 404, 'not_found', { page: '2', limit: '20' });
  });
});

describe('GET /v2/agent-releases/latest and /{version} (seed 002)', () => {
  test('latest resolves per channel, stable by default', async () => {
    assert.equal((await (await get(`${API}/latest`)).json()).version, '1.8.3');
    const latest = await (await get(`${API}/latest?channel=latest`)).json();
    assert.equal(latest.version, '1.9.0-rc.1');
    assert.equal(latest.channel, 'latest');
    await expectError(`${API}/latest?channel=beta`, 400, 'invalid_request', { parameter: 'channel', value: 'beta' });
  });

  test('one release is the AgentRelease DTO with embedded AgentArtifacts', async () => {
    const release = await manifest('1.8.3');
    const response = await get(`${API}/1.8.3`);
    assert.equal(response.status, 200);
    const dto = (platform: string, arch: string, query: string) => {
      const artifact = artifactOf(release, platform, arch);
      return {
        filename: artifact.filename,
        content_type: 'application/octet-stream',
        size_bytes: artifact.size,
        sha256: artifact.sha256,
        download_url: `/v2/agent-releases/1.8.3/download?${query}`,
      };
    };
    const expected = {
      channel: 'stable',
      version: '1.8.3',
      published_at: '2026-02-24T21:23:53.082Z',
      notes_url: 'https://github.com/Scalepad/scalepad-agent/releases/tag/v1.8.3',
      artifacts: {
        windows: dto('windows', 'amd64', 'platform=windows'),
        macos: { arm64: dto('darwin', 'arm64', 'platform=macos&arch=arm64'), x86_64: dto('darwin', 'amd64', 'platform=macos&arch=x86_64') },
      },
    };
    const body = await response.json();
    assert.deepEqual(body, expected);
    assert.deepEqual(Object.keys(body), Object.keys(expected));
    assert.deepEqual(Object.keys(body.artifacts.windows), Object.keys(expected.artifacts.windows));
  });

  test('an unknown version is a 404 naming it', async () => {
    const error = await expectError(`${API}/2.0.0`, 404, 'not_found', { version: '2.0.0' });
    assert.equal(error.message, 'Agent release not found');
  });

  test('each download_url of a release redirects to the bytes with the listed sha256', async () => {
    const body = await (await get(`${API}/1.9.0-rc.1`)).json();
    const artifacts = [body.artifacts.windows, body.artifacts.macos.arm64, body.artifacts.macos.x86_64];
    for (const artifact of artifacts) {
      const redirect = await get(artifact.download_url);
      assert.equal(redirect.status, 302);
      const file = await get(redirect.headers.get('location')!);
      assert.equal(file.headers.get('content-type'), 'application/octet-stream');
      const bytes = Buffer.from(await file.arrayBuffer());
      assert.equal(bytes.length, artifact.size_bytes);
      assert.equal(createHash('sha256').update(bytes).digest('hex'), artifact.sha256);
    }
  });
});
