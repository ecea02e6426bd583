// Request limits over real HTTP: headers on every response, 429s, rules keyed by ip and by user,
// proxy trust, one count shared through Redis by two servers, and a Redis that is down or hung;
// then the sidecar's wiring: reads of the site apart from the API's limits.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { cp } from 'node:fs/promises';
import path from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { Redis, type RedisOptions } from 'ioredis';
import Koa from 'koa';
import { build } from '../generator/pipeline.ts';
import { localIssuer } from '../sidecar/auth/jwt.ts';
import { loadConfig } from '../sidecar/config.ts';
import { perIp, perUser, rateLimit, type RateLimitOptions, type RateLimitRule } from '../sidecar/middleware/rate-limit.ts';
import { createLogger } from '../sidecar/middleware/request-log.ts';
import { createSidecar } from '../sidecar/runtime.ts';
import { listen } from '../sidecar/server.ts';
import { SAMPLE_BLOBS } from './helpers/sample-site.ts';
import { copySampleStore, removeDir, tempDir } from './helpers/store.ts';

const REDIS_URL = process.env.TEST_REDIS_URL;
const redisSkip = REDIS_URL || process.env.CI ? false : 'TEST_REDIS_URL is not set (CI sets redis://127.0.0.1:6379)';

interface Served {
  url: string;
  /** How many requests reached the handler behind the limiter. */
  handled(): number;
}

/** A Koa app with the limiter in front of a handler: `/missing` is a 404, `/boom` throws. */
async function serve(t: TestContext, options: RateLimitOptions, configure: (app: Koa) => void = () => {}): Promise<Served> {
  const app = new Koa();
  app.silent = true;
  configure(app);
  const limiter = rateLimit(options);
  let handled = 0;
  app.use(limiter);
  app.use(async function handler(ctx) {
    handled++;
    if (ctx.path === '/boom') throw new Error('boom');
    if (ctx.path !== '/missing') ctx.body = { ip: ctx.ip };
  });
  const running = await listen({ app, port: 0, host: '127.0.0.1' });
  t.after(async () => {
    await running.close();
    await limiter.close();
  });
  return { url: running.url, handled: () => handled };
}

function limitHeaders(response: Response): { limit: string | null; remaining: string | null; reset: string | null } {
  return { limit: response.headers.get('X-RateLimit-Limit'), remaining: response.headers.get('X-RateLimit-Remaining'), reset: response.headers.get('X-RateLimit-Reset') };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  return response;
}

test('every response carries the limit headers, a downstream 404 and a thrown 500 included', async (t) => {
  const { url } = await serve(t, { rules: [perIp({ points: 10, durationSeconds: 60 })] });
  const statuses = [];
  for (const [i, path] of ['/ok', '/missing', '/boom'].entries()) {
    const response = await get(url + path);
    statuses.push(response.status);
    assert.deepEqual(limitHeaders(response), { limit: '10', remaining: String(9 - i), reset: '60' });
  }
  assert.deepEqual(statuses, [200, 404, 500]);
});

