// /readyz of `mirror serve` as a load balancer sees it, over real HTTP: ready on a fresh data
// directory without any upload, and with REDIS_URL, degraded (not unavailable) while Redis is
// gone, the outage logged once when it begins and once when it ends. The Redis is one of the
// test's own (redis-server on a spare port), so stopping it disturbs no other suite.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import Koa from 'koa';
import { createMetrics } from '../sidecar/metrics.ts';
import { healthRoutes } from '../sidecar/routes/health.ts';
import { listen } from '../sidecar/server.ts';
import { prepareDataDir, startSidecarProcess, type DataDir } from './helpers/sidecar-process.ts';

const REDIS_MISSING = spawnSync('redis-server', ['--version']).error ? 'redis-server is not installed' : false;

let data: DataDir;
before(async () => {
  data = await prepareDataDir();
});
after(async () => {
  await rm(data.dir, { recursive: true, force: true });
});

interface Readiness {
  status: string;
  checks: Record<string, string>;
  degraded?: string[];
}

async function readyz(url: string): Promise<{ code: number; body: Readiness }> {
  const response = await fetch(`${url}/readyz`);
  return { code: response.status, body: (await response.json()) as Readiness };
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

test('a failing fail-open dependency answers 200 degraded naming it; a failing required one still 503', async (t) => {
  const down = () => Promise.reject(new Error('the last publish to S3 failed (SlowDown)'));
  const app = (required: () => Promise<void>) => new Koa().use(healthRoutes({ metrics: createMetrics(), checks: { database: required }, degradable: { redis: async () => {}, s3: down } }));
  const degraded = await listen({ app: app(async () => {}), host: '127.0.0.1', port: 0 });
  const unavailable = await listen({ app: app(() => Promise.reject(new Error('connection refused'))), host: '127.0.0.1', port: 0 });
  t.after(() => Promise.all([degraded.close(), unavailable.close()]));
  assert.deepEqual(await readyz(degraded.url), {
    code: 200,
    body: { status: 'degraded', degraded: ['s3'], checks: { database: 'ok', redis: 'ok', s3: 'the last publish to S3 failed (SlowDown)' } },
  });
  assert.deepEqual(await readyz(unavailable.url), {
    code: 503,
    body: { status: 'unavailable', degraded: ['s3'], checks: { database: 'connection refused', redis: 'ok', s3: 'the last publish to S3 failed (SlowDown)' } },
  });
});

test('a fresh data directory, never uploaded to, is ready at once', async () => {
  await rm(data.blobsDir, { recursive: true, force: true });
  const server = await startSidecarProcess(data.env);
  try {
    const { code, body } = await readyz(server.url);
    assert.equal(code, 200, JSON.stringify(body));
    assert.equal(body.status, 'ready');
    assert.deepEqual(Object.keys(body.checks).sort(), ['blobs', 'database', 'disk', 'fleetCa', 'site']);
    assert.ok(existsSync(data.blobsDir), 'the start created the blob folder');
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});

describe('Redis going away and coming back', { skip: !process.env.CI && REDIS_MISSING }, () => {
  let port: number;
  let redis: ChildProcess | undefined;
  const startRedis = async () => {
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      redis!.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (/Ready to accept connections/.test(output)) resolve();
      });
      redis!.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
    });
  };
  const stopRedis = async () => {
    const stopping = redis!;
    stopping.kill('SIGKILL');
    if (stopping.exitCode === null && stopping.signalCode === null) await new Promise((resolve) => stopping.once('exit', resolve));
  };
  before(async () => {
    assert.equal(REDIS_MISSING, false, REDIS_MISSING || '');
    port = await sparePort();
    await startRedis();
  });
  after(async () => {
    if (redis && redis.exitCode === null) await stopRedis();
  });

  test('/readyz says degraded and names Redis while it is down; the log says so once each way', async () => {
    const server = await startSidecarProcess({ ...data.env, LOG_LEVEL: 'info', REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_READS_PER_MINUTE: '100000' });
    try {
      const before = await readyz(server.url);
      assert.equal(before.code, 200);
      assert.equal(before.body.status, 'ready');
      assert.equal(before.body.checks.redis, 'ok');

      await stopRedis();
      await waitFor(async () => (await readyz(server.url)).body.status !== 'ready', '/readyz to notice');
      const during = await readyz(server.url);
      assert.equal(during.code, 200, 'Redis fails open: the replica still serves');
      assert.equal(during.body.status, 'degraded');
      assert.deepEqual(during.body.degraded, ['redis']);
      assert.match(during.body.checks.redis!, /^Redis unavailable since /);
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${server.url}/binary/releases/agent-as-code/versions`)).status, 200);
      // ioredis retries with a back-off up to 2 s: a few seconds of outage is many failed attempts.
      await new Promise((resolve) => setTimeout(resolve, 3_000));

      await startRedis();
      await waitFor(async () => (await readyz(server.url)).body.status === 'ready', '/readyz to be ready again');
      await waitFor(async () => /Redis is back/.test(server.output()), 'the recovery to be logged');
      const lines = server.output().split('\n');
      const went = lines.filter((line) => line.includes('Redis unavailable'));
      const back = lines.filter((line) => line.includes('Redis is back'));
      assert.equal(went.length, 1, went.join('\n'));
      assert.equal(back.length, 1, back.join('\n'));
      const recovery = JSON.parse(back[0]!) as { degradedRequests: number; downSeconds: number };
      assert.ok(recovery.degradedRequests >= 5, `counted ${recovery.degradedRequests} degraded requests`);
      assert.ok(recovery.downSeconds >= 3, `down ${recovery.downSeconds} s`);
      assert.doesNotMatch(server.output(), /"stack"/);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});

async function sparePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
