// Fleet rows (seed 004), on SQLite and on PostgreSQL: an in-process sidecar's fleet listener with
// 1,000 agents registered over HTTPS, then
// - heartbeats per second over mutual TLS with keep-alive (heartbeat-load.ts, a child process: one
//   connection per agent with its certificate, 32 requests in flight), against a bare Node HTTPS
//   handler with the same TLS settings under the same load, in alternating rounds, target ≥ 0.5×;
// - task assignment latency: an operator's POST /api/v1/agents/{id}/tasks until `task_assigned`
//   arrives on the agent's open task stream, against a bare operator GET on the same listener.
// PostgreSQL rows run when TEST_DATABASE_URL or BENCH_DATABASE_URL names a server: a fresh
// database on it, dropped afterwards; otherwise they say "not run".
import { cp, mkdir } from 'node:fs/promises';
import { Agent, createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { localIssuer } from '../../sidecar/auth/jwt.ts';
import { loadConfig, type Config } from '../../sidecar/config.ts';
import { OPERATOR_SCOPE } from '../../sidecar/fleet/auth.ts';
import { loadOrCreateCa, type FleetCa } from '../../sidecar/fleet/ca.ts';
import { createRegistrationToken } from '../../sidecar/fleet/registration.ts';
import { createSidecar } from '../../sidecar/runtime.ts';
import type { StateDb } from '../../sidecar/store/db.ts';
import { runHeartbeatLoad, type LoadAgent, type LoadPlan, type LoadWindow } from './heartbeat-load.ts';
import { percentile, postgresBackend, QUIET_SIDECAR, SETTINGS_SHOWN, sqliteBackend, type Backend } from './registry.ts';
import { seconds } from './run.ts';
import type { Row } from './table.ts';

const AGENTS = 1_000;
const REGISTERING_AT_ONCE = 8;
const WORKERS = 32;
const WARM_UP_MS = 3_000;
const WINDOW_MS = 5_000;
const WINDOWS = 3;
/** Alternating rounds of the sidecar and the bare handler. */
const ROUNDS = 2;
const HEARTBEAT_TARGET = 0.5;
const WARM_UP_TASKS = 20;
const MEASURED_TASKS = 200;
const PUSH_TIMEOUT_MS = 10_000;
const HEARTBEAT = { status: 'healthy', resourceUsage: { cpu: 12.5, memory: 41.2, disk: 63.8 }, runningTasks: 0 };
const TASK = { taskType: 'docker.pull', payload: { image: 'nginx:1.27' }, timeout: 300 };

interface Throughput {
  windows: LoadWindow[];
  /** Server process CPU time (user + system) in each window. */
  cpuMs: number[];
  /** The machine's 1-minute load average at the end of each window: other processes share the CPUs too. */
  loadAverage: number[];
  connectMs: number;
}

interface Assignment {
  /** From sending the POST to `task_assigned` on the stream. */
  assignedMs: number[];
  /** From sending the POST to its 201. */
  createdMs: number[];
  /** GET /api/v1/agents/{id}, the same operator's connection. */
  getMs: number[];
}

interface FleetResult {
  database: 'SQLite' | 'PostgreSQL';
  /** Why there is no measurement, when there is none. */
  notRun?: string;
  registerMs?: number;
  ours?: Throughput | { failed: string };
  reference?: Throughput | { failed: string };
  assignment?: Assignment | { failed: string };
}

export async function benchFleet(work: string, repo: string, progress: (line: string) => void): Promise<Row[]> {
  const dir = path.join(work, 'fleet');
  const releasesDir = path.join(dir, 'releases');
  await mkdir(releasesDir, { recursive: true });
  await cp(path.join(repo, 'releases', 'mirror.json'), path.join(releasesDir, 'mirror.json'));

  const results: FleetResult[] = [await benchDatabase(sqliteBackend(path.join(dir, 'sqlite')), releasesDir, progress)];
  const postgres = postgresBackend(path.join(dir, 'postgres'));
  results.push(typeof postgres === 'string' ? { database: 'PostgreSQL', notRun: postgres } : await benchDatabase(postgres, releasesDir, progress));
  return [...results.map(heartbeatRow), ...results.map(assignmentRow)];
}

/** A fresh database and sidecar: register, assignment latency, heartbeats; then the bare server under the same load. */
async function benchDatabase(backend: Backend, releasesDir: string, progress: (line: string) => void): Promise<FleetResult> {
  const { database } = backend;
  const result: FleetResult = { database };
  const failed = (what: string) => (error: unknown) => {
    progress(`fleet: ${database}: ${what} failed: ${(error as Error).message}`);
    return { failed: (error as Error).message };
  };
  try {
    const opened = await backend.open();
    try {
      const config = loadConfig({ ...QUIET_SIDECAR, MIRROR_RELEASES: releasesDir, ...opened.env });
      const sidecar = await createSidecar(config, { migrateAtStart: true });
      let ca: FleetCa;
      let agents: LoadAgent[];
      try {
        const running = await sidecar.fleet.listen(0, '127.0.0.1');
        try {
          ca = await loadOrCreateCa(config.fleetCaFile);
          const operatorToken = await (await localIssuer({ dir: config.authDir })).mint('bench', 3600, [OPERATOR_SCOPE]);
          progress(`fleet: ${database}: registering ${AGENTS.toLocaleString('en')} agents over HTTPS, ${REGISTERING_AT_ONCE} at a time`);
          const started = performance.now();
          agents = await registerAgents(running.url, ca.certificate, opened.state);
          result.registerMs = performance.now() - started;
          progress(`fleet: ${database}: ${WARM_UP_TASKS + MEASURED_TASKS} tasks to one agent's open task stream`);
          result.assignment = await assignmentLatency(running.url, ca.certificate, agents[0]!, operatorToken).catch(failed('assignment latency'));
          const bare = await startBareServer(ca, config);
          try {
            // Rounds alternate between the sidecar and the bare handler, so a slower stretch of a
            // shared machine falls on both.
            for (let round = 1; round <= ROUNDS; round++) {
              progress(`fleet: ${database}: round ${round} of ${ROUNDS}: heartbeats, ${WORKERS} in flight over ${AGENTS.toLocaleString('en')} connections, ${WARM_UP_MS / 1000} s warm-up and ${WINDOWS} × ${WINDOW_MS / 1000} s, then the bare HTTPS handler under the same load`);
              result.ours = combine(result.ours, await throughput(running.url, ca.certificate, agents).catch(failed('heartbeats')));
              result.reference = combine(result.reference, await throughput(bare.url, ca.certificate, agents).catch(failed('the bare handler')));
            }
          } finally {
            await bare.close();
          }
        } finally {
          await running.close();
        }
      } finally {
        await sidecar.close();
      }
    } finally {
      await opened.state.close();
    }
  } catch (error) {
    progress(`fleet: ${database}: failed: ${(error as Error).message}`);
    result.notRun = `failed: ${(error as Error).message}`;
  } finally {
    await backend.dispose();
  }
  return result;
}

/** One-time tokens straight into the state database, then each agent registers over HTTPS as `curl` would. */
async function registerAgents(url: string, caPem: string, state: StateDb): Promise<LoadAgent[]> {
  const anonymous = new Agent({ keepAlive: true, maxSockets: REGISTERING_AT_ONCE, ca: caPem });
  const registered: LoadAgent[] = [];
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: REGISTERING_AT_ONCE }, async () => {
        while (next < AGENTS) {
          const n = next++;
          const { token } = await createRegistrationToken(state.db, { ttlSeconds: 3600, labels: { bench: 'fleet' }, createdBy: 'bench' }, new Date());
          const name = `bench-agent-${String(n).padStart(4, '0')}`;
          const answer = await httpsJson(anonymous, `${url}/api/v1/agents/register`, 'POST', { name, version: '1.0.0', capabilities: ['docker', 'compose'] }, { 'X-Agent-Token': token });
          if (answer.status !== 201) throw new Error(`Registering ${name} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
          const { agentId, token: jwt, certificate } = answer.body as { agentId: string; token: string; certificate: { cert: string; key: string } };
          registered[n] = { id: agentId, token: jwt, cert: certificate.cert, key: certificate.key };
        }
      }),
    );
  } finally {
    anonymous.destroy();
  }
  return registered;
}

/**
 * The agent's task stream open; each task created by an operator's POST on a keep-alive connection,
 * timed until its `task_assigned` arrives, then completed by the agent before the next; then GET
 * of the agent the same way.
 */
async function assignmentLatency(url: string, caPem: string, agent: LoadAgent, operatorToken: string): Promise<Assignment> {
  const operator = new Agent({ keepAlive: true, maxSockets: 1, ca: caPem });
  const own = new Agent({ keepAlive: true, maxSockets: 1, ca: caPem, cert: agent.cert, key: agent.key });
  const asAgent = { Authorization: `Bearer ${agent.token}` };
  const asOperator = { Authorization: `Bearer ${operatorToken}` };
  const beat = await httpsJson(own, `${url}/api/v1/agents/${agent.id}/heartbeat`, 'POST', HEARTBEAT, asAgent);
  if (beat.status !== 200) throw new Error(`The stream agent's heartbeat answered ${beat.status}: ${JSON.stringify(beat.body)}`);
  const stream = await openStream(`${url.replace(/^https/, 'wss')}/api/v1/agents/${agent.id}/task-stream`, caPem, agent);
  try {
    const assignedMs: number[] = [];
    const createdMs: number[] = [];
    for (let i = 0; i < WARM_UP_TASKS + MEASURED_TASKS; i++) {
      const pushed = stream.nextAssigned();
      const started = performance.now();
      const created = await httpsJson(operator, `${url}/api/v1/agents/${agent.id}/tasks`, 'POST', TASK, asOperator);
      const answered = performance.now();
      if (created.status !== 201) throw new Error(`Creating a task answered ${created.status}: ${JSON.stringify(created.body)}`);
      const { task, at } = await pushed;
      if (task.taskId !== created.body.taskId) throw new Error(`The stream pushed task ${task.taskId}; the operator created ${created.body.taskId}`);
      if (i >= WARM_UP_TASKS) {
        createdMs.push(answered - started);
        assignedMs.push(at - started);
      }
      const done = await httpsJson(own, `${url}/api/v1/agents/${agent.id}/tasks/${task.taskId}/complete`, 'POST', { success: true, leaseId: task.leaseId }, asAgent);
      if (done.status !== 200) throw new Error(`Completing task ${task.taskId} answered ${done.status}: ${JSON.stringify(done.body)}`);
    }
    const getMs: number[] = [];
    for (let i = 0; i < WARM_UP_TASKS + MEASURED_TASKS; i++) {
      const started = performance.now();
      const answer = await httpsJson(operator, `${url}/api/v1/agents/${agent.id}`, 'GET', undefined, asOperator);
      if (answer.status !== 200) throw new Error(`GET /api/v1/agents/${agent.id} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      if (i >= WARM_UP_TASKS) getMs.push(performance.now() - started);
    }
    return { assignedMs, createdMs, getMs };
  } finally {
    stream.close();
    operator.destroy();
    own.destroy();
  }
}

interface Pushed {
  task: { taskId: string; leaseId: string };
  /** performance.now() when the message arrived. */
  at: number;
}

/** The agent's task stream (wss, its certificate and JWT), open; `nextAssigned` waits for the next push. */
function openStream(url: string, caPem: string, agent: LoadAgent): Promise<{ nextAssigned(): Promise<Pushed>; close(): void }> {
  const socket = new WebSocket(url, { ca: caPem, cert: agent.cert, key: agent.key, headers: { Authorization: `Bearer ${agent.token}` } });
  // Pushes not yet waited for; a push the bench did not expect fails the check on the next task.
  const inbox: Pushed[] = [];
  let waiting: { resolve: (pushed: Pushed) => void; reject: (error: Error) => void } | undefined;
  socket.on('message', (data) => {
    const at = performance.now();
    const message = JSON.parse(data.toString()) as { type: string; task?: Pushed['task'] };
    if (message.type !== 'task_assigned') return;
    const waiter = waiting;
    waiting = undefined;
    if (waiter) waiter.resolve({ task: message.task!, at });
    else inbox.push({ task: message.task!, at });
  });
  socket.on('close', (code, reason) => waiting?.reject(new Error(`The task stream closed (${code} ${reason.toString()})`)));
  return new Promise((resolve, reject) => {
    socket.once('unexpected-response', (_req, res) => reject(new Error(`The task stream upgrade answered ${res.statusCode}`)));
    socket.on('error', reject);
    socket.once('open', () =>
      resolve({
        nextAssigned: () =>
          inbox.length > 0 ? Promise.resolve(inbox.shift()!) : new Promise<Pushed>((resolvePush, rejectPush) => {
            const timer = setTimeout(() => rejectPush(new Error(`No task_assigned within ${PUSH_TIMEOUT_MS} ms`)), PUSH_TIMEOUT_MS);
            waiting = {
              resolve: (pushed) => (clearTimeout(timer), resolvePush(pushed)),
              reject: (error) => (clearTimeout(timer), rejectPush(error)),
            };
          }),
        close: () => socket.close(),
      }),
    );
  });
}

function loadPlan(url: string, caPem: string, agents: LoadAgent[]): LoadPlan {
  return {
    url,
    ca: caPem,
    agents,
    workers: WORKERS,
    body: JSON.stringify(HEARTBEAT),
    warmUpMs: WARM_UP_MS,
    windowMs: WINDOW_MS,
    windows: WINDOWS,
  };
}

/** The load generator against `url`, with this process's CPU time read at each window's edges. */
async function throughput(url: string, caPem: string, agents: LoadAgent[]): Promise<Throughput> {
  const cpuMs: number[] = [];
  const loadAverage: number[] = [];
  let from = process.cpuUsage();
  const { windows, connectMs } = await runHeartbeatLoad(loadPlan(url, caPem, agents), {
    start: () => (from = process.cpuUsage()),
    end: () => {
      const used = process.cpuUsage(from);
      cpuMs.push((used.user + used.system) / 1000);
      loadAverage.push(loadavg()[0]!);
    },
  });
  return { windows, cpuMs, loadAverage, connectMs };
}

/**
 * A bare `https.createServer` with the fleet listener's TLS settings (a server certificate from the
 * same CA for the same names, the CA for client certificates, requestCert, rejectUnauthorized
 * false, TLS 1.2 and later, the same keep-alive and headers timeouts): reads the JSON body, answers `{"tasks":[]}`.
 */
async function startBareServer(ca: FleetCa, config: Config): Promise<{ url: string; close(): Promise<void> }> {
  const names = config.settings.FLEET_SERVER_NAMES.split(',').map((name) => name.trim()).filter(Boolean);
  const { cert, key } = await ca.issueServerCertificate(names, { ttlSeconds: 86_400 });
  const answer = JSON.stringify({ tasks: [] });
  const server = createServer({ cert, key, ca: [ca.certificate], requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, function bareHeartbeat(req, res) {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString());
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(answer) });
      res.end(answer);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The windows of both runs as one; a failure wins. */
function combine(earlier: Throughput | { failed: string } | undefined, later: Throughput | { failed: string }): Throughput | { failed: string } {
  if (!earlier) return later;
  if ('failed' in earlier) return earlier;
  if ('failed' in later) return later;
  return { windows: [...earlier.windows, ...later.windows], cpuMs: [...earlier.cpuMs, ...later.cpuMs], loadAverage: [...earlier.loadAverage, ...later.loadAverage], connectMs: Math.max(earlier.connectMs, later.connectMs) };
}

interface JsonAnswer {
  status: number;
  body: any;
}

function httpsJson(agent: Agent, url: string, method: string, body: unknown, headers: Record<string, string>): Promise<JsonAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: { ...headers, ...(payload === undefined ? {} : { 'Content-Type': 'application/json' }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: text });
        }
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function heartbeatRow(result: FleetResult): Row {
  const { database } = result;
  const server = `createSidecar(loadConfig({ ${SETTINGS_SHOWN}, ${database === 'SQLite' ? 'SQLite in MIRROR_DATA_DIR' : 'DATABASE_URL=<a fresh database>'} }), { migrateAtStart: true }).fleet.listen(0, '127.0.0.1') in the bench's process`;
  const load = `node --import tsx scripts/bench/heartbeat-load.ts (forked): ${AGENTS.toLocaleString('en')} keep-alive TLS connections, one per agent with its certificate, opened before the warm-up; ${WORKERS} workers, each owning 1/${WORKERS} of the agents and sending their heartbeats in turn, one at a time`;
  const row: Row = {
    measured: `Fleet heartbeats over mutual TLS with keep-alive, ${AGENTS.toLocaleString('en')} registered agents, ${database}: POST /api/v1/agents/{id}/heartbeat with the agent's certificate and JWT, ${WORKERS} in flight, load from a child process; median of ${ROUNDS * WINDOWS} × ${WINDOW_MS / 1000} s windows in ${ROUNDS} rounds alternating with the reference, each after ${WARM_UP_MS / 1000} s of warm-up${result.registerMs === undefined ? '' : ` (registering the agents took ${seconds(result.registerMs)})`}`,
    ours: '—',
    reference: '—',
    target: `≥ ${HEARTBEAT_TARGET}× the reference`,
    ourCommand: `BENCH_ROWS=fleet npm run bench: ${server}; ${load}`,
    referenceCommand: `https.createServer({ cert, key (from the same fleet CA for the same names), ca, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, read the body, JSON.parse, answer {"tasks":[]}) with keepAliveTimeout 65 s and headersTimeout 66 s, as the fleet listener, in the bench's process; the same load generator`,
  };
  if (result.notRun) return { ...row, ours: result.notRun };
  const { ours, reference } = result;
  if (!ours || 'failed' in ours) return { ...row, ours: `failed: ${ours?.failed ?? 'not measured'}`, met: false };
  row.ours = rate(ours, 'heartbeats');
  if (!reference || 'failed' in reference) return { ...row, reference: `failed: ${reference?.failed ?? 'not measured'}` };
  const ratio = median(ours.windows.map(perSecond)) / median(reference.windows.map(perSecond));
  const cpuRatio = cpuPerRequest(ours) / cpuPerRequest(reference);
  return { ...row, reference: `${rate(reference, 'requests')}; ours is ${ratio.toFixed(2)}× the rate, at ${cpuRatio.toFixed(1)}× the server CPU per request`, met: ratio >= HEARTBEAT_TARGET };
}

function assignmentRow(result: FleetResult): Row {
  const { database } = result;
  const fanout = database === 'SQLite' ? 'events in memory' : 'events through LISTEN/NOTIFY';
  const row: Row = {
    measured: `Fleet task assignment, ${database} (${fanout}): from sending an operator's POST /api/v1/agents/{id}/tasks to \`task_assigned\` on that agent's open task stream (wss with its certificate and JWT), ${MEASURED_TASKS} tasks one after the other after ${WARM_UP_TASKS} warm-up, each completed by the agent before the next (client and server share one Node process)`,
    ours: '—',
    reference: '—',
    target: '—',
    ourCommand: `BENCH_ROWS=fleet npm run bench: POST /api/v1/agents/{id}/tasks ${JSON.stringify(TASK)} with an operator token (fleet:admin) on a keep-alive connection; the stream opened with new WebSocket(wss://…/api/v1/agents/{id}/task-stream, { ca, cert, key, headers: { Authorization } })`,
    referenceCommand: `GET /api/v1/agents/{id} with the same operator token on the same connection, ${MEASURED_TASKS} after ${WARM_UP_TASKS} warm-up`,
  };
  if (result.notRun) return { ...row, ours: result.notRun };
  const { assignment } = result;
  if (!assignment || 'failed' in assignment) return { ...row, ours: `failed: ${assignment?.failed ?? 'not measured'}` };
  return {
    ...row,
    ours: `task_assigned ${latency(assignment.assignedMs)} (the POST's 201: ${latency(assignment.createdMs)})`,
    reference: `GET of the agent on the same listener and connection (the operator's token checked, the agent and its tasks read; no push): ${latency(assignment.getMs)}`,
  };
}

/**
 * `4,321 heartbeats/s (windows 4,300, 4,321, 4,350; p50 7.10 ms, p99 15.2 ms; server process CPU
 * 0.210 ms per request, 97% of a core; load generator 60% of a core; load average 2.1)`, of the median window.
 */
function rate(run: Throughput, unit: string): string {
  const rates = run.windows.map(perSecond);
  const middle = rates.indexOf(median(rates));
  const window = run.windows[middle]!;
  const share = (cpuMs: number) => `${Math.round((cpuMs / window.ms) * 100)}% of a core`;
  return `${Math.round(rates[middle]!).toLocaleString('en')} ${unit}/s (windows ${rates.map((r) => Math.round(r).toLocaleString('en')).join(', ')}; p50 ${ms(window.p50Ms)}, p99 ${ms(window.p99Ms)}; server process CPU ${(run.cpuMs[middle]! / window.requests).toFixed(3)} ms per request, ${share(run.cpuMs[middle]!)}; load generator ${share(window.cpuMs)}; load average ${run.loadAverage[middle]!.toFixed(1)})`;
}

/** Server process CPU per request over every window. */
function cpuPerRequest(run: Throughput): number {
  return run.cpuMs.reduce((a, b) => a + b, 0) / run.windows.reduce((sum, window) => sum + window.requests, 0);
}

function perSecond(window: LoadWindow): number {
  return window.requests / (window.ms / 1000);
}

/** The middle value of an odd count, the lower middle of an even one: always one of the values. */
function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;
}

/** `p50 1.23 ms, p99 4.56 ms` */
function latency(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  return `p50 ${ms(percentile(sorted, 0.5))}, p99 ${ms(percentile(sorted, 0.99))}`;
}

function ms(value: number): string {
  return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
}