test('the request past the limit gets a 429 with Retry-After and a body, and the handler is not called', async (t) => {
  const served = await serve(t, { rules: [perIp({ points: 3, durationSeconds: 30 })] });
  for (let i = 0; i < 3; i++) assert.equal((await get(served.url)).status, 200);
  const response = await fetch(served.url);
  assert.equal(response.status, 429);
  const retryAfter = Number(response.headers.get('Retry-After'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 30, `Retry-After ${retryAfter}`);
  assert.deepEqual(limitHeaders(response), { limit: '3', remaining: '0', reset: String(retryAfter) });
  assert.deepEqual(await response.json(), {
    error: 'Too Many Requests',
    message: `Rate limit of 3 requests per 30 s exceeded; retry in ${retryAfter} s`,
  });
  assert.equal(served.handled(), 3);
});

test('a custom body is used for the 429', async (t) => {
  const body = (ctx: Koa.Context, retryAfter: number) => ({ path: ctx.path, retryAfter });
  const { url } = await serve(t, { rules: [perIp({ points: 1, durationSeconds: 5 })], body });
  await get(url);
  const response = await fetch(`${url}/api/x`);
  assert.equal(response.status, 429);
  assert.deepEqual(await response.json(), { path: '/api/x', retryAfter: Number(response.headers.get('Retry-After')) });
});

test('with two rules the headers report the one with the fewest requests left', async (t) => {
  const burst: RateLimitRule = { name: 'burst', points: 2, durationSeconds: 10, key: (ctx) => ctx.ip };
  const served = await serve(t, { rules: [perIp({ points: 100, durationSeconds: 3600 }), burst] });
  assert.deepEqual(limitHeaders(await get(served.url)), { limit: '2', remaining: '1', reset: '10' });
  assert.deepEqual(limitHeaders(await get(served.url)), { limit: '2', remaining: '0', reset: '10' });
  const limited = await get(served.url);
  assert.equal(limited.status, 429);
  assert.equal(limitHeaders(limited).limit, '2');
  assert.equal(served.handled(), 2);
});

test('per-user limits count each principal apart and skip anonymous requests', async (t) => {
  const { url } = await serve(t, { rules: [perUser({ points: 2, durationSeconds: 60 })] }, (app) => {
    app.use(async function stubAuth(ctx, next) {
      const sub = ctx.get('X-Test-User');
      if (sub) ctx.state.principal = { sub };
      await next();
    });
  });
  const alice = { 'X-Test-User': 'alice' };
  assert.equal((await get(url, alice)).status, 200);
  assert.equal((await get(url, alice)).status, 200);
  assert.equal((await get(url, alice)).status, 429);
  const bob = await get(url, { 'X-Test-User': 'bob' });
  assert.equal(bob.status, 200);
  assert.deepEqual(limitHeaders(bob), { limit: '2', remaining: '1', reset: '60' });
  const anonymous = await get(url);
  assert.equal(anonymous.status, 200);
  assert.equal(anonymous.headers.get('X-RateLimit-Limit'), null);
});

test('without proxy trust a spoofed X-Forwarded-For does not change the key', async (t) => {
  const { url } = await serve(t, { rules: [perIp({ points: 1, durationSeconds: 60 })] });
  const first = await fetch(url, { headers: { 'X-Forwarded-For': '203.0.113.1' } });
  assert.deepEqual(await first.json(), { ip: '127.0.0.1' });
  assert.equal((await get(url, { 'X-Forwarded-For': '203.0.113.2' })).status, 429);
});

test('behind one trusted proxy the last hop of X-Forwarded-For is the key', async (t) => {
  const { url } = await serve(t, { rules: [perIp({ points: 1, durationSeconds: 60 })] }, (app) => {
    app.proxy = true;
    app.maxIpsCount = 1;
  });
  const first = await fetch(url, { headers: { 'X-Forwarded-For': '198.51.100.7, 203.0.113.1' } });
  assert.deepEqual(await first.json(), { ip: '203.0.113.1' });
  assert.equal((await get(url, { 'X-Forwarded-For': '198.51.100.8, 203.0.113.1' })).status, 429, 'a forged first hop must not buy a new count');
  assert.equal((await get(url, { 'X-Forwarded-For': '203.0.113.2' })).status, 200);
});

test('two servers on one Redis share the count', { skip: redisSkip, timeout: 10_000 }, async (t) => {
  assert.ok(REDIS_URL, 'CI must set TEST_REDIS_URL');
  const keyPrefix = `test-ratelimit-${randomUUID()}`;
  const options = (redis: Redis): RateLimitOptions => ({ rules: [perIp({ points: 4, durationSeconds: 60 })], redis, keyPrefix });
  const cleanup = await connect(REDIS_URL);
  t.after(async () => {
    const keys = await cleanup.keys(`${keyPrefix}:*`);
    if (keys.length > 0) await cleanup.del(...keys);
    await cleanup.quit();
  });
  const servers = [await serve(t, options(await connect(REDIS_URL))), await serve(t, options(await connect(REDIS_URL)))];
  const answers = [];
  for (let i = 0; i < 5; i++) {
    const response = await get(servers[i % 2]!.url);
    answers.push([response.status, response.headers.get('X-RateLimit-Remaining')]);
  }
  assert.deepEqual(answers, [[200, '3'], [200, '2'], [200, '1'], [200, '0'], [429, '0']]);
  assert.deepEqual(await cleanup.keys(`${keyPrefix}:*`), [`${keyPrefix}:ip:127.0.0.1`]);
});

test('with Redis refusing connections, requests are answered at once and still limited in memory', { timeout: 10_000 }, async (t) => {
  const redis = unmanaged(t, { port: await closedPort(), connectTimeout: 200 });
  const served = await serve(t, { rules: [perIp({ points: 2, durationSeconds: 60 })], redis });
  const statuses = await timed(3, () => get(served.url).then((response) => response.status), 1_000);
  assert.deepEqual(statuses, [200, 200, 429]);
});

test('with Redis accepting connections but never answering, requests are answered at once', { timeout: 10_000 }, async (t) => {
  const redis = unmanaged(t, { port: await silentServer(t) });
  const served = await serve(t, { rules: [perIp({ points: 2, durationSeconds: 60 })], redis });
  const statuses = await timed(3, () => get(served.url).then((response) => response.status), 1_000);
  assert.deepEqual(statuses, [200, 200, 429]);
});

test('with a connected Redis that stops answering, requests wait at most the timeout', { skip: redisSkip, timeout: 10_000 }, async (t) => {
  assert.ok(REDIS_URL, 'CI must set TEST_REDIS_URL');
  const keyPrefix = `test-ratelimit-${randomUUID()}`;
  const admin = await connect(REDIS_URL);
  t.after(async () => {
    await admin.call('CLIENT', 'UNPAUSE');
    const keys = await admin.keys(`${keyPrefix}:*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });
  const served = await serve(t, { rules: [perIp({ points: 2, durationSeconds: 60 })], redis: await connect(REDIS_URL), keyPrefix, redisTimeoutMs: 100 });
  // Holds every write, the limiter's script included, while the connection stays up and ready.
  await admin.call('CLIENT', 'PAUSE', '2000', 'WRITE');
  const statuses = await timed(3, () => get(served.url).then((response) => response.status), 1_000);
  assert.deepEqual(statuses, [200, 200, 429]);
});

async function connect(url: string): Promise<Redis> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  if (client.status !== 'ready') await once(client, 'ready');
  return client;
}

/**
 * A client at a Redis that will not serve it; its errors are expected and dropped. A short
 * `disconnectTimeout`: disconnecting a refused client leaves that timer holding the process open.
 */
function unmanaged(t: TestContext, options: RedisOptions): Redis {
  const client = new Redis({ host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 100, disconnectTimeout: 100, ...options });
  client.on('error', () => {});
  t.after(() => client.disconnect());
  return client;
}

/** Runs `times` requests one after another, each within `limitMs`. */
async function timed<T>(times: number, request: () => Promise<T>, limitMs: number): Promise<T[]> {
  const results = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    results.push(await request());
    const elapsed = performance.now() - started;
    assert.ok(elapsed < limitMs, `request ${i + 1} took ${Math.round(elapsed)} ms`);
  }
  return results;
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP server that accepts connections and never writes a byte, so the handshake never ends. */
async function silentServer(t: TestContext): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as { port: number }).port;
}

describe('the sidecar: reads of the site and the API counted apart', () => {
  const BASE = '/binary/releases/agent-as-code';
  const ZIP = `${BASE}/1/12/agent_as_code_1.12.2_linux_amd64.zip`;
  const UPLOAD = `${BASE}/1/14/upload`;

  /** The reads a download client makes, each with the statuses it may get. */
  async function reads(url: string): Promise<{ init: RequestInit & { path: string }; ok: number[] }[]> {
    const etag = (await fetch(`${url}${BASE}/versions`)).headers.get('ETag')!;
    return [
      { init: { path: `${BASE}/versions` }, ok: [200] },
      { init: { path: `${BASE}/versions`, headers: { 'If-None-Match': etag } }, ok: [304] },
      { init: { path: ZIP }, ok: [200] },
      { init: { path: ZIP, method: 'HEAD' }, ok: [200] },
      { init: { path: ZIP, headers: { Range: 'bytes=0-99' } }, ok: [206] },
      { init: { path: '/v2/agent-releases/latest/download?platform=windows' }, ok: [302] },
    ];
  }

  async function request(url: string, { path: pathname, ...init }: RequestInit & { path: string }): Promise<Response> {
    const response = await fetch(`${url}${pathname}`, { redirect: 'manual', ...init });
    await response.arrayBuffer();
    return response;
  }

  async function upload(url: string, token: string | undefined, version: string): Promise<Response> {
    const body = JSON.stringify({ version, platform: 'linux', architecture: 'amd64', file_data: Buffer.concat([Buffer.from('PK\x03\x04'), randomBytes(996)]).toString('base64') });
    return request(url, { path: UPLOAD, method: 'POST', body, headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) } });
  }

  test('2,000 reads from one address in a few seconds all answer, with the default limits; the API\'s count is untouched', { timeout: 60_000 }, async (t) => {
    const sidecar = await startSidecar(t);
    const kinds = await reads(sidecar.url);
    const statuses = new Map<string, number>();
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < 2000) {
          const kind = kinds[next++ % kinds.length]!;
          const response = await request(sidecar.url, kind.init);
          const label = `${kind.init.method ?? 'GET'} ${kind.init.path} ${response.status}`;
          statuses.set(label, (statuses.get(label) ?? 0) + 1);
          assert.ok(kind.ok.includes(response.status), label);
          assert.equal(response.headers.get('X-RateLimit-Limit'), null, `${label}: a read is not counted`);
        }
      }),
    );
    assert.equal([...statuses.values()].reduce((a, b) => a + b), 2000);
    assert.ok(performance.now() - started < 30_000);
    // Signed out, so the per-user limits (reported instead when tighter) stay out of the headers.
    const anonymous = await upload(sidecar.url, undefined, '1.14.0');
    assert.equal(anonymous.status, 401);
    assert.deepEqual([anonymous.headers.get('X-RateLimit-Limit'), anonymous.headers.get('X-RateLimit-Remaining')], ['600', '599']);
    const envelope = await request(sidecar.url, { path: ZIP, headers: { Accept: 'application/json' } });
    assert.equal(envelope.status, 200);
    assert.deepEqual([envelope.headers.get('X-RateLimit-Limit'), envelope.headers.get('X-RateLimit-Remaining')], ['600', '598'], 'a JSON envelope is built by the API and counted by it');
    assert.equal((await upload(sidecar.url, await sidecar.token(), '1.14.0')).status, 201);
  });

  test('the upload API still answers 429 with Retry-After past its limit, and reads go on', { timeout: 30_000 }, async (t) => {
    const sidecar = await startSidecar(t, { RATE_LIMIT_IP_PER_MINUTE: '3' });
    const token = await sidecar.token();
    assert.equal((await upload(sidecar.url, token, '1.14.0')).status, 201);
    assert.equal((await upload(sidecar.url, undefined, '1.14.1')).status, 401);
    assert.equal((await upload(sidecar.url, token, '1.14.0')).status, 409);
    const limited = await upload(sidecar.url, token, '1.14.2');
    assert.equal(limited.status, 429);
    const retryAfter = Number(limited.headers.get('Retry-After'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    assert.equal(limited.headers.get('X-RateLimit-Limit'), '3');
    for (const kind of await reads(sidecar.url)) assert.ok(kind.ok.includes((await request(sidecar.url, kind.init)).status), kind.init.path);
  });

  test('RATE_LIMIT_READS_PER_MINUTE limits reads on their own count; uploads are unaffected', { timeout: 30_000 }, async (t) => {
    const sidecar = await startSidecar(t, { RATE_LIMIT_READS_PER_MINUTE: '20', RATE_LIMIT_IP_PER_MINUTE: '5' });
    const kinds = await reads(sidecar.url);
    // The ETag fetch above was the first read.
    for (let i = 1; i < 20; i++) {
      const kind = kinds[i % kinds.length]!;
      const response = await request(sidecar.url, kind.init);
      assert.ok(kind.ok.includes(response.status), `read ${i + 1}: ${response.status}`);
      assert.equal(response.headers.get('X-RateLimit-Limit'), '20');
    }
    for (const kind of kinds) {
      const response = await request(sidecar.url, kind.init);
      assert.equal(response.status, 429, `${kind.init.method ?? 'GET'} ${kind.init.path}`);
      assert.ok(Number(response.headers.get('Retry-After')) >= 1);
    }
    const anonymous = await upload(sidecar.url, undefined, '1.14.0');
    assert.equal(anonymous.status, 401);
    assert.deepEqual([anonymous.headers.get('X-RateLimit-Limit'), anonymous.headers.get('X-RateLimit-Remaining')], ['5', '4']);
    assert.equal((await upload(sidecar.url, await sidecar.token(), '1.14.0')).status, 201);
  });
});

/** The whole sidecar as `mirror serve` assembles it (createSidecar), over a copy of the sample store. */
async function startSidecar(t: TestContext, settings: Record<string, string> = {}): Promise<{ url: string; token(): Promise<string> }> {
  const dir = await tempDir('mirror-rate-limit-');
  const releasesDir = path.join(dir, 'releases');
  const dataDir = path.join(dir, 'data');
  await copySampleStore(releasesDir, { releases: true });
  await cp(SAMPLE_BLOBS, path.join(dataDir, 'blobs'), { recursive: true });
  await build({ releasesDir, site: path.join(dataDir, 'site') });
  const config = loadConfig({ MIRROR_RELEASES: releasesDir, MIRROR_DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...settings });
  const sidecar = await createSidecar(config, { migrateAtStart: true, logger: createLogger({ level: 'silent' }) });
  const running = await listen({ app: sidecar.app, port: 0, host: '127.0.0.1' });
  t.after(async () => {
    await running.close();
    await sidecar.close();
    await removeDir(dir);
  });
  const issuer = await localIssuer({ dir: config.authDir });
  return { url: running.url, token: () => issuer.mint('ci-release', 3600) };
}
