// The registry API (seed 003) on an in-process sidecar over real HTTP, on SQLite or on a fresh
// PostgreSQL database, with a local GitHub stand-in for sign-in. Each server has its own data
// directory and manifest store, copied from nothing the repository tracks.
import { randomBytes } from 'node:crypto';
import { cp, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from '../../generator/pipeline.ts';
import { loadConfig } from '../../sidecar/config.ts';
import { openDatabase, type StateDb } from '../../sidecar/store/db.ts';
import { createLogger } from '../../sidecar/middleware/request-log.ts';
import { createSidecar } from '../../sidecar/runtime.ts';
import { listen } from '../../sidecar/server.ts';
import { startGitHubStandIn, type GitHubStandIn } from './github-standin.ts';
import { createTestDatabase, POSTGRES_MISSING } from './postgres.ts';
import { SAMPLE_RELEASES } from './sample-site.ts';
import { removeDir, tempDir } from './store.ts';

export interface RegistryBackend {
  name: string;
  /** Why the backend cannot run here, or false. */
  missing: string | false;
  /** Settings for an empty database of its own, and how to remove it. */
  create(): Promise<{ env: Record<string, string>; dispose(): Promise<void> }>;
}

export const sqliteBackend: RegistryBackend = {
  name: 'SQLite',
  missing: false,
  create: async () => ({ env: {}, dispose: async () => {} }),
};

export const postgresBackend: RegistryBackend = {
  name: 'PostgreSQL',
  missing: POSTGRES_MISSING,
  async create() {
    const database = await createTestDatabase('mirror_registry');
    return { env: { DATABASE_URL: database.url }, dispose: () => database.drop() };
  },
};

export const BACKENDS = [sqliteBackend, postgresBackend];

export interface RegistryServer {
  url: string;
  github: GitHubStandIn;
  dir: string;
  releasesDir: string;
  blobsDir: string;
  /** Errors the sidecar logged. */
  errors: unknown[];
  env: Record<string, string>;
  api(pathname: string, init?: RequestInit): Promise<Response>;
  /** The whole GitHub sign-in as a CLI makes it; the `agentx_` token. */
  signIn(login: string, id?: number): Promise<string>;
  close(): Promise<void>;
}

/** Rate limits off unless a test sets them. */
const QUIET = {
  LOG_LEVEL: 'silent',
  FLEET_PORT: '0',
  RATE_LIMIT_IP_PER_MINUTE: '0',
  RATE_LIMIT_USER_PER_MINUTE: '0',
  RATE_LIMIT_UPLOADS_PER_HOUR: '0',
  REGISTRY_RATE_LIMIT_IP_PER_MINUTE: '0',
  REGISTRY_RATE_LIMIT_USER_PER_MINUTE: '0',
  REGISTRY_RATE_LIMIT_PUBLISH_PER_HOUR: '0',
};

export async function startRegistry(backend: RegistryBackend, settings: Record<string, string> = {}, database?: { env: Record<string, string> }): Promise<RegistryServer> {
  const dir = await tempDir('mirror-registry-');
  const releasesDir = path.join(dir, 'releases');
  const dataDir = path.join(dir, 'data');
  await mkdir(releasesDir, { recursive: true });
  await cp(path.join(SAMPLE_RELEASES, 'mirror.json'), path.join(releasesDir, 'mirror.json'));
  await build({ releasesDir, site: path.join(dataDir, 'site') });
  const github = await startGitHubStandIn();
  const owned = database ? undefined : await backend.create();
  const env = { MIRROR_RELEASES: releasesDir, MIRROR_DATA_DIR: dataDir, ...QUIET, ...github.env, ...(database ?? owned)!.env, ...settings };
  const errors: unknown[] = [];
  let closed = false;
  // What is logged once the sidecar has closed comes from the teardown (a dropped test database), not from its work.
  const logger = createLogger({ level: 'error', destination: { write: (line: string) => void (closed || errors.push(line)) } });
  const sidecar = await createSidecar(loadConfig(env), { migrateAtStart: true, logger });
  const running = await listen({ app: sidecar.app, port: 0, host: '127.0.0.1' });
  const api = (pathname: string, init: RequestInit = {}) => fetch(`${running.url}/api/v1${pathname}`, { redirect: 'manual', ...init });
  return {
    url: running.url,
    github,
    dir,
    releasesDir,
    blobsDir: path.join(dataDir, 'blobs'),
    errors,
    env,
    api,
    async signIn(login, id = 1000 + login.length * 7919 + login.charCodeAt(0)) {
      const redirectUri = 'http://127.0.0.1:9876/callback';
      const started = (await (await api('/auth/github', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ redirect_uri: redirectUri }) })).json()) as { auth_url: string };
      const state = new URL(started.auth_url).searchParams.get('state')!;
      const code = github.approve({ login, id, name: login[0]!.toUpperCase() + login.slice(1) }, redirectUri);
      const answer = await api(`/auth/callback?code=${code}&state=${encodeURIComponent(state)}`);
      if (answer.status !== 200) throw new Error(`sign-in of ${login} answered ${answer.status}: ${await answer.text()}`);
      return ((await answer.json()) as { token: string }).token;
    },
    async close() {
      await running.close();
      await sidecar.close();
      closed = true;
      await github.close();
      await owned?.dispose();
      await removeDir(dir);
    },
  };
}

