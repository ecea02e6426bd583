// The fleet (seed 004) on an in-process sidecar with its real HTTPS listener, on SQLite or a fresh
// PostgreSQL database, and clients that talk to it as agents and operators do: Node's https with
// client certificates, and WebSockets over TLS. Every server has its own data directory.
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { WebSocket } from 'ws';
import { build } from '../../generator/pipeline.ts';
import { localIssuer } from '../../sidecar/auth/jwt.ts';
import { loadConfig } from '../../sidecar/config.ts';
import type { FleetCa } from '../../sidecar/fleet/ca.ts';
import { loadOrCreateCa } from '../../sidecar/fleet/ca.ts';
import { createLogger } from '../../sidecar/middleware/request-log.ts';
import { createSidecar, type Sidecar } from '../../sidecar/runtime.ts';
import type { RunningServer } from '../../sidecar/server.ts';
import type { RegistryBackend } from './registry.ts';
import { SAMPLE_RELEASES } from './sample-site.ts';
import { removeDir, tempDir } from './store.ts';

export { BACKENDS } from './registry.ts';

export interface JsonResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: any;
}

export interface Credentials {
  ca?: string;
  cert?: string;
  key?: string;
  token?: string;
}

/** One HTTPS request on a connection of its own (so each request presents the certificate given). */
export function httpsJson(url: string, method: string, body: unknown, { ca, cert, key, token }: Credentials, headers: Record<string, string> = {}): Promise<JsonResponse> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const options: RequestOptions = {
    method,
    agent: false,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(payload !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
  };
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // Not JSON: the text is the body.
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export interface FleetServer {
  /** https://127.0.0.1:PORT of the fleet listener. */
  url: string;
  sidecar: Sidecar;
  ca: FleetCa;
  /** The CA certificate, written to a file for curl's --cacert. */
  caFile: string;
  dir: string;
  env: Record<string, string>;
  /** Errors the sidecar logged. */
  errors: string[];
  operatorToken(scopes?: string[], sub?: string): Promise<string>;
  /** A call with an operator token (fleet:admin unless `token` is given). */
  operator(method: string, pathname: string, body?: unknown, token?: string): Promise<JsonResponse>;
  registrationToken(labels?: Record<string, string>, ttlSeconds?: number): Promise<string>;
  register(name: string, options?: { capabilities?: string[]; labels?: Record<string, string> }): Promise<FleetAgentClient>;
  close(): Promise<void>;
}

export interface FleetAgentClient {
  id: string;
  /** The JWT from registration. */
  token: string;
  cert: string;
  key: string;
  registration: any;
  /** cert and key written to files for curl's --cert and --key. */
  certFile: string;
  keyFile: string;
  /** A call as this agent: its certificate and token unless others are given. */
  call(method: string, pathname: string, body?: unknown, override?: Credentials): Promise<JsonResponse>;
  heartbeat(body?: Record<string, unknown>): Promise<JsonResponse>;
  stream(override?: Credentials): Promise<StreamClient>;
}

export interface StreamClient {
  socket: WebSocket;
  /** The next message of this type (earlier ones of other types are kept for their own waits). */
  next(type: string, timeoutMs?: number): Promise<any>;
  send(message: unknown): void;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

const QUIET = { LOG_LEVEL: 'silent', RATE_LIMIT_IP_PER_MINUTE: '0', RATE_LIMIT_USER_PER_MINUTE: '0', RATE_LIMIT_UPLOADS_PER_HOUR: '0' };

export async function startFleet(backend: RegistryBackend, settings: Record<string, string> = {}, database?: { env: Record<string, string> }): Promise<FleetServer> {
  const dir = await tempDir('mirror-fleet-');
  const releasesDir = path.join(dir, 'releases');
  const dataDir = path.join(dir, 'data');
  await mkdir(releasesDir, { recursive: true });
  await cp(path.join(SAMPLE_RELEASES, 'mirror.json'), path.join(releasesDir, 'mirror.json'));
  await build({ releasesDir, site: path.join(dataDir, 'site') });
  const owned = database ? undefined : await backend.create();
  const env = { MIRROR_RELEASES: releasesDir, MIRROR_DATA_DIR: dataDir, ...QUIET, ...(database ?? owned)!.env, ...settings };
  const errors: string[] = [];
  let closed = false;
  const logger = createLogger({ level: 'error', destination: { write: (line: string) => void (closed || errors.push(line)) } });
  const config = loadConfig(env);
  const sidecar = await createSidecar(config, { migrateAtStart: true, logger });
  const running: RunningServer = await sidecar.fleet.listen(0, '127.0.0.1');
  const ca = await loadOrCreateCa(config.fleetCaFile);
  const caFile = path.join(dir, 'ca.pem');
  await writeFile(caFile, ca.certificate);
  const issuer = await localIssuer({ dir: config.authDir });
  const operatorToken = (scopes = ['fleet:admin'], sub = 'ops') => issuer.mint(sub, 3600, scopes);
  const server: FleetServer = {
    url: running.url,
    sidecar,
    ca,
    caFile,
    dir,
    env,
    errors,
    operatorToken,
    async operator(method, pathname, body, token) {
      return httpsJson(`${running.url}${pathname}`, method, body, { ca: ca.certificate, token: token ?? (await operatorToken()) });
    },
    async registrationToken(labels = {}, ttlSeconds = 3600) {
      const answer = await server.operator('POST', '/api/v1/agents/registration-tokens', { labels, ttlSeconds });
      if (answer.status !== 201) throw new Error(`registration token: ${answer.status} ${JSON.stringify(answer.body)}`);
      return answer.body.token as string;
    },
    async register(name, { capabilities = ['docker', 'compose'], labels = {} } = {}) {
      const token = await server.registrationToken();
      const answer = await httpsJson(`${running.url}/api/v1/agents/register`, 'POST', { name, version: '1.0.0', capabilities, labels }, { ca: ca.certificate }, { 'X-Agent-Token': token });
      if (answer.status !== 201) throw new Error(`register ${name}: ${answer.status} ${JSON.stringify(answer.body)}`);
      return agentClient(running.url, ca.certificate, dir, answer.body);
    },
    async close() {
      await running.close();
      await sidecar.close();
      closed = true;
      await owned?.dispose();
      await removeDir(dir);
    },
  };
  return server;
}

async function agentClient(url: string, caPem: string, dir: string, registration: any): Promise<FleetAgentClient> {
  const id = registration.agentId as string;
  const certFile = path.join(dir, `${id}.crt`);
  const keyFile = path.join(dir, `${id}.key`);
  await writeFile(certFile, registration.certificate.cert);
  await writeFile(keyFile, registration.certificate.key, { mode: 0o600 });
  const own: Credentials = { ca: caPem, cert: registration.certificate.cert, key: registration.certificate.key, token: registration.token };
  const client: FleetAgentClient = {
    id,
    token: registration.token,
    cert: registration.certificate.cert,
    key: registration.certificate.key,
    registration,
    certFile,
    keyFile,
    call: (method, pathname, body, override = {}) => httpsJson(`${url}${pathname}`, method, body, { ...own, ...override }),
    heartbeat: (body = { status: 'healthy', resourceUsage: { cpu: 10, memory: 20, disk: 30 }, runningTasks: 0 }) => client.call('POST', `/api/v1/agents/${id}/heartbeat`, body),
    stream: (override = {}) => openStream(`${url.replace(/^https/, 'wss')}/api/v1/agents/${id}/task-stream`, { ...own, ...override }),
  };
  return client;
}

/** Resolves once the stream is open; rejects with the refusal's status and body. */
export function openStream(url: string, { ca, cert, key, token }: Credentials): Promise<StreamClient> {
  const socket = new WebSocket(url, { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const inbox: any[] = [];
  const waiters: { type: string; resolve: (message: any) => void }[] = [];
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString());
    const waiter = waiters.findIndex((entry) => entry.type === message.type);
    if (waiter >= 0) waiters.splice(waiter, 1)[0]!.resolve(message);
    else inbox.push(message);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    socket.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => reject(Object.assign(new Error(`task stream refused: ${res.statusCode}`), { status: res.statusCode, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') })));
    });
    socket.once('error', reject);
    socket.once('open', () =>
      resolve({
        socket,
        closed,
        send: (message) => socket.send(JSON.stringify(message)),
        close: () => socket.close(),
        next(type, timeoutMs = 5_000) {
          const queued = inbox.findIndex((message) => message.type === type);
          if (queued >= 0) return Promise.resolve(inbox.splice(queued, 1)[0]);
          return new Promise((resolveMessage, rejectMessage) => {
            const timer = setTimeout(() => rejectMessage(new Error(`no ${type} on the task stream within ${timeoutMs} ms (inbox: ${JSON.stringify(inbox)})`)), timeoutMs);
            waiters.push({ type, resolve: (message) => (clearTimeout(timer), resolveMessage(message)) });
          });
        },
      }),
    );
  });
}
