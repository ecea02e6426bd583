// `mirror serve` as a real process over a private copy of the sample store: for what only a
// process shows (start-up, crashes, signals, several processes sharing one data directory).
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from '../../generator/pipeline.ts';
import { localIssuer } from '../../sidecar/auth/jwt.ts';
import { REPO, SAMPLE_BLOBS } from './sample-site.ts';
import { copySampleStore } from './store.ts';

export interface DataDir {
  dir: string;
  /** MIRROR_DATA_DIR and MIRROR_RELEASES, quiet logs, no rate limits. */
  env: Record<string, string>;
  releasesDir: string;
  blobsDir: string;
  token(sub?: string): Promise<string>;
}

export async function prepareDataDir(): Promise<DataDir> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mirror-process-'));
  const dataDir = path.join(dir, 'data');
  const releasesDir = path.join(dir, 'releases');
  await copySampleStore(releasesDir, { releases: true });
  await cp(SAMPLE_BLOBS, path.join(dataDir, 'blobs'), { recursive: true });
  await build({ releasesDir, site: path.join(dataDir, 'site') });
  const env = { MIRROR_DATA_DIR: dataDir, MIRROR_RELEASES: releasesDir, HOST: '127.0.0.1', PORT: '0', FLEET_PORT: '0', LOG_LEVEL: 'warn', RATE_LIMIT_IP_PER_MINUTE: '0', RATE_LIMIT_USER_PER_MINUTE: '0', RATE_LIMIT_UPLOADS_PER_HOUR: '0' };
  return {
    dir,
    env,
    releasesDir,
    blobsDir: path.join(dataDir, 'blobs'),
    token: async (sub = 'release-bot') => (await localIssuer({ dir: path.join(dataDir, 'auth') })).mint(sub, 3600),
  };
}

export interface SidecarProcess {
  url: string;
  /** https://… of its fleet listener. */
  fleetUrl: string;
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

/** Starts `mirror serve` and resolves once it listens; rejects with its output if it exits first. */
export async function startSidecarProcess(env: Record<string, string>): Promise<SidecarProcess> {
  const child = spawn(process.execPath, ['scripts/mirror.js', 'serve'], { cwd: REPO, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const [url, fleetUrl] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mirror serve did not start within 20 s:\n${output}`)), 20_000);
    const check = () => {
      const main = /serving .* on (http:\/\/\S+)/.exec(output);
      const fleet = /fleet API on (https:\/\/\S+)/.exec(output);
      if (main && fleet) {
        clearTimeout(timer);
        resolve([main[1]!, fleet[1]!]);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`mirror serve exited with ${code} before listening:\n${output}`));
    });
  });
  return { url, fleetUrl, child, output: () => output, exited };
}
