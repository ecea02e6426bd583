// What the soak runs against: a Redis of its own on a spare port, a PostgreSQL database of its
// own (created in the server SOAK_DATABASE_URL or TEST_DATABASE_URL names, dropped at the end),
// and `mirror serve` replicas on fixed ports sharing one data directory, each one killable and
// restartable on the same address (its fleet listener takes whatever port FLEET_PORT gives it).
// With SOAK_LOG_DIR set, each replica's output goes to <dir>/replica-<name>.log as well, every
// start appended, so what it logged survives the soak's cleanup.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { packagePath } from '../../generator/package-root.ts';

const MIRROR = packagePath('scripts', 'mirror.js');

export interface Replica {
  name: string;
  url: string;
  /** https://… of its fleet listener, from the line it printed at its last start. */
  fleetUrl: string;
  /** Changes at every start: a request belongs to the process that was running when it was sent. */
  generation: number;
  alive: boolean;
  start(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export function replica(name: string, port: number, env: Record<string, string>): Replica {
  let child: ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  const self: Replica = {
    name,
    url: `http://127.0.0.1:${port}`,
    fleetUrl: '',
    generation: 0,
    alive: false,
    async start() {
      child = spawn(process.execPath, [MIRROR, 'serve'], { env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
      keepLog(name, child);
      let output = '';
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      exited = new Promise((resolve) => child!.once('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name} did not start within 30 s:\n${output}`)), 30_000);
        child!.stdout!.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const fleet = /fleet API on (https:\/\/\S+)/.exec(output);
          if (/serving .* on http/.test(output) && fleet) {
            clearTimeout(timer);
            self.fleetUrl = fleet[1]!;
            resolve();
          }
        });
        void exited.then(() => reject(new Error(`${name} exited before listening:\n${output}`)));
      });
      self.generation++;
      self.alive = true;
    },
    async kill() {
      self.alive = false;
      child?.kill('SIGKILL');
      await exited;
    },
    async stop() {
      self.alive = false;
      child?.kill('SIGTERM');
      await exited;
    },
  };
  return self;
}

/** Appends the child's output to SOAK_LOG_DIR/replica-<name>.log, when that is set. */
function keepLog(name: string, child: ChildProcess): void {
  const dir = process.env.SOAK_LOG_DIR;
  if (!dir) return;
  const log = createWriteStream(path.join(dir, `replica-${name}.log`), { flags: 'a' });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  child.once('close', () => log.end());
}

export interface OwnRedis {
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** redis-server without persistence on a port of its own; stopping it is an outage, starting it the recovery. */
export async function ownRedis(): Promise<OwnRedis> {
  const port = await sparePort();
  let child: ChildProcess | undefined;
  return {
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
      child.once('error', () => undefined);
      let output = '';
      await new Promise<void>((resolve, reject) => {
        child!.once('error', (error) => reject(new Error(`cannot start redis-server (${error.message}); the soak needs it installed`)));
        child!.stdout!.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (/Ready to accept connections/.test(output)) resolve();
        });
        child!.once('exit', (code) => reject(new Error(`redis-server exited with ${code}:\n${output}`)));
      });
    },
    async stop() {
      const stopping = child;
      if (!stopping || stopping.exitCode !== null || stopping.signalCode !== null) return;
      const gone = new Promise((resolve) => stopping.once('exit', resolve));
      stopping.kill('SIGKILL');
      await gone;
    },
  };
}

/** A database of the soak's own; `drop` removes it, connections and all. */
export async function ownDatabase(serverUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `mirror_soak_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.query(`drop database if exists ${name} with (force)`).finally(() => admin.end());
    },
  };
}

/** Runs a `mirror` command to the end and resolves with what it printed; rejects with its output when it fails. */
export async function mirror(args: string[], env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [MIRROR, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    output += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`mirror ${args.join(' ')} exited with ${String(code)}:\n${output}`);
  return stdout;
}

export async function sparePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
