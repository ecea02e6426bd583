// The upload API of seed 000 over real HTTP: the seed's own curl example, raw streamed bodies, every
// refusal in the seed's error shape with nothing changed, concurrent writers, and the JSON
// download envelope.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { listFiles, sha256 } from './helpers/store.ts';
import { startUploadSite, type UploadSite } from './helpers/upload-site.ts';

const run = promisify(execFile);
const BASE = '/binary/releases/agent-as-code';
const UPLOAD = `${BASE}/1/14/upload`;

let site: UploadSite;
before(async () => {
  site = await startUploadSite({ maxBytes: 64 * 1024, envelopeMaxBytes: 32 * 1024 });
});
after(async () => {
  await site.close();
  assert.deepEqual(site.errors.filter((error) => !/injected/.test(String(error))), []);
});

function zipBytes(size = 2000): Buffer {
  return Buffer.concat([Buffer.from('PK\x03\x04'), randomBytes(size - 4)]);
}

async function post(pathname: string, body: BodyInit, headers: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(`${site.url}${pathname}`, { method: 'POST', body, headers, duplex: 'half' } as RequestInit);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

async function postJson(body: unknown, { token, pathname = UPLOAD }: { token?: string | null; pathname?: string } = {}) {
  const bearer: Record<string, string> = token === null ? {} : { Authorization: `Bearer ${token ?? (await site.token())}` };
  return post(pathname, typeof body === 'string' ? body : JSON.stringify(body), { 'Content-Type': 'application/json', ...bearer });
}

/** A POST whose target goes out exactly as written: fetch() would resolve `..` first. */
async function rawPost(target: string, body: string): Promise<{ status: number; body: any }> {
  const { hostname, port } = new URL(site.url);
  const token = await site.token();
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path: target, method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` } }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function listing(major: number, minor: number): Promise<{ files: { filename: string; size: number }[] } | undefined> {
  const response = await fetch(`${site.url}${BASE}/${major}/${minor}/`);
  return response.status === 200 ? ((await response.json()) as { files: { filename: string; size: number }[] }) : undefined;
}

/** Every file of the store, the blob store (staging included) and the site build, with its hash. */
async function snapshot(): Promise<Record<string, string>> {
  const state: Record<string, string> = {};
  for (const [root, label] of [[site.releasesDir, 'releases'], [site.blobsDir, 'blobs']] as const) {
    for (const file of await listFiles(root)) state[`${label}/${file}`] = sha256(await readFile(path.join(root, file)));
  }
  state.site = (await fetch(`${site.url}/binary/releases/agent-as-code/versions`).then((r) => r.text())) + (await fetch(`${site.url}${BASE}/1/12/`).then((r) => r.text()));
  return state;
}

describe('POST /binary/releases/<product>/<major>/<minor>/upload', () => {
  test('the seed\'s curl example: the seed\'s response, then listed, downloadable and in SHA256SUMS', async () => {
    const file = path.join(site.dir, 'agent_as_code_1.14.0_linux_amd64.zip');
    const bytes = zipBytes(5000);
    await writeFile(file, bytes);
    const token = await site.token('ci-release');
    const { stdout } = await run('bash', ['-c', `curl -sS -X POST -H "Authorization: Bearer ${token}" -H "Content-Type: application/json" -d '{"version": "1.14.0", "platform": "linux", "architecture": "amd64", "file_data": "'$(base64 -w 0 "${file}")'"}' "${site.url}${UPLOAD}"`]);
    const answer = JSON.parse(stdout);
    assert.match(answer.release.uploaded_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(answer, {
      success: true,
      message: 'Binary uploaded successfully',
      release: {
        version: '1.14.0',
        major: 1,
        minor: 14,
        patch: 0,
        platform: 'linux',
        architecture: 'amd64',
        filename: 'agent_as_code_1.14.0_linux_amd64.zip',
        s3_key: 'releases/1/14/0/agent_as_code_1.14.0_linux_amd64.zip',
        file_size: 5000,
        content_type: 'application/zip',
        uploaded_at: answer.release.uploaded_at,
        checksum: sha256(bytes),
        download_url: `${BASE}/1/14/agent_as_code_1.14.0_linux_amd64.zip`,
      },
    });
    assert.deepEqual((await listing(1, 14))!.files.map((f) => [f.filename, f.size]), [['agent_as_code_1.14.0_linux_amd64.zip', 5000]]);
    const downloaded = Buffer.from(await (await fetch(`${site.url}${answer.release.download_url}`)).arrayBuffer());
    assert.deepEqual(downloaded, bytes);
    const sums = await (await fetch(`${site.url}${BASE}/1/14/agent_as_code_1.14.0_SHA256SUMS`)).text();
    assert.equal(sums, `${sha256(bytes)}  agent_as_code_1.14.0_linux_amd64.zip\n`);
    const versions = (await (await fetch(`${site.url}${BASE}/versions`)).json()) as { versions: string[] };
    assert.ok(versions.versions.includes('1.14.0'));
  });

  test('a raw body streamed with the fields as query parameters; an optional checksum verified', async () => {
    const bytes = zipBytes(40_000);
    const query = new URLSearchParams({ version: '1.14.0', platform: 'darwin', architecture: 'arm64', checksum: `sha256:${sha256(bytes)}` });
    const answer = await post(`${UPLOAD}?${query}`, new Uint8Array(bytes), { 'Content-Type': 'application/zip', Authorization: `Bearer ${await site.token()}` });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.release.filename, 'agent_as_code_1.14.0_darwin_arm64.zip');
    const downloaded = Buffer.from(await (await fetch(`${site.url}${answer.body.release.download_url}`)).arrayBuffer());
    assert.deepEqual(downloaded, bytes);
  });

  test('a JSON body of several MiB, sent in pieces, is decoded as it streams', async () => {
    const large = await startUploadSite({ maxBytes: 16 * 1024 * 1024 });
    try {
      const bytes = zipBytes(6 * 1024 * 1024 + 1);
      const body = Buffer.from(JSON.stringify({ file_data: bytes.toString('base64'), version: '1.14.0', platform: 'linux', architecture: 'amd64' }));
      const pieces = new ReadableStream({
        start(controller) {
          // Odd piece sizes, so base64 quads and JSON tokens straddle the boundaries.
          for (let i = 0; i < body.length; i += 65_537) controller.enqueue(new Uint8Array(body.subarray(i, i + 65_537)));
          controller.close();
        },
      });
      const answer = await fetch(`${large.url}${UPLOAD}`, { method: 'POST', body: pieces, headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await large.token()}` }, duplex: 'half' } as RequestInit);
      assert.equal(answer.status, 201, await answer.clone().text());
      const downloaded = Buffer.from(await (await fetch(`${large.url}${BASE}/1/14/agent_as_code_1.14.0_linux_amd64.zip`)).arrayBuffer());
      assert.equal(sha256(downloaded), sha256(bytes));
    } finally {
      await large.close();
    }
  });

  test('aliases are canonical and a given filename is kept', async () => {
    const bytes = zipBytes();
    const answer = await postJson({ version: '1.14.0', platform: 'windows', architecture: 'x86_64', filename: 'agent_as_code_1.14.0_windows_amd64.tar.gz', file_data: bytes.toString('base64') });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.release.architecture, 'amd64');
    assert.equal(answer.body.release.filename, 'agent_as_code_1.14.0_windows_amd64.tar.gz');
  });
});

