// Two `mirror serve` processes sharing one data directory, one PostgreSQL database and one Redis,
// behind one address (a round-robin proxy): uploads from both land once, both serve the result,
// and the rate limit is counted across them. Needs TEST_DATABASE_URL (and TEST_REDIS_URL for the
// shared limit); CI sets both.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { prepareDataDir, startSidecarProcess, type DataDir, type SidecarProcess } from './helpers/sidecar-process.ts';
import { runCli } from './helpers/store.ts';

const databaseUrl = process.env.TEST_DATABASE_URL;
const redisUrl = process.env.TEST_REDIS_URL;
const missing = databaseUrl ? false : 'TEST_DATABASE_URL is not set (CI sets postgres://postgres@127.0.0.1:5432/test)';

/** Alternates requests between the backends, streaming both ways. */
function roundRobin(backends: string[]): Promise<Server> {
  let next = 0;
  const server = createServer((incoming, outgoing) => {
    const backend = new URL(backends[next++ % backends.length]!);
    const forward = request({ hostname: backend.hostname, port: backend.port, path: incoming.url, method: incoming.method, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(outgoing);
    });
    forward.on('error', () => outgoing.destroy());
    incoming.pipe(forward);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('several sidecar processes on PostgreSQL behind one address', { skip: !process.env.CI && missing }, () => {
  let admin: pg.Client;
  let database: string;
  let data: DataDir;
  let env: Record<string, string>;
  let processes: SidecarProcess[] = [];
  let proxy: Server;
  let url: string;

  before(async () => {
    assert.equal(missing, false, missing || '');
    admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    database = `mirror_test_${randomBytes(6).toString('hex')}`;
    await admin.query(`create database ${database}`);
    const stateUrl = new URL(databaseUrl!);
    stateUrl.pathname = `/${database}`;
    data = await prepareDataDir();
    env = { ...data.env, DATABASE_URL: stateUrl.toString(), ...(redisUrl ? { REDIS_URL: redisUrl, RATE_LIMIT_IP_PER_MINUTE: '100000' } : {}) };
  });
  after(async () => {
    for (const running of processes) running.child.kill('SIGTERM');
    await Promise.all(processes.map((running) => running.exited));
    proxy?.close();
    await admin?.query(`drop database if exists ${database} with (force)`);
    await admin?.end();
    if (data) await rm(data.dir, { recursive: true, force: true });
  });

  test('a shared database must be migrated first, by mirror migrate, which is idempotent', async () => {
    const refused = await runCli(['serve'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /The state database lacks migrations 2026-11-23-initial; run `mirror migrate` first/);
    const migrated = await runCli(['migrate'], env);
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.equal(migrated.stdout.trim(), 'applied 2026-11-23-initial');
    assert.equal((await runCli(['migrate'], env)).stdout.trim(), 'the state database is up to date');
    processes = await Promise.all([startSidecarProcess(env), startSidecarProcess(env)]);
    proxy = await roundRobin(processes.map((running) => running.url));
    url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });

  test('uploads of one new version from both processes at once all land, recorded once each', async () => {
    const token = await data.token('ci');
    const targets = [['linux', 'amd64'], ['linux', 'arm64'], ['darwin', 'amd64'], ['darwin', 'arm64'], ['windows', 'amd64'], ['windows', '386']];
    const answers = await Promise.all(
      targets.map(([platform, architecture]) =>
        fetch(`${url}/binary/releases/agent-as-code/1/17/upload`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify({ version: '1.17.0', platform, architecture, file_data: randomBytes(4096).toString('base64') }),
        }),
      ),
    );
    assert.deepEqual(answers.map((answer) => answer.status), targets.map(() => 201));
    for (let i = 0; i < 2; i++) {
      const listing = (await (await fetch(`${url}/binary/releases/agent-as-code/1/17/`)).json()) as { files: unknown[] };
      assert.equal(listing.files.length, targets.length, 'each process serves every upload');
    }
    const client = new pg.Client({ connectionString: env.DATABASE_URL });
    await client.connect();
    const rows = await client.query('select platform, arch, uploaded_by from uploads order by id').finally(() => client.end());
    assert.equal(rows.rows.length, targets.length);
    assert.ok(rows.rows.every((row) => row.uploaded_by === 'ci'));
  });

  test('the same artifact sent through both processes at once: exactly one 201', async () => {
    const token = await data.token();
    const body = JSON.stringify({ version: '1.17.1', platform: 'linux', architecture: 'amd64', file_data: randomBytes(4096).toString('base64') });
    const answers = await Promise.all(Array.from({ length: 6 }, () => fetch(`${url}/binary/releases/agent-as-code/1/17/upload`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body })));
    assert.deepEqual(answers.map((answer) => answer.status).sort(), [201, 409, 409, 409, 409, 409]);
  });

  test('the per-IP limit is one count across both processes (Redis)', { skip: !redisUrl && 'TEST_REDIS_URL is not set' }, async () => {
    const remaining: number[] = [];
    for (let i = 0; i < 6; i++) remaining.push(Number((await fetch(`${url}/binary/releases/agent-as-code/versions`)).headers.get('x-ratelimit-remaining')));
    for (let i = 1; i < remaining.length; i++) assert.equal(remaining[i], remaining[i - 1]! - 1, JSON.stringify(remaining));
  });
});
