// The registry under real `mirror serve` processes: a kill -9 in the middle of a publish leaves
// nothing listed and the same publish then succeeds; two processes on PostgreSQL and Redis behind
// one address share publishes, version numbers and rate limits.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { request, type Server } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, POSTGRES_MISSING, type TestDatabase } from './helpers/postgres.ts';
import { json, manifest, publishForm, tarball } from './helpers/registry.ts';
import { roundRobin } from './helpers/round-robin.ts';
import { prepareDataDir, startSidecarProcess, type DataDir, type SidecarProcess } from './helpers/sidecar-process.ts';
import { runCli, sha256 } from './helpers/store.ts';

async function registryToken(env: Record<string, string>, user: string): Promise<string> {
  const created = await runCli(['registry', 'token', 'create', '--user', user], env);
  assert.equal(created.code, 0, created.stderr);
  return created.stdout.trim();
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('registry: kill -9 in the middle of a publish', () => {
  let data: DataDir;
  before(async () => {
    data = await prepareDataDir();
  });
  after(async () => {
    await rm(data.dir, { recursive: true, force: true });
  });

  test('nothing is listed, nothing is written to the store, and the same publish succeeds after a restart', async () => {
    const token = await registryToken(data.env, 'erin');
    const first = await startSidecarProcess(data.env);
    const staged = async () => (await readdir(path.join(data.blobsDir, '.tmp')).catch(() => [])).length;
    const before = await staged();
    const boundary = `----mirror${randomBytes(8).toString('hex')}`;
    const { hostname, port } = new URL(first.url);
    const req = request({ hostname, port, path: '/api/v1/agents/@erin/crashy', method: 'PUT', headers: { Authorization: `Bearer ${token}`, 'Content-Type': `multipart/form-data; boundary=${boundary}` } });
    req.on('error', () => undefined);
    const field = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    req.write(field('agent_yaml', JSON.stringify(manifest('crashy', '1.0.0'))) + field('readme', '# Crashy'));
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="tarball"; filename="crashy.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`);
    req.write(Buffer.concat([tarball(), randomBytes(128 * 1024)]));
    await waitFor(async () => (await staged()) > before, 'the tarball to be staged');
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');
    req.destroy();

    assert.ok(!existsSync(path.join(data.releasesDir, 'registry', '@erin')), 'no version file');
    assert.ok(!existsSync(path.join(data.blobsDir, 'registry', 'erin')), 'no tarball committed');
    const second = await startSidecarProcess(data.env);
    try {
      assert.deepEqual((await json(fetch(`${second.url}/api/v1/agents/@erin/crashy`))).body, { error: 'Agent not found' });
      assert.equal((await json(fetch(`${second.url}/api/v1/search?q=crashy`))).body.total, 0);
      const bytes = tarball('crashy, again\n');
      const retry = await fetch(`${second.url}/api/v1/agents/@erin/crashy`, { method: 'PUT', headers: { Authorization: `Bearer ${token}` }, body: publishForm({ tarball: bytes, readme: '# Crashy', agentYaml: manifest('crashy', '1.0.0') }) });
      assert.equal(retry.status, 200, await retry.clone().text());
      const descriptor = (await json(fetch(`${second.url}/api/v1/agents/@erin/crashy/download/1.0.0`))).body;
      const downloaded = Buffer.from(await (await fetch(descriptor.tarball_url)).arrayBuffer());
      assert.equal(sha256(downloaded), sha256(bytes));
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});

const redisUrl = process.env.TEST_REDIS_URL;
const missing = POSTGRES_MISSING || (redisUrl ? false : 'TEST_REDIS_URL is not set (CI sets redis://127.0.0.1:6379)');

describe('registry: two processes on PostgreSQL and Redis behind one address', { skip: !process.env.CI && missing }, () => {
  let database: TestDatabase;
  let data: DataDir;
  let env: Record<string, string>;
  let processes: SidecarProcess[] = [];
  let proxy: Server;
  let url: string;
  let token: string;

  before(async () => {
    assert.equal(missing, false, missing || '');
    database = await createTestDatabase('mirror_registry');
    data = await prepareDataDir();
    env = { ...data.env, DATABASE_URL: database.url, REDIS_URL: redisUrl!, REGISTRY_RATE_LIMIT_IP_PER_MINUTE: '100000', REGISTRY_RATE_LIMIT_USER_PER_MINUTE: '100000', REGISTRY_RATE_LIMIT_PUBLISH_PER_HOUR: '100' };
    assert.equal((await runCli(['migrate'], env)).code, 0);
    token = await registryToken(env, 'frank');
    processes = await Promise.all([startSidecarProcess(env), startSidecarProcess(env)]);
    ({ server: proxy, url } = await roundRobin(processes.map((running) => running.url)));
  });
  after(async () => {
    for (const running of processes) running.child.kill('SIGTERM');
    await Promise.all(processes.map((running) => running.exited));
    proxy?.close();
    await database?.drop();
    if (data) await rm(data.dir, { recursive: true, force: true });
  });

  test('a publish through one address is listed and served by both processes', async () => {
    const bytes = tarball('shared\n');
    const answer = await fetch(`${url}/api/v1/agents/@frank/shared`, { method: 'PUT', headers: { Authorization: `Bearer ${token}` }, body: publishForm({ tarball: bytes, readme: '# Shared', agentYaml: manifest('shared', '1.0.0') }) });
    assert.equal(answer.status, 200, await answer.clone().text());
    for (const running of processes) {
      assert.equal((await json(fetch(`${running.url}/api/v1/agents/@frank/shared`))).body.latest_version, '1.0.0');
      const tarballAnswer = await fetch(`${running.url}/agents/@frank/shared/1.0.0.tar.gz`);
      assert.equal(sha256(Buffer.from(await tarballAnswer.arrayBuffer())), sha256(bytes));
    }
  });

  test('one version published through both processes at once: exactly one 200', async () => {
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => fetch(`${url}/api/v1/agents/@frank/raced`, { method: 'PUT', headers: { Authorization: `Bearer ${token}` }, body: publishForm({ tarball: tarball(), readme: 'r', agentYaml: manifest('raced', '1.0.0') }) })),
    );
    assert.deepEqual(answers.map((answer) => answer.status).sort(), [200, 409, 409, 409, 409, 409]);
  });

  test('the registry rate limit is one count across both processes (Redis)', async () => {
    const remaining: number[] = [];
    for (let i = 0; i < 6; i++) remaining.push(Number((await fetch(`${url}/api/v1/categories`)).headers.get('x-ratelimit-remaining')));
    for (let i = 1; i < remaining.length; i++) assert.equal(remaining[i], remaining[i - 1]! - 1, JSON.stringify(remaining));
  });
});
