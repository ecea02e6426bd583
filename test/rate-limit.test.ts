// Request limits over real HTTP: headers on every response, 429s, rules keyed by ip and by user,
// proxy trust, one count shared through Redis by two servers, and a Redis that is down or hung.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { test, type TestContext } from 'node:test';
import { Redis, type RedisOptions } from 'ioredis';
import Koa from 'koa';
import { perIp, perUser, rateLimit, type RateLimitOptions, type RateLimitRule } from '../sidecar/middleware/rate-limit.ts';
import { listen } from '../sidecar/server.ts';

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
