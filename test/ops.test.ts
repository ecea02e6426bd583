// Operations endpoints and request logging over real HTTP: request ids, log lines without
// secrets, liveness, readiness with failing and hung checks, and bounded metric labels.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import Koa from 'koa';
import { createMetrics } from '../sidecar/metrics.ts';
import { createLogger, requestLog } from '../sidecar/middleware/request-log.ts';
import { healthRoutes, type HealthRoutesOptions } from '../sidecar/routes/health.ts';
import { listen } from '../sidecar/server.ts';

interface Served {
  url: string;
  /** Log lines written so far, parsed. */
  lines: Record<string, unknown>[];
  /** Log output as written, to search for leaks. */
  raw: string[];
}

/** The ops middlewares in their production order, in front of `/hello` and a throwing `/boom`. */
async function serve(t: TestContext, checks: HealthRoutesOptions['checks'] = {}, checkTimeoutMs?: number): Promise<Served> {
  const raw: string[] = [];
  const logger = createLogger({ destination: { write: (line: string) => void raw.push(line) } });
  const metrics = createMetrics();
  const app = new Koa();
  app.silent = true;
  app.use(requestLog({ logger }));
  app.use(metrics.middleware());
  app.use(healthRoutes({ checks, metrics, ...(checkTimeoutMs ? { checkTimeoutMs } : {}) }));
  app.use(async function handler(ctx) {
    if (ctx.path === '/boom') throw new Error('boom');
    if (ctx.path === '/hello') ctx.body = 'hello';
  });
  const running = await listen({ app, port: 0, host: '127.0.0.1' });
  t.after(() => running.close());
  return {
    url: running.url,
    raw,
    get lines() {
      return raw.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

/** Log lines are written when the response closes, which can be just after the client has it. */
async function waitForLines(served: Served, count: number): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + 2_000;
  while (served.raw.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(served.raw.length, count);
  return served.lines;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  return response;
}

test('X-Request-Id is generated, kept when valid and replaced when not', async (t) => {
  const { url } = await serve(t);
  const generated = [(await get(`${url}/hello`)).headers.get('X-Request-Id'), (await get(`${url}/hello`)).headers.get('X-Request-Id')];
  for (const id of generated) assert.match(id ?? '', /^[A-Za-z0-9._-]{1,64}$/);
  assert.notEqual(generated[0], generated[1]);
  const valid = 'edge-7f3a.9_B';
  assert.equal((await get(`${url}/hello`, { 'X-Request-Id': valid })).headers.get('X-Request-Id'), valid);
  for (const invalid of ['a'.repeat(200), 'two words', 'semi;colon']) {
    const echoed = (await get(`${url}/hello`, { 'X-Request-Id': invalid })).headers.get('X-Request-Id');
    assert.ok(echoed && echoed !== invalid && /^[A-Za-z0-9._-]{1,64}$/.test(echoed), `${invalid.slice(0, 20)} gave ${echoed}`);
  }
  assert.equal((await get(`${url}/boom`, { 'X-Request-Id': valid })).headers.get('X-Request-Id'), valid, 'kept on a thrown error');
});

test('one JSON line per request with the request facts and no secrets', async (t) => {
  const served = await serve(t);
  const hello = await get(`${served.url}/hello?token=secret-query`, { Authorization: 'Bearer secret-header', Cookie: 'session=secret-cookie', 'X-Request-Id': 'req-1' });
  assert.equal(hello.status, 200);
  assert.equal((await get(`${served.url}/boom`)).status, 500);
  const [line, failed] = await waitForLines(served, 2);
  assert.ok(line && failed);
  assert.deepEqual(
    { method: line.method, path: line.path, status: line.status, bytes: line.bytes, reqId: line.reqId, ip: line.ip, msg: line.msg },
    { method: 'GET', path: '/hello', status: 200, bytes: 5, reqId: 'req-1', ip: '127.0.0.1', msg: 'request completed' },
  );
  assert.equal(typeof line.durationMs, 'number');
  assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(failed.status, 500);
  assert.equal(failed.level, 50);
  const written = served.raw.join('');
  for (const secret of ['secret', 'token=', 'Bearer', 'authorization', 'cookie']) assert.ok(!written.toLowerCase().includes(secret.toLowerCase()), `log holds ${secret}: ${written}`);
});

test('the logger redacts secrets that code logs by mistake', () => {
  const raw: string[] = [];
  const logger = createLogger({ destination: { write: (line: string) => void raw.push(line) } });
  logger.info({ req: { headers: { authorization: 'Bearer a1', cookie: 'c1' } }, token: 't1', upload: { password: 'p1', secret: 's1' } }, 'oops');
  const line = raw.join('');
  for (const secret of ['a1', 'c1', 't1', 'p1', 's1']) assert.ok(!line.includes(secret), `log holds ${secret}: ${line}`);
  assert.ok(line.includes('[Redacted]'));
});

test('/healthz answers ok and is not cached', async (t) => {
  const { url } = await serve(t, { db: () => Promise.reject(new Error('down')) });
  const response = await fetch(`${url}/healthz`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('Cache-Control'), 'no-store');
  assert.deepEqual(await response.json(), { status: 'ok' });
});

test('/readyz is ready when every check passes', async (t) => {
  const { url } = await serve(t, { db: async () => {}, blobs: async () => {} });
  const response = await fetch(`${url}/readyz`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('Cache-Control'), 'no-store');
  assert.deepEqual(await response.json(), { status: 'ready', checks: { db: 'ok', blobs: 'ok' } });
});

test('/readyz is unavailable when a check fails or hangs, within the check timeout', async (t) => {
  const checks = { db: async () => {}, redis: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379')), blobs: () => new Promise<void>(() => {}) };
  const { url } = await serve(t, checks, 200);
  const started = performance.now();
  const response = await fetch(`${url}/readyz`);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 1_000, `took ${Math.round(elapsed)} ms`);
  assert.equal(response.status, 503);
  assert.equal(response.headers.get('Cache-Control'), 'no-store');
  assert.deepEqual(await response.json(), {
    status: 'unavailable',
    checks: { db: 'ok', redis: 'connect ECONNREFUSED 127.0.0.1:6379', blobs: 'timed out after 200 ms' },
  });
});

test('/metrics keeps route labels bounded over many distinct paths and has process metrics', async (t) => {
  const { url } = await serve(t);
  for (let i = 0; i < 50; i++) await get(`${url}/${randomBytes(6).toString('hex')}/${i}`);
  await get(`${url}/binary/releases/agent-as-code/versions`);
  await get(`${url}/hello`);
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('Content-Type') ?? '', /^text\/plain; version=0\.0\.4/);
  assert.equal(response.headers.get('Cache-Control'), 'no-store');
  const text = await response.text();
  const routes = new Set([...text.matchAll(/^http_requests_total\{[^}]*route="([^"]*)"/gm)].map((match) => match[1]));
  assert.deepEqual([...routes].sort(), ['/binary', 'other']);
  assert.match(text, /^http_requests_total\{method="GET",route="other",status="404"\} 50$/m);
  assert.match(text, /^http_request_duration_seconds_bucket\{le="0.005",method="GET",route="other"\}/m);
  assert.match(text, /^process_cpu_user_seconds_total \d/m);
});
