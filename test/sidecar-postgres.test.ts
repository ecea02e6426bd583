// Two `mirror serve` processes sharing one data directory, one PostgreSQL database and one Redis,
// behind one address (a round-robin proxy): uploads from both land once, both serve the result,
// and the rate limit is counted across them. Needs TEST_DATABASE_URL (and TEST_REDIS_URL for the
// shared limit); CI sets both.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase, POSTGRES_MISSING, type TestDatabase } from './helpers/postgres.ts';
import { roundRobin } from './helpers/round-robin.ts';
import { prepareDataDir, startSidecarProcess, type DataDir, type SidecarProcess } from './helpers/sidecar-process.ts';
import { runCli } from './helpers/store.ts';

const redisUrl = process.env.TEST_REDIS_URL;
const missing = POSTGRES_MISSING;

describe('several sidecar processes on PostgreSQL behind one address', { skip: !process.env.CI && missing }, () => {
  let database: TestDatabase;
  let data: DataDir;
  let env: Record<string, string>;
  let processes: SidecarProcess[] = [];
  let proxy: Server;
  let url: string;

  before(async () => {
    assert.equal(missing, false, missing || '');
    database = await createTestDatabase();
    data = await prepareDataDir();
    env = { ...data.env, DATABASE_URL: database.url, ...(redisUrl ? { REDIS_URL: redisUrl, RATE_LIMIT_IP_PER_MINUTE: '100000' } : {}) };
  });
  after(async () => {
    for (const running of processes) running.child.kill('SIGTERM');
    await Promise.all(processes.map((running) => running.exited));
    proxy?.close();
    await database?.drop();
    if (data) await rm(data.dir, { recursive: true, force: true });
  });

  test('a shared database must be migrated first, by mirror migrate, which is idempotent', async () => {
    const refused = await runCli(['serve'], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /The state database lacks migrations 2026-11-23-initial, 2026-12-04-registry, 2026-12-05-fleet; run `mirror migrate` first/);
    const migrated = await runCli(['migrate'], env);
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.equal(migrated.stdout.trim(), 'applied 2026-11-23-initial, 2026-12-04-registry, 2026-12-05-fleet');
    assert.equal((await runCli(['migrate'], env)).stdout.trim(), 'the state database is up to date');
    processes = await Promise.all([startSidecarProcess(env), startSidecarProcess(env)]);
    ({ server: proxy, url } = await roundRobin(processes.map((running) => running.url)));
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
    // Uploads count against the per-address limit (reads of the site do not, by default); unsigned, each is a 401.
    for (let i = 0; i < 6; i++) {
      const response = await fetch(`${url}/binary/releases/agent-as-code/1/14/upload`, { method: 'POST' });
      assert.equal(response.status, 401);
      remaining.push(Number(response.headers.get('x-ratelimit-remaining')));
    }
    for (let i = 1; i < remaining.length; i++) assert.equal(remaining[i], remaining[i - 1]! - 1, JSON.stringify(remaining));
  });
});
