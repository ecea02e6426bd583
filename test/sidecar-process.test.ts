// `mirror serve` as a process: configuration refused at start, secrets hidden in the printed
// configuration, a kill -9 in the middle of an upload, and a graceful stop with an upload in flight.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, rm, utimes } from 'node:fs/promises';
import { request, type ClientRequest } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { prepareDataDir, startSidecarProcess, type DataDir } from './helpers/sidecar-process.ts';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { CREDENTIALS, startFakeS3 } from './helpers/s3.ts';
import { runCli, sha256 } from './helpers/store.ts';

const UPLOAD = '/binary/releases/agent-as-code/1/16/upload?version=1.16.0&platform=linux&architecture=amd64';
const FILE = 'agent_as_code_1.16.0_linux_amd64.zip';

let data: DataDir;
before(async () => {
  data = await prepareDataDir();
});
after(async () => {
  await rm(data.dir, { recursive: true, force: true });
});

/** A raw upload whose body the test writes piece by piece; `done` resolves with the answer. */
function openUpload(url: string, token: string, target = UPLOAD): { req: ClientRequest; done: Promise<{ status: number; body: string }> } {
  const { hostname, port } = new URL(url);
  let req!: ClientRequest;
  const done = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req = request({ hostname, port, path: target, method: 'POST', headers: { 'Content-Type': 'application/zip', Authorization: `Bearer ${token}` } }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    });
    req.on('error', reject);
  });
  return { req, done };
}

