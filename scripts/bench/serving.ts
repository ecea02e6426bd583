// Serving rows: the bundled sample, built once, served side by side by `mirror serve`, by nginx
// with the generated config (1 worker) and by a bare Koa handler (bare-koa.ts), each in its own
// process; autocannon loads each in turn from a process of its own (50 connections, a 2 s warm-up,
// then 10 s measured), for a small JSON index and a 302 download redirect: requests per second,
// p99 latency and the ratios. Every server logs each request to a file, as in production.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, open, readFile, writeFile, type FileHandle } from 'node:fs/promises';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { currentBuild } from '../../generator/publish/local-dir.ts';
import { nginxConfig } from '../../generator/publish/nginx.ts';
import type { Row } from './table.ts';
import { ISOLATION } from './upload.ts';

const execFileAsync = promisify(execFile);

const CONNECTIONS = 50;
const DURATION_S = 10;
const WARM_UP_S = 2;
const START_TIMEOUT_MS = 60_000;
/** The sidecar against nginx, and against the bare Koa handler. */
const NGINX_TARGET = 0.25;
const KOA_TARGET = 0.9;

const JSON_PATH = '/binary/releases/agent-as-code/versions';
const JSON_KEY = 'binary/releases/agent-as-code/versions.json';
const REDIRECT_URL = '/v2/agent-releases/latest/download?platform=windows';

/**
 * The sidecar as deployed, minus the limits' refusals: the request log on at `info`, and every
 * request counted by the per-address limiters (reads and API alike) against a ceiling no bench reaches.
 */
const SIDECAR_SETTINGS: Record<string, string> = { LOG_LEVEL: 'info', RATE_LIMIT_IP_PER_MINUTE: '1000000000', RATE_LIMIT_READS_PER_MINUTE: '1000000000' };
const SHOWN_SETTINGS = Object.entries(SIDECAR_SETTINGS).map(([name, value]) => `${name}=${value}`).join(' ');

type ServerName = 'sidecar' | 'nginx' | 'koa';

interface Load {
  requestsPerSecond: number;
  p99Ms: number;
  /** Connections that failed (a reset as a server closes a keep-alive connection); shown when any. */
  errors: number;
}

interface Target {
  what: string;
  url: string;
  /** The status class every answer must have. */
  status: '2xx' | '3xx';
}

interface Running {
  url: string;
  close(): Promise<void>;
}

export async function benchServing(work: string, repo: string, progress: (line: string) => void): Promise<Row[]> {
  try {
    return await serveAndLoad(work, repo, progress);
  } catch (error) {
    // nginx with its njs module may be missing here; the other groups' rows still print.
    progress(`serving: failed: ${(error as Error).message}`);
    return [{ measured: 'Serving a small JSON index and a 302 redirect: `mirror serve` against nginx and bare Koa', ours: `not run: ${(error as Error).message}`, reference: '—', target: `≥ ${NGINX_TARGET}× nginx and ≥ ${KOA_TARGET}× bare Koa`, ourCommand: 'BENCH_ROWS=serving npm run bench' }];
  }
}

async function serveAndLoad(work: string, repo: string, progress: (line: string) => void): Promise<Row[]> {
  const dir = path.join(work, 'serving');
  const data = path.join(dir, 'data');
  const site = path.join(dir, 'site');
  await mkdir(data, { recursive: true });
  const env = { ...process.env, ...ISOLATION, MIRROR_DATA_DIR: data };
  progress('serving: building the sample store');
  await execFileAsync(process.execPath, ['dist/mirror.js', 'build', '--releases', 'releases', '--out', site], { cwd: repo, env });
  const build = (await currentBuild(site))!;
  const jsonBytes = (await readFile(path.join(build, 'public', JSON_KEY))).length;

  const servers: Partial<Record<ServerName, Running>> = {};
  try {
    servers.sidecar = await startSidecar(repo, dir, site, env);
    const location = (await fetch(servers.sidecar.url + REDIRECT_URL, { redirect: 'manual' })).headers.get('location');
    if (!location) throw new Error(`mirror serve answered GET ${REDIRECT_URL} without a Location`);
    servers.nginx = await startNginx(dir, site, path.join(data, 'blobs'));
    servers.koa = await startKoa(repo, dir, path.join(build, 'public', JSON_KEY), location);
    const targets: Target[] = [
      { what: `a small JSON index (\`GET ${JSON_PATH}\`, ${jsonBytes} bytes)`, url: JSON_PATH, status: '2xx' },
      { what: `a 302 download redirect (\`GET ${REDIRECT_URL}\`)`, url: REDIRECT_URL, status: '3xx' },
    ];
    const rows: Row[] = [];
    for (const target of targets) {
      const loads = {} as Record<ServerName, Load>;
      for (const name of ['nginx', 'sidecar', 'koa'] as const) {
        progress(`serving: ${name}: ${target.url}, ${CONNECTIONS} connections, ${WARM_UP_S} s warm-up and ${DURATION_S} s`);
        loads[name] = await measure(repo, servers[name]!.url + target.url, target.status);
      }
      rows.push(row(target, loads));
    }
    return rows;
  } finally {
    for (const server of Object.values(servers)) await server.close();
  }
}

