// The deploy benchmark's S3: s3rver behind a counting HTTP proxy, in a child process of its own so
// it does not share the bench's event loop (the logic of test/helpers/s3.ts, without its faults).
// Started with `fork` (an IPC channel): `node --import tsx scripts/bench/s3-server.ts DIR BUCKET...`.
// Messages: parent → child `{ type: 'stats', reset }`, `{ type: 'close' }`;
// child → parent `{ type: 'ready', endpoint }`, `{ type: 'stats', stats }`, `{ type: 'closed' }`.
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface ProxyStats {
  /** Requests per HTTP method. */
  requests: Record<string, number>;
  /** Request body bytes per method: what the client sent. */
  sentBytes: Record<string, number>;
  /** Response body bytes: what the client received. */
  receivedBytes: number;
  /** Keys of successful PUTs (status 200), in order. */
  putKeys: string[];
  /** Answers with a status of 400 or more. */
  errors: number;
  /** The first few of those: `STATUS METHOD URL`. */
  errorSamples: string[];
  /** Requests other than GET, HEAD and PUT: `METHOD URL`, the first few. */
  otherSamples: string[];
  /**
   * Per kind of request (`LIST` for ListObjects, `state GET` etc. for the deployer's state object,
   * else the method): how many, and the sum of their durations at the proxy, from the request's
   * arrival to the end of its answer. For requests made one after the other, the sum is wall time.
   */
  timings: Record<string, { count: number; ms: number }>;
}

export interface BenchS3 {
  /** The proxy's address: what both deployers talk to. */
  endpoint: string;
  /** What went through the proxy since the last reset; `reset` starts counting afresh. */
  stats(reset?: boolean): Promise<ProxyStats>;
  close(): Promise<void>;
}

type FromChild = { type: 'ready'; endpoint: string } | { type: 'stats'; stats: ProxyStats } | { type: 'closed' };
type ToChild = { type: 'stats'; reset: boolean } | { type: 'close' };

/** Starts the child: s3rver storing under `directory`, with `buckets` created. */
export async function startBenchS3(directory: string, buckets: string[]): Promise<BenchS3> {
  // s3rver 3.7 makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3 keeps in its legacy
  // provider: without it, listing a bucket of more than 1,000 objects answers 500 InternalError.
  const child = fork(fileURLToPath(import.meta.url), [directory, ...buckets], { execArgv: ['--import', 'tsx', '--openssl-legacy-provider'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = <T extends FromChild['type']>(type: T): Promise<Extract<FromChild, { type: T }>> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: FromChild) => {
        if (message.type !== type) return;
        child.off('message', onMessage).off('exit', onExit);
        resolve(message as Extract<FromChild, { type: T }>);
      };
      const onExit = (code: number | null) => {
        child.off('message', onMessage);
        reject(new Error(`The S3 server process exited (${code}) while the bench waited for "${type}"`));
      };
      child.on('message', onMessage).once('exit', onExit);
    });
  const send = (message: ToChild) => child.send(message);
  const { endpoint } = await next('ready');
  return {
    endpoint,
    async stats(reset = false) {
      const answer = next('stats');
      send({ type: 'stats', reset });
      return (await answer).stats;
    },
    async close() {
      const closed = next('closed');
      send({ type: 'close' });
      await closed.catch(() => undefined);
      await exited(child);
    },
  };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function emptyStats(): ProxyStats {
  return { requests: {}, sentBytes: {}, receivedBytes: 0, putKeys: [], errors: 0, errorSamples: [], otherSamples: [], timings: {} };
}

async function runChild(directory: string, buckets: string[]): Promise<void> {
  const { default: S3rver } = await import('s3rver');
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
  const { port } = (await s3rver.run()) as AddressInfo;
  let stats = emptyStats();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });

  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const counted = stats;
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://x');
    const kind = url.searchParams.has('list-type') || (method === 'GET' && url.pathname.split('/').filter(Boolean).length === 1) ? 'LIST' : url.pathname.endsWith('/.mirror/deploy-state.json') ? `state ${method}` : method;
    res.once('close', () => {
      const timing = (counted.timings[kind] ??= { count: 0, ms: 0 });
      timing.count++;
      timing.ms += performance.now() - started;
    });
    counted.requests[method] = (counted.requests[method] ?? 0) + 1;
    if (!['GET', 'HEAD', 'PUT'].includes(method) && counted.otherSamples.length < 10) counted.otherSamples.push(`${method} ${req.url}`);
    req.on('data', (chunk: Buffer) => {
      counted.sentBytes[method] = (counted.sentBytes[method] ?? 0) + chunk.length;
    });
    const upstream = request({ host: '127.0.0.1', port, method, path: req.url, headers: req.headers, agent }, (answer) => {
      const status = answer.statusCode ?? 500;
      if (status >= 400 && counted.errors++ < 10) counted.errorSamples.push(`${status} ${method} ${req.url}`);
      if (method === 'PUT' && status === 200) {
        counted.putKeys.push(decodeURIComponent(url.pathname.split('/').slice(1).join('/')));
      }
      answer.on('data', (chunk: Buffer) => {
        counted.receivedBytes += chunk.length;
      });
      res.writeHead(status, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (error) => {
      if (counted.errors++ < 10) counted.errorSamples.push(`${error.message} ${method} ${req.url}`);
      res.destroy();
    });
    req.pipe(upstream);
  };
  const proxy = createServer(forward);
  proxy.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));

  const send = (message: FromChild) => process.send!(message);
  process.on('message', async (message: ToChild) => {
    if (message.type === 'stats') {
      send({ type: 'stats', stats });
      if (message.reset) stats = emptyStats();
    } else if (message.type === 'close') {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      agent.destroy();
      await s3rver.close();
      send({ type: 'closed' });
      process.disconnect();
    }
  });
  // The parent went away without closing us: do not linger.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const [directory, ...buckets] = process.argv.slice(2);
  if (!directory || buckets.length === 0) throw new Error('Usage: s3-server.ts DIR BUCKET...');
  await runChild(directory, buckets);
}