async function stagingFiles(): Promise<string[]> {
  return (await readdir(path.join(data.blobsDir, '.tmp')).catch(() => [])).filter((name) => name.endsWith('.upload'));
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

describe('mirror serve: configuration', () => {
  test('an invalid setting stops it with exit 1 and a message naming the setting', async () => {
    const port = await runCli(['serve'], { ...data.env, PORT: 'abc' });
    assert.equal(port.code, 1);
    assert.match(port.stderr, /Invalid configuration:\n {2}PORT: .*, got `abc`/);
    const cognito = await runCli(['serve'], { ...data.env, AUTH_MODE: 'cognito', COGNITO_REGION: 'eu-west-1' });
    assert.equal(cognito.code, 1);
    assert.match(cognito.stderr, /COGNITO_USER_POOL_ID: is required when AUTH_MODE=cognito/);
    assert.match(cognito.stderr, /COGNITO_CLIENT_ID: is required when AUTH_MODE=cognito/);
    assert.doesNotMatch(cognito.stderr, /COGNITO_REGION:/);
    const scheme = await runCli(['serve'], { ...data.env, DATABASE_URL: 'mysql://root:hunter2@db/x' });
    assert.equal(scheme.code, 1);
    assert.match(scheme.stderr, /DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/);
    assert.doesNotMatch(scheme.stderr, /hunter2/);
  });

  test('a backend that cannot start stops it too; the printed configuration hides passwords', async () => {
    const database = await runCli(['serve'], { ...data.env, DATABASE_URL: 'postgres://postgres:hunter2@127.0.0.1:1/state' });
    assert.equal(database.code, 1);
    assert.match(database.stdout, /^config: DATABASE_URL=postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/state$/m);
    assert.match(database.stderr, /DATABASE_URL/);
    assert.doesNotMatch(database.stdout + database.stderr, /hunter2/);
    const redis = await runCli(['serve'], { ...data.env, RATE_LIMIT_IP_PER_MINUTE: '100', REDIS_URL: 'redis://127.0.0.1:1' });
    assert.equal(redis.code, 1);
    assert.match(redis.stderr, /^REDIS_URL: cannot connect/m);
  });
});

describe('mirror serve with MIRROR_S3_BUCKET', () => {
  test('the site is published to the bucket at start, and each upload after the local site', async () => {
    const s3 = await startFakeS3();
    await s3.createBucket('uploads');
    const server = await startSidecarProcess({ ...data.env, LOG_LEVEL: 'info', MIRROR_S3_BUCKET: 'uploads', MIRROR_S3_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey });
    const records = () => s3.requests.filter((r) => r.method === 'PUT' && r.key === '.mirror/deploy-state.json').length;
    try {
      // The deploy records its state last: two PUTs of the record, the pending one and the final one.
      await waitFor(async () => records() === 2, 'the deploy at start');
      assert.ok(s3.requests.some((r) => r.method === 'PUT' && r.key === 'binary/releases/agent-as-code/versions.json'));
      const bytes = randomBytes(2048);
      const answer = await fetch(`${server.url}/binary/releases/agent-as-code/1/18/upload`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await data.token()}` },
        body: JSON.stringify({ version: '1.18.0', platform: 'linux', architecture: 'amd64', file_data: bytes.toString('base64') }),
      });
      assert.equal(answer.status, 201);
      const key = 'releases/1/18/0/agent_as_code_1.18.0_linux_amd64.zip';
      await waitFor(async () => records() === 4, 'the deploy after the upload');
      const object = await s3.client.send(new GetObjectCommand({ Bucket: 'uploads', Key: key }));
      assert.equal(sha256(Buffer.from(await object.Body!.transformToByteArray())), sha256(bytes));
      const listing = await s3.client.send(new GetObjectCommand({ Bucket: 'uploads', Key: 'binary/releases/agent-as-code/1/18/index.json' }));
      assert.match(await listing.Body!.transformToString(), /agent_as_code_1\.18\.0_linux_amd64\.zip/);
      // The local rebuild is logged: what it read, rendered and wrote, and each step's time.
      const rebuilt = server
        .output()
        .split('\n')
        .filter((line) => line.includes('"msg":"site rebuilt"'))
        .map((line) => JSON.parse(line) as { ms: number; steps: Record<string, number>; releasesRead: number; units: { units: number; rendered: number }; written: number; unchanged: number });
      assert.equal(rebuilt.length, 1, server.output());
      assert.ok(rebuilt[0]!.releasesRead >= 1, JSON.stringify(rebuilt[0]));
      assert.ok(rebuilt[0]!.units.rendered > 0 && rebuilt[0]!.units.rendered < rebuilt[0]!.units.units, JSON.stringify(rebuilt[0]));
      assert.ok(rebuilt[0]!.written > 0 && rebuilt[0]!.unchanged > rebuilt[0]!.written, JSON.stringify(rebuilt[0]));
      assert.deepEqual(Object.keys(rebuilt[0]!.steps).filter((step) => ['load', 'render', 'publish'].includes(step)), ['load', 'render', 'publish']);
    } finally {
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
      await s3.close();
    }
  });

  test('a failed publish to the bucket is counted in /metrics and retried by the next start', async () => {
    const s3 = await startFakeS3();
    const env = { ...data.env, MIRROR_S3_BUCKET: 'missing-bucket', MIRROR_S3_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey };
    const server = await startSidecarProcess(env);
    try {
      await waitFor(async () => /site_remote_publishes_total\{result="failed"\} 1/.test(await (await fetch(`${server.url}/metrics`)).text()), 'the failed publish to be counted');
      // The log line travels through the child's pipe and may arrive after the metric is served.
      await waitFor(async () => /publishing to S3 failed/.test(server.output()), 'the failed publish to be logged');
    } finally {
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
    }
    await s3.createBucket('missing-bucket');
    const restarted = await startSidecarProcess(env);
    try {
      await waitFor(async () => /site_remote_publishes_total\{result="ok"\} 1/.test(await (await fetch(`${restarted.url}/metrics`)).text()), 'the publish at the next start');
    } finally {
      restarted.child.kill('SIGTERM');
      assert.equal(await restarted.exited, 0);
      await s3.close();
    }
  });
});

describe('mirror serve: crashes and stops', () => {
  test('kill -9 in the middle of an upload: nothing listed, and the same upload succeeds after a restart', async () => {
    const token = await data.token();
    const first = await startSidecarProcess(data.env);
    const upload = openUpload(first.url, token);
    upload.done.catch(() => undefined);
    upload.req.write(randomBytes(256 * 1024));
    await waitFor(async () => (await stagingFiles()).length === 1, 'the upload to be staged');
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');
    upload.req.destroy();

    assert.ok(!existsSync(path.join(data.releasesDir, 'agent-as-code', '1.16.0.json')), 'no release file');
    assert.ok(!existsSync(path.join(data.blobsDir, 'releases', '1', '16')), 'no blob');
    const [orphan] = await stagingFiles();
    // An hour old: past the age at which a start-up takes a staging file for a dead upload's.
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(path.join(data.blobsDir, '.tmp', orphan!), old, old);

    const second = await startSidecarProcess(data.env);
    try {
      assert.deepEqual(await stagingFiles(), [], 'the orphan is removed at start');
      assert.match(second.output(), /removed staging files of uploads cut short/);
      assert.equal((await fetch(`${second.url}/binary/releases/agent-as-code/1/16/`)).status, 404);
      const bytes = randomBytes(300 * 1024);
      const retry = await fetch(`${second.url}${UPLOAD}`, { method: 'POST', body: new Uint8Array(bytes), headers: { 'Content-Type': 'application/zip', Authorization: `Bearer ${token}` } });
      assert.equal(retry.status, 201, await retry.clone().text());
      const listing = (await (await fetch(`${second.url}/binary/releases/agent-as-code/1/16/`)).json()) as { files: { filename: string }[] };
      assert.deepEqual(listing.files.map((file) => file.filename), [FILE]);
      const downloaded = Buffer.from(await (await fetch(`${second.url}/binary/releases/agent-as-code/1/16/${FILE}`)).arrayBuffer());
      assert.equal(sha256(downloaded), sha256(bytes));
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });

  test('SIGTERM: the upload in flight finishes and is answered, then the process exits 0', async () => {
    const token = await data.token();
    const server = await startSidecarProcess(data.env);
    const upload = openUpload(server.url, token, UPLOAD.replaceAll('1.16.0', '1.16.1'));
    upload.req.write(randomBytes(64 * 1024));
    await waitFor(async () => (await stagingFiles()).length === 1, 'the upload to be staged');
    server.child.kill('SIGTERM');
    await waitFor(async () => /SIGTERM: finishing in-flight requests/.test(server.output()), 'the drain to begin');
    upload.req.end(randomBytes(64 * 1024));
    const answer = await upload.done;
    assert.equal(answer.status, 201, answer.body);
    assert.equal(JSON.parse(answer.body).release.filename, 'agent_as_code_1.16.1_linux_amd64.zip');
    assert.equal(await server.exited, 0);
    assert.ok(existsSync(path.join(data.releasesDir, 'agent-as-code', '1.16.1.json')));
  });
});
