// The fleet benchmark's load generator, in a child process of its own so it does not share the
// event loop of the server it measures. Every agent gets one keep-alive TLS connection presenting
// its own client certificate, opened before the run; W workers each own every W-th agent and send
// their agents' heartbeats round-robin, one request at a time, so W requests are in flight. The
// load runs without a pause from the warm-up to the last window; the parent is told when each
// window starts and ends (to read its own CPU time) and gets each window's count and latencies.
// Started with `fork` (an IPC channel): `node --import tsx scripts/bench/heartbeat-load.ts`.
// Messages: parent → child `{ type: 'run', plan }`; child → parent `{ type: 'connected' }`,
// `{ type: 'window-start' }`, `{ type: 'window-end', window }`, `{ type: 'done' }`, `{ type: 'failed', message }`.
// HTTP/1.1 is written by hand here, as wrk and autocannon do: each connection writes one request
// built once and reads the status and Content-Length of the answer. Node's https.request costs
// about as much per request as the server under test, which would cap the reference's rate.
import { fork } from 'node:child_process';
import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

/** TLS handshakes in progress at once while the connections open. */
const CONNECTING_AT_ONCE = 32;

export interface LoadAgent {
  id: string;
  cert: string;
  key: string;
  /** The agent's JWT, sent as Authorization: Bearer. */
  token: string;
}

export interface LoadPlan {
  /** https://host:port of the server. */
  url: string;
  /** The CA the server's certificate comes from, PEM. */
  ca: string;
  agents: LoadAgent[];
  /** Requests in flight at once: each worker sends one after the other. */
  workers: number;
  /** JSON body of every heartbeat. */
  body: string;
  warmUpMs: number;
  windowMs: number;
  windows: number;
}

export interface LoadWindow {
  requests: number;
  ms: number;
  p50Ms: number;
  p99Ms: number;
  /** The load generator's own CPU time (user + system) in the window. */
  cpuMs: number;
}

export interface LoadResult {
  /** Time to open every agent's connection (TLS handshakes with client certificates). */
  connectMs: number;
  windows: LoadWindow[];
}

type ToChild = { type: 'run'; plan: LoadPlan };
type FromChild =
  | { type: 'connected'; ms: number }
  | { type: 'window-start' }
  | { type: 'window-end'; window: LoadWindow }
  | { type: 'done' }
  | { type: 'failed'; message: string };

/** Runs the plan in a child process; `onWindow` is called as each measured window starts and ends. */
export function runHeartbeatLoad(plan: LoadPlan, onWindow: { start(): void; end(): void }): Promise<LoadResult> {
  const child = fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise<LoadResult>((resolve, reject) => {
    let connectMs = 0;
    const windows: LoadWindow[] = [];
    let settled = false;
    child.on('message', (message: FromChild) => {
      if (message.type === 'connected') connectMs = message.ms;
      else if (message.type === 'window-start') onWindow.start();
      else if (message.type === 'window-end') {
        onWindow.end();
        windows.push(message.window);
      } else if (message.type === 'done') {
        settled = true;
        resolve({ connectMs, windows });
      } else {
        settled = true;
        reject(new Error(`The heartbeat load generator failed: ${message.message}`));
      }
    });
    child.once('exit', (code) => {
      if (!settled) reject(new Error(`The heartbeat load generator exited (${code}) before it finished`));
    });
    child.send({ type: 'run', plan } satisfies ToChild);
  });
}

/** One agent's keep-alive connection; `send` writes its heartbeat and resolves with the answer's status. */
interface Connection {
  send(): Promise<void>;
  close(): void;
}