describe('refused uploads: the seed\'s error shape, and nothing changes', () => {
  const good = () => ({ version: '1.15.0', platform: 'linux', architecture: 'arm64', file_data: zipBytes().toString('base64') });
  const cases: [string, () => Promise<{ status: number; body: any }>, number, string | RegExp][] = [
    ['no token', async () => postJson(good(), { token: null }), 401, 'Authentication token required for binary uploads'],
    ['a forged token', async () => postJson(good(), { token: `${(await site.token()).slice(0, -4)}AAAA` }), 401, 'Token signature is invalid'],
    ['missing fields, listed in order', async () => postJson({ file_data: 'UEsD' }), 400, 'Missing required fields: version, platform, architecture'],
    ['missing file_data', async () => postJson({ version: '1.15.0', platform: 'linux', architecture: 'arm64' }), 400, 'Missing required fields: file_data'],
    ['malformed JSON', async () => postJson('{"version": "1.15.0",'), 400, 'Malformed JSON body'],
    ['a JSON array', async () => postJson('[]'), 400, 'Expected a JSON object'],
    ['a number where a string belongs', async () => postJson({ ...good(), version: 1.15 }), 400, 'Expected `version` to be a string'],
    ['malformed base64', async () => postJson({ ...good(), file_data: 'not base64!' }), 400, 'file_data is not valid base64'],
    ['base64 with padding in the middle', async () => postJson({ ...good(), file_data: 'UEs=UEsD' }), 400, 'file_data is not valid base64'],
    ['base64 of a length no quad completes', async () => postJson({ ...good(), file_data: 'UEsDB' }), 400, 'file_data is not valid base64'],
    ['file_data twice', async () => postJson(`{"file_data": "UEsD", "file_data": "UEsD", "version": "1.14.1", "platform": "linux", "architecture": "arm64"}`), 400, '`file_data` is given more than once'],
    ['a nested value, even in a field the API does not read', async () => postJson({ ...good(), extra: [[[[1]]]] }), 400, 'Expected `extra` to be a string, number, boolean or null'],
    ['a key past 1024 characters', async () => postJson({ ...good(), ['k'.repeat(2000)]: 'x' }), 400, 'A key is longer than 1024 characters'],
    ['a number past 1024 digits', async () => postJson(`{"extra": ${'9'.repeat(2000)}, "version": "1.14.1"}`), 400, '`extra` is longer than 1024 characters'],
    ['an object where a string belongs', async () => postJson({ ...good(), platform: { name: 'linux' } }), 400, 'Expected `platform` to be a string'],
    ['invalid semver', async () => postJson({ ...good(), version: '1.15' }, { pathname: `${BASE}/1/15/upload` }), 400, 'Invalid version `1.15`: expected a semantic version such as 1.12.2'],
    ['a version under another minor', async () => postJson(good()), 400, 'Version 1.15.0 does not belong under 1/14/; upload it to 1/15/'],
    ['an unknown platform', async () => postJson({ ...good(), version: '1.14.1', platform: 'plan9' }), 400, 'Unknown platform `plan9`; expected one of linux, darwin, windows'],
    ['an unknown architecture', async () => postJson({ ...good(), version: '1.14.1', architecture: 'sparc' }), 400, 'Unknown architecture `sparc`; expected one of amd64, arm64, 386'],
    ['a filename for another platform', async () => postJson({ ...good(), version: '1.14.1', filename: 'agent_as_code_1.14.1_darwin_arm64.zip' }), 400, /^Filename `agent_as_code_1\.14\.1_darwin_arm64\.zip` does not match version 1\.14\.1, platform linux and architecture arm64/],
    ['a filename that leaves its folder', async () => postJson({ ...good(), version: '1.14.1', filename: '../../../agent_as_code_1.14.1_linux_arm64.zip' }), 400, /^Invalid filename/],
    ['a filename with a slash', async () => postJson({ ...good(), version: '1.14.1', filename: 'x/agent_as_code_1.14.1_linux_arm64.zip' }), 400, /^Invalid filename/],
    ['a checksum that does not match', async () => postJson({ ...good(), version: '1.14.1', checksum: 'a'.repeat(64) }), 400, /^Checksum mismatch: expected a{64}, got [0-9a-f]{64}$/],
    ['a checksum that is no sha256', async () => postJson({ ...good(), version: '1.14.1', checksum: 'md5:abc' }), 400, /^Invalid checksum/],
    ['an unknown product', async () => postJson(good(), { pathname: '/binary/releases/nope/1/15/upload' }), 404, 'Unknown binary product `nope`'],
    ['a product name that is a file of the store', async () => postJson(good(), { pathname: '/binary/releases/mirror.json/1/15/upload' }), 404, 'Unknown binary product `mirror.json`'],
    ['a product name that climbs out of the store', async () => rawPost('/binary/releases/../1/15/upload', JSON.stringify(good())), 404, 'Unknown binary product `..`'],
    ['a product of the agent layout', async () => postJson(good(), { pathname: '/binary/releases/scalepad-agent/1/15/upload' }), 404, 'Unknown binary product `scalepad-agent`'],
    ['an artifact larger than MAX_UPLOAD_BYTES, as JSON', async () => postJson({ ...good(), version: '1.14.1', file_data: randomBytes(65 * 1024).toString('base64') }), 413, 'The file is larger than the limit of 65536 bytes (MAX_UPLOAD_BYTES)'],
    ['another content type', async () => post(UPLOAD, 'x', { 'Content-Type': 'text/plain', Authorization: `Bearer ${await site.token()}` }), 415, 'Expected Content-Type application/json, application/zip or application/octet-stream, got `text/plain`'],
    ['an empty file', async () => postJson({ ...good(), version: '1.14.1', file_data: '' }), 400, 'Missing required fields: file_data'],
  ];
  for (const [name, send, status, message] of cases) {
    test(name, async () => {
      const before = await snapshot();
      const answer = await send();
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assert.deepEqual(Object.keys(answer.body).sort(), ['error', 'message']);
      if (typeof message === 'string') assert.equal(answer.body.message, message);
      else assert.match(answer.body.message, message);
      assert.deepEqual(await snapshot(), before);
    });
  }

  test('a raw body past MAX_UPLOAD_BYTES, declared or streamed chunked, is 413 and leaves no staging file', async () => {
    const before = await snapshot();
    const query = new URLSearchParams({ version: '1.14.1', platform: 'linux', architecture: 'arm64' });
    const headers = { 'Content-Type': 'application/octet-stream', Authorization: `Bearer ${await site.token()}` };
    const declared = await post(`${UPLOAD}?${query}`, new Uint8Array(randomBytes(70 * 1024)), headers);
    assert.equal(declared.status, 413);
    const chunked = await post(
      `${UPLOAD}?${query}`,
      new ReadableStream({
        start(controller) {
          for (let i = 0; i < 20; i++) controller.enqueue(randomBytes(4096));
          controller.close();
        },
      }),
      headers,
    );
    assert.equal(chunked.status, 413);
    assert.equal(chunked.body.message, 'The file is larger than the limit of 65536 bytes (MAX_UPLOAD_BYTES)');
    assert.deepEqual(await snapshot(), before);
  });

  test('refused before its body arrived: the rest is read and dropped, so a client still sending reads the answer', async () => {
    const headers = { 'Content-Type': 'application/zip', Authorization: `Bearer ${await site.token()}` };
    for (let round = 0; round < 5; round++) {
      const slow = new ReadableStream({
        async pull(controller) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          controller.enqueue(randomBytes(64 * 1024));
          if (++sent === 8) controller.close();
        },
      });
      let sent = 0;
      const answer = await post(`/binary/releases/no-such-product/1/0/upload?version=1.0.0&platform=linux&architecture=amd64`, slow, headers);
      assert.equal(answer.status, 404);
      assert.equal(answer.body.message, 'Unknown binary product `no-such-product`');
      assert.equal(answer.headers.get('connection'), 'keep-alive');
      assert.equal(sent, 8);
    }
  });

  test('the same artifact twice: 409, and the first one\'s bytes stay', async () => {
    const first = { version: '1.14.2', platform: 'linux', architecture: 'amd64', file_data: zipBytes().toString('base64') };
    assert.equal((await postJson(first)).status, 201);
    const before = await snapshot();
    const second = await postJson({ ...first, file_data: zipBytes().toString('base64') });
    assert.equal(second.status, 409);
    assert.match(second.body.message, /agent-as-code 1\.14\.2 already has agent_as_code_1\.14\.2_linux_amd64\.zip \(linux\/amd64\); published artifacts are never overwritten/);
    assert.deepEqual(await snapshot(), before);
  });

  test('after the commit: a failed record is logged and the upload still succeeds; a failed rebuild is a 500 that says the file is stored', async () => {
    const body = JSON.stringify({ version: '1.14.0', platform: 'linux', architecture: 'amd64', file_data: zipBytes().toString('base64') });
    const unrecorded = await startUploadSite({
      record: async () => {
        throw new Error('injected: database password hunter2 at /var/lib/secret');
      },
    });
    try {
      const answer = await fetch(`${unrecorded.url}${UPLOAD}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await unrecorded.token()}` }, body });
      assert.equal(answer.status, 201);
      assert.doesNotMatch(await answer.text(), /hunter2|secret/);
      assert.equal(unrecorded.errors.length, 1);
    } finally {
      await unrecorded.close();
    }
    const unpublished = await startUploadSite({ failingPublisher: true });
    try {
      const answer = await fetch(`${unpublished.url}${UPLOAD}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await unpublished.token()}` }, body });
      assert.equal(answer.status, 500);
      assert.deepEqual(await answer.json(), { error: 'Internal Server Error', message: 'Failed to upload binary: agent_as_code_1.14.0_linux_amd64.zip is stored, but the site could not be rebuilt; it will be listed by the next rebuild' });
      assert.equal(unpublished.errors.length, 1);
    } finally {
      await unpublished.close();
    }
  });

  test('an unexpected failure before the commit is the seed\'s 500, without internals', async () => {
    const broken = await startUploadSite({ extra: {} });
    try {
      // The blob store's root replaced by a file: staging cannot create its folder.
      await rm(broken.blobsDir, { recursive: true, force: true });
      await writeFile(broken.blobsDir, 'not a directory');
      const answer = await fetch(`${broken.url}${UPLOAD}`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await broken.token()}` }, body: JSON.stringify({ version: '1.14.0', platform: 'linux', architecture: 'amd64', file_data: zipBytes().toString('base64') }) });
      assert.equal(answer.status, 500);
      assert.deepEqual(await answer.json(), { error: 'Internal Server Error', message: 'Failed to upload binary: the server could not store the file' });
      assert.equal(broken.errors.length, 1);
    } finally {
      await broken.close();
    }
  });
});

describe('a full disk', () => {
  test('an upload is the seed\'s 500 naming it, nothing is stored, and the same upload lands once space is back', { skip: process.getuid?.() === 0 ? false : 'mounting a small tmpfs needs root' }, async () => {
    const full = await startUploadSite({ maxBytes: 4 * 1024 * 1024 });
    await rm(full.blobsDir, { recursive: true, force: true });
    await mkdir(full.blobsDir);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', full.blobsDir]);
    try {
      const filler = path.join(full.blobsDir, 'filler');
      await writeFile(filler, Buffer.alloc(2 * 1024 * 1024)).catch((error: NodeJS.ErrnoException) => assert.equal(error.code, 'ENOSPC'));
      const bytes = zipBytes(300_000);
      const upload = () => fetch(`${full.url}${UPLOAD}?version=1.14.0&platform=linux&architecture=amd64`, { method: 'POST', headers: { 'Content-Type': 'application/zip', Authorization: `Bearer ${token}` }, body: new Uint8Array(bytes) });
      const token = await full.token();
      const refused = await upload();
      assert.equal(refused.status, 500);
      assert.deepEqual(await refused.json(), { error: 'Internal Server Error', message: 'Failed to upload binary: the server is out of disk space; nothing was stored, retry once space is freed' });
      assert.deepEqual(await readdir(path.join(full.blobsDir, '.tmp')), []);
      assert.equal((await fetch(`${full.url}${BASE}/1/14/`)).status, 404);

      await rm(filler);
      const landed = await upload();
      assert.equal(landed.status, 201, await landed.clone().text());
      const download = await fetch(`${full.url}${BASE}/1/14/agent_as_code_1.14.0_linux_amd64.zip`);
      assert.equal(sha256(Buffer.from(await download.arrayBuffer())), sha256(bytes));
      // A full disk is not logged per request: the runtime's disk health logs it once (test/disk-health.test.ts).
      assert.equal(full.errors.length, 0);
    } finally {
      // Detached first (lazily: the server may still hold a file there), so closing can remove the folder.
      await run('umount', ['-l', full.blobsDir]);
      await full.close();
    }
  });
});

describe('concurrent uploads', () => {
  test('different platforms of one new version at once: all land, in one release', async () => {
    const targets = [['linux', 'amd64'], ['linux', 'arm64'], ['darwin', 'amd64'], ['darwin', 'arm64'], ['windows', 'amd64'], ['windows', '386']];
    const token = await site.token();
    const answers = await Promise.all(targets.map(([platform, architecture]) => postJson({ version: '1.14.5', platform, architecture, file_data: zipBytes().toString('base64') }, { token })));
    assert.deepEqual(answers.map((answer) => answer.status), targets.map(() => 201));
    const release = JSON.parse(await readFile(path.join(site.releasesDir, 'agent-as-code', '1.14.5.json'), 'utf8'));
    assert.equal(release.artifacts.length, targets.length);
    const listed = (await listing(1, 14))!.files.map((file) => file.filename).filter((name) => name.includes('1.14.5'));
    assert.equal(listed.length, targets.length);
  });

  test('the same artifact from several writers at once: exactly one 201, the rest 409', async () => {
    const token = await site.token();
    const body = { version: '1.14.6', platform: 'linux', architecture: 'amd64', file_data: zipBytes().toString('base64') };
    const answers = await Promise.all(Array.from({ length: 8 }, () => postJson(body, { token })));
    assert.deepEqual(answers.map((answer) => answer.status).sort(), [201, 409, 409, 409, 409, 409, 409, 409]);
    assert.deepEqual(await listFiles(path.join(site.blobsDir, '.tmp')), []);
  });
});

describe('GET of an artifact with Accept: application/json', () => {
  const ZIP = `${BASE}/1/12/agent_as_code_1.12.2_linux_amd64.zip`;

  test('answers the seed\'s envelope, its file_data the exact bytes', async () => {
    const bytes = Buffer.from(await (await fetch(`${site.url}${ZIP}`)).arrayBuffer());
    const response = await fetch(`${site.url}${ZIP}`, { headers: { Accept: 'application/json' } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type')!, /^application\/json/);
    const text = await response.text();
    assert.equal(Number(response.headers.get('content-length')), Buffer.byteLength(text));
    const envelope = JSON.parse(text);
    const digest = createHash('sha256').update(bytes).digest('hex');
    assert.deepEqual({ ...envelope, file_data: undefined }, {
      success: true,
      filename: 'agent_as_code_1.12.2_linux_amd64.zip',
      content_type: 'application/zip',
      content_length: bytes.length,
      metadata: { version: '1.12.2', platform: 'linux', architecture: 'amd64', checksum: `sha256:${digest}`, uploaded_at: envelope.metadata.uploaded_at },
      file_data: undefined,
      checksum: digest,
    });
    assert.deepEqual(Buffer.from(envelope.file_data, 'base64'), bytes);
    const head = await fetch(`${site.url}${ZIP}`, { method: 'HEAD', headers: { Accept: 'application/json' } });
    assert.equal(head.headers.get('content-length'), response.headers.get('content-length'));
  });

  test('base64 across chunk borders: an uploaded file of every length modulo 3', async () => {
    for (const size of [30_001, 30_002, 30_003]) {
      const bytes = zipBytes(size);
      const version = `1.14.${size - 29_990}`;
      assert.equal((await postJson({ version, platform: 'linux', architecture: 'amd64', file_data: bytes.toString('base64') })).status, 201);
      const envelope = (await (await fetch(`${site.url}${BASE}/1/14/agent_as_code_${version}_linux_amd64.zip`, { headers: { Accept: 'application/json' } })).json()) as { file_data: string };
      assert.deepEqual(Buffer.from(envelope.file_data, 'base64'), bytes, `${size} bytes`);
    }
  });

  test('a file over MAX_ENVELOPE_BYTES is refused with 406 and a way out; curl\'s */* gets the bytes', async () => {
    const bytes = zipBytes(40_000);
    assert.equal((await postJson({ version: '1.14.20', platform: 'linux', architecture: 'amd64', file_data: bytes.toString('base64') })).status, 201);
    const url = `${site.url}${BASE}/1/14/agent_as_code_1.14.20_linux_amd64.zip`;
    const refused = await fetch(url, { headers: { Accept: 'application/json' } });
    assert.equal(refused.status, 406);
    assert.deepEqual(await refused.json(), { error: 'Not Acceptable', message: 'agent_as_code_1.14.20_linux_amd64.zip is 40000 bytes, over the 32768 a JSON envelope carries (MAX_ENVELOPE_BYTES); request it without Accept: application/json' });
    assert.deepEqual(Buffer.from(await (await fetch(url, { headers: { Accept: '*/*' } })).arrayBuffer()), bytes);
  });
});
