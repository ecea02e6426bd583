// nginx as a child process over a built site, with the generated config: shared by the suites
// that serve the sample through it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { DEBIAN_NJS_MODULE, nginxConfig, type NginxConfigOptions } from '../../generator/publish/nginx.ts';
import { SAMPLE_BLOBS } from './sample-site.ts';

export interface RunningNginx {
  url: string;
  /** What nginx wrote to its stdout and stderr. */
  log(): string;
  close(): Promise<void>;
}

/**
 * nginx as a child process on a free port, with its prefix, temp folders, pid file and access log in
 * a temporary folder, and its error log on stderr.
 */
export async function startNginx(site: string, blobs = SAMPLE_BLOBS, options: Pick<NginxConfigOptions, 'preloadRoutesBytes'> = {}): Promise<RunningNginx> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mirror-nginx-'));
  const port = await freePort();
  const file = path.join(dir, 'nginx.conf');
  await writeFile(file, await nginxConfig({ site, blobs, listen: `127.0.0.1:${port}`, accessLog: 'logs/access.log', errorLog: 'stderr', ...options }));
  return runNginx({ dir, file, port });
}

export interface NginxRun {
  /** nginx's prefix: relative paths in the config are under it; removed by `close()`. */
  dir: string;
  /** The config file. */
  file: string;
  /** The port the config listens on, on 127.0.0.1. */
  port: number;
}

/**
 * Starts nginx in the foreground as a process manager does: stdin, stdout and stderr are pipes
 * (Node's default, Unix sockets), so a config that opens /dev/stdout fails here as under systemd.
 */
export async function runNginx({ dir, file, port }: NginxRun): Promise<RunningNginx> {
  await mkdir(path.join(dir, 'logs'), { recursive: true });
  // As root, nginx's workers would switch to `nobody`, who cannot read the 0700 temporary folders.
  const user = process.getuid?.() === 0 ? `user ${userInfo().username};` : '';
  const child = spawn('nginx', ['-p', dir, '-c', file, '-g', `daemon off; pid ${path.join(dir, 'nginx.pid')}; ${user}`]);
  let log = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (log += chunk));
  }
  try {
    await waitForPort(port, child, () => log);
  } catch (error) {
    child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    log: () => log,
    async close() {
      if (child.exitCode === null) {
        const exited = new Promise((resolvePromise) => child.once('exit', resolvePromise));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}:\n${log()}`);
    const open = await new Promise<boolean>((resolvePromise) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolvePromise(true);
      });
      socket.on('error', () => resolvePromise(false));
    });
    if (open) return;
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 50));
  }
  throw new Error(`nginx did not listen on ${port} within 10 s:\n${log()}`);
}

export function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePromise(port));
    });
  });
}

/** A reason to skip, or false. CI installs `nginx` and `libnginx-mod-http-js`, and there a missing one fails the run. */
export function whyNginxCannotRun(): string | false {
  const version = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  const reason = version.error
    ? 'nginx is not installed (apt-get install nginx libnginx-mod-http-js)'
    : !existsSync(DEBIAN_NJS_MODULE)
      ? `the njs module is not at ${DEBIAN_NJS_MODULE} (apt-get install libnginx-mod-http-js)`
      : false;
  if (reason && process.env.CI) throw new Error(`CI must run the nginx suite, but ${reason}`);
  return reason;
}