async function runChild(plan: LoadPlan, send: (message: FromChild) => void): Promise<void> {
  const began = performance.now();
  const connections: Connection[] = [];
  for (let next = 0; next < plan.agents.length; next += CONNECTING_AT_ONCE) {
    connections.push(...(await Promise.all(plan.agents.slice(next, next + CONNECTING_AT_ONCE).map((agent) => openConnection(plan, agent)))));
  }
  send({ type: 'connected', ms: performance.now() - began });

  let stopped = false;
  let failure: Error | undefined;
  let latencies: number[] = [];
  const workers = Array.from({ length: plan.workers }, async (_, worker) => {
    const own = connections.filter((_, i) => i % plan.workers === worker);
    for (let turn = 0; !stopped && !failure; turn++) {
      const started = performance.now();
      await own[turn % own.length]!.send();
      latencies.push(performance.now() - started);
    }
  });
  const ended = Promise.all(workers).catch((error: unknown) => {
    failure = error as Error;
  });

  await sleep(plan.warmUpMs);
  for (let window = 0; window < plan.windows && !failure; window++) {
    latencies = [];
    const started = performance.now();
    const cpu = process.cpuUsage();
    send({ type: 'window-start' });
    await sleep(plan.windowMs);
    const taken = latencies;
    const ms = performance.now() - started;
    const used = process.cpuUsage(cpu);
    send({ type: 'window-end', window: { requests: taken.length, ms, ...percentiles(taken), cpuMs: (used.user + used.system) / 1000 } });
  }
  stopped = true;
  await ended;
  for (const connection of connections) connection.close();
  if (failure) throw failure;
}

function openConnection(plan: LoadPlan, agent: LoadAgent): Promise<Connection> {
  const url = new URL(plan.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const request = Buffer.from(
    `POST /api/v1/agents/${agent.id}/heartbeat HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${agent.token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(plan.body)}\r\n\r\n${plan.body}`,
  );
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({ host, port: Number(url.port), ca: plan.ca, cert: agent.cert, key: agent.key, ...(isIP(host) ? {} : { servername: host }) });
    socket.setNoDelay(true);
    let received: Buffer = Buffer.alloc(0);
    let pending: { resolve: () => void; reject: (error: Error) => void } | undefined;
    const fail = (error: Error) => {
      const waiting = pending;
      pending = undefined;
      waiting?.reject(error);
    };
    socket.on('data', (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      let answer;
      try {
        answer = parseAnswer(received);
      } catch (error) {
        return fail(error as Error);
      }
      if (!answer) return;
      const waiting = pending;
      pending = undefined;
      const text = received.toString('utf8', 0, answer.end);
      received = received.subarray(answer.end);
      if (answer.status !== 200) waiting?.reject(new Error(`agent ${agent.id}: the heartbeat answered ${text}`));
      else waiting?.resolve();
    });
    socket.once('secureConnect', () =>
      resolve({
        send: () =>
          new Promise<void>((resolveSend, rejectSend) => {
            pending = { resolve: resolveSend, reject: rejectSend };
            socket.write(request);
          }),
        close: () => socket.destroy(),
      }),
    );
    socket.on('error', (error) => {
      reject(error);
      fail(error);
    });
    socket.on('close', () => fail(new Error(`agent ${agent.id}: the server closed the connection`)));
  });
}

/** The status and where the answer ends, once it has all arrived; answers without Content-Length are refused. */
function parseAnswer(buffer: Buffer): { status: number; end: number } | undefined {
  const headEnd = buffer.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const head = buffer.toString('latin1', 0, headEnd);
  const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
  if (!length) throw new Error(`Expected an answer with Content-Length, got ${head}`);
  const end = headEnd + 4 + Number(length[1]);
  return buffer.length < end ? undefined : { status: Number(head.slice(9, 12)), end };
}

function percentiles(ms: number[]): { p50Ms: number; p99Ms: number } {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const send = (message: FromChild) => process.send!(message);
  process.once('message', (message: ToChild) => {
    runChild(message.plan, send).then(
      () => {
        send({ type: 'done' });
        process.disconnect();
      },
      (error: unknown) => {
        send({ type: 'failed', message: (error as Error).message });
        process.disconnect();
      },
    );
  });
  // The parent went away: do not linger.
  process.on('disconnect', () => process.exit(0));
}