/** Runs `work` on a connection of its own to the server's state database. */
export async function withDatabase<T>(server: RegistryServer, work: (state: StateDb) => Promise<T>): Promise<T> {
  const state = await openDatabase({ ...(server.env.DATABASE_URL ? { url: server.env.DATABASE_URL } : {}), file: path.join(server.env.MIRROR_DATA_DIR!, 'state.db') });
  try {
    return await work(state);
  } finally {
    await state.close();
  }
}

export interface AgentYaml {
  name: string;
  version: string;
  description?: string;
  category?: string;
  [field: string]: unknown;
}

/** A small, valid `.tar.gz`: a ustar header and file, gzipped. */
export function tarball(content = `agent ${randomBytes(4).toString('hex')}\n`): Buffer {
  const header = Buffer.alloc(512);
  header.write('agent/agent.yaml', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\x0000', 257);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const body = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  body.write(content);
  return gzipSync(Buffer.concat([header, body, Buffer.alloc(1024)]));
}

export interface PublishParts {
  agentYaml?: AgentYaml | string | undefined;
  readme?: string | undefined;
  tarball?: Buffer | undefined;
}

/** A publish as an agent CLI sends it: multipart/form-data built by fetch's FormData. */
export function publishForm(parts: PublishParts): FormData {
  const form = new FormData();
  if (parts.tarball !== undefined) form.append('tarball', new Blob([new Uint8Array(parts.tarball)], { type: 'application/gzip' }), 'agent.tar.gz');
  if (parts.agentYaml !== undefined) form.append('agent_yaml', typeof parts.agentYaml === 'string' ? parts.agentYaml : JSON.stringify(parts.agentYaml));
  if (parts.readme !== undefined) form.append('readme', parts.readme);
  return form;
}

export function manifest(name: string, version: string, extra: Partial<AgentYaml> = {}): AgentYaml {
  return { name, version, description: `${name} does useful things`, category: 'productivity', tags: [], ...extra };
}

export async function publish(server: RegistryServer, token: string | undefined, fullName: string, parts: PublishParts): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await server.api(`/agents/${fullName}`, { method: 'PUT', body: publishForm(parts), headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

export async function json(response: Response | Promise<Response>): Promise<{ status: number; body: any; headers: Headers }> {
  const answer = await response;
  const text = await answer.text();
  return { status: answer.status, body: text ? JSON.parse(text) : undefined, headers: answer.headers };
}

/** Every file under `dir`, relative, for before/after comparisons. */
export async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((entry) => entry.isFile())
      .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
      .sort();
  } catch {
    return [];
  }
}