function row(target: Target, loads: Record<ServerName, Load>): Row {
  const { sidecar, nginx, koa } = loads;
  const ofNginx = sidecar.requestsPerSecond / nginx.requestsPerSecond;
  const ofKoa = sidecar.requestsPerSecond / koa.requestsPerSecond;
  return {
    measured: `Serving ${target.what}: ${CONNECTIONS} connections, ${DURATION_S} s after a ${WARM_UP_S} s warm-up (autocannon in its own process); each server logs every request to a file, and the sidecar's rate limiter counts every request`,
    ours: `\`mirror serve\`: ${rate(sidecar)}: ${ofNginx.toFixed(2)}× nginx, ${ofKoa.toFixed(2)}× bare Koa`,
    reference: `nginx, generated config, 1 worker: ${rate(nginx)}; bare Koa handler: ${rate(koa)}, ${(koa.requestsPerSecond / nginx.requestsPerSecond).toFixed(2)}× nginx`,
    target: `≥ ${NGINX_TARGET}× nginx and ≥ ${KOA_TARGET}× bare Koa`,
    met: ofNginx >= NGINX_TARGET && ofKoa >= KOA_TARGET,
    ourCommand: `${SHOWN_SETTINGS} node dist/mirror.js serve --site $SITE --port $PORT; npx autocannon -c ${CONNECTIONS} -d ${DURATION_S} 'http://127.0.0.1:$PORT${target.url}'`,
    referenceCommand: `mirror nginx-conf --site $SITE --listen 127.0.0.1:$PORT --access-log logs/access.log --error-log logs/error.log with worker_processes 1, nginx -p $PREFIX -c nginx.conf -g 'daemon off;'; node --import tsx scripts/bench/bare-koa.ts (the same bytes from memory); the same autocannon`,
  };
}

function rate(load: Load): string {
  const errors = load.errors > 0 ? ` (${load.errors} connection errors)` : '';
  return `${Math.round(load.requestsPerSecond).toLocaleString('en')} req/s, p99 ${load.p99Ms} ms${errors}`;
}

/** autocannon in a child process, warm-up then the measured run; every answer must be of `status`'s class, and at most 1 in 1,000 requests may fail. */
async function measure(repo: string, url: string, status: Target['status']): Promise<Load> {
  const autocannon = async (seconds: number) => {
    const { stdout } = await execFileAsync(process.execPath, [path.join(repo, 'node_modules', 'autocannon', 'autocannon.js'), '-c', String(CONNECTIONS), '-d', String(seconds), '-j', url], { maxBuffer: 16 << 20 });
    return JSON.parse(stdout) as { requests: { average: number; total: number }; latency: { p99: number }; errors: number; timeouts: number } & Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>;
  };
  await autocannon(WARM_UP_S);
  const result = await autocannon(DURATION_S);
  const answered = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
  if (result.errors > answered / 1000 || result.timeouts > 0 || result[status] !== answered) {
    throw new Error(`${url}: ${answered} answers, ${result[status]} of them ${status}; ${result.errors} errors, ${result.timeouts} timeouts`);
  }
  return { requestsPerSecond: result.requests.average, p99Ms: result.latency.p99, errors: result.errors };
}

/** `mirror serve` with its output (the request log) appended to a file. */
async function startSidecar(repo: string, dir: string, site: string, env: NodeJS.ProcessEnv): Promise<Running> {
  const port = await freePort();
  const log = await open(path.join(dir, 'sidecar.log'), 'a');
  const child = spawn(process.execPath, ['dist/mirror.js', 'serve', '--site', site, '--port', String(port), '--host', '127.0.0.1'], {
    cwd: repo,
    env: { ...env, ...SIDECAR_SETTINGS, FLEET_PORT: '0' },
    stdio: ['ignore', log.fd, log.fd],
  });
  return started('mirror serve', child, `http://127.0.0.1:${port}`, '/healthz', log);
}

/** nginx in the foreground with the generated config, 1 worker, its access log in its prefix; answering `probe` when started. */
export async function startNginx(dir: string, site: string, blobs: string, { probe = JSON_PATH, preloadRoutesBytes }: { probe?: string; preloadRoutesBytes?: number } = {}): Promise<Running & { pid: number }> {
  const prefix = path.join(dir, 'nginx');
  await mkdir(path.join(prefix, 'logs'), { recursive: true });
  const port = await freePort();
  const file = path.join(prefix, 'nginx.conf');
  await writeFile(file, await nginxConfig({ site, blobs, listen: `127.0.0.1:${port}`, workers: 1, accessLog: 'logs/access.log', errorLog: 'logs/error.log', preloadRoutesBytes }));
  // As root, the worker would switch to `nobody`, who cannot read the 0700 work folder.
  const user = process.getuid?.() === 0 ? ` user ${userInfo().username};` : '';
  const child = spawn('nginx', ['-p', prefix, '-c', file, '-g', `daemon off; pid ${path.join(prefix, 'nginx.pid')};${user}`], { stdio: 'ignore' });
  return { ...(await started('nginx', child, `http://127.0.0.1:${port}`, probe)), pid: child.pid! };
}

async function startKoa(repo: string, dir: string, jsonFile: string, location: string): Promise<Running> {
  const port = await freePort();
  const log = await open(path.join(dir, 'koa.log'), 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/bench/bare-koa.ts', String(port), jsonFile, JSON_PATH, REDIRECT_URL, location], { cwd: repo, stdio: ['ignore', log.fd, log.fd] });
  return started('the bare Koa handler', child, `http://127.0.0.1:${port}`, JSON_PATH, log);
}

/** Resolves when `probe` answers 200; `close` stops the child (SIGTERM, then SIGKILL). */
async function started(name: string, child: ChildProcess, url: string, probe: string, log?: FileHandle): Promise<Running> {
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await log?.close();
  };
  const deadline = performance.now() + START_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) break;
    const status = await fetch(url + probe).then((answer) => answer.status, () => 0);
    if (status === 200) return { url, close };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await close();
  throw new Error(`${name} did not answer GET ${probe} with 200 within ${START_TIMEOUT_MS / 1000} s (exit code ${child.exitCode})`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
