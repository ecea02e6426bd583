// Registry rows (seed 003): full-text search over 10,000 listed agents on SQLite and on PostgreSQL,
// in-process through `registryQueries().list` (what GET /api/v1/search runs) against a lookup of
// one agent by scope and name, and over HTTP through an in-process sidecar against GET /healthz of
// the same server; then a 10 MiB publish to a fresh `mirror serve`: its peak RSS growth and its
// wall time against cp of the same file.
// The agents are synthetic, drawn from a seeded PRNG over a vocabulary of 340 words with Zipf's
// law (a few words in most texts, most words in a few), so every run and both databases hold the
// same text and answer the same queries.
// PostgreSQL rows run when TEST_DATABASE_URL or BENCH_DATABASE_URL names a server: a fresh
// database on it, dropped afterwards; otherwise they say "not run".
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { cp, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { sql } from 'kysely';
import pg from 'pg';
import { AGENT_CATEGORIES, tarballBlobKey, type AgentManifest } from '../../generator/model/registry.ts';
import { build } from '../../generator/pipeline.ts';
import { loadConfig } from '../../sidecar/config.ts';
import { registryPackages, type VersionToPublish } from '../../sidecar/registry/packages.ts';
import { registryQueries } from '../../sidecar/registry/queries.ts';
import { fullTextFor } from '../../sidecar/registry/search.ts';
import { createSidecar } from '../../sidecar/runtime.ts';
import { listen } from '../../sidecar/server.ts';
import { openDatabase, type StateDb } from '../../sidecar/store/db.ts';
import { migrate } from '../../sidecar/store/migrate.ts';
import { bestSeconds, seconds } from './run.ts';
import type { Row } from './table.ts';
import { copyReference, curlPost, downloadDigest, ISOLATION, loggedError, memory, mib, SERVE_COMMAND, SERVE_SETTINGS, shownCurl, startServer, warmUp, withServer, type Memory } from './upload.ts';
import { mulberry32 } from './random.ts';

const execFileAsync = promisify(execFile);

const MiB = 1024 * 1024;
const AGENTS = 10_000;
const USERS = 400;
/** Versions per `importVersions` call, each call one transaction. */
const IMPORT_BATCH = 500;
const WARM_UP_QUERIES = 200;
const MEASURED_QUERIES = 2_000;
const HTTP_CONCURRENCY = 4;
const PAGE_SIZE = 20;
const CORPUS_SEED = 0x5eed_0003;
const QUERY_SEED = 0x9e37_79b9;
const PUBLISH_SIZE = 10 * MiB;
const PUBLISH_GROWTH_TARGET = 64 * MiB;
const DATABASE_URL_SETTINGS = ['BENCH_DATABASE_URL', 'TEST_DATABASE_URL'] as const;

/** Ordered by how common each word is: the first is drawn most often (Zipf, s = 1). */
const VOCABULARY = `
agent assistant email calendar meeting schedule slack github issue pull request review code commit branch deploy build test lint format
refactor debug error log trace metric alert incident monitor dashboard report chart query database table schema migration backup restore sync
file folder document note wiki page search index crawl scrape fetch download upload image video audio speech voice transcript summary translate
language writing draft reply message chat channel thread notify reminder task todo project ticket sprint board kanban plan roadmap goal budget
invoice payment expense receipt tax account bank stock trade market price forecast analysis research paper citation source news feed article
blog post tweet social media campaign marketing sales lead customer support crm contact profile resume job interview hiring team member user
role permission access token secret key password vault security scan vulnerability audit compliance policy privacy encryption firewall network
server cloud cluster container kubernetes docker terminal shell script command cli api endpoint webhook event queue worker cron pipeline workflow
automation trigger action rule filter label tag category priority status progress archive export import csv json yaml markdown pdf spreadsheet
sheet slide presentation template design figma sketch diagram graph model prompt embedding vector memory context tool plugin extension browser
bookmark cookie login oauth identity form survey feedback rating score benchmark performance latency cache storage bucket blob compress parse
validate convert generate create update delete list read write send receive share publish release version changelog license repository package
dependency install upgrade patch fix bug feature local remote fast simple smart secure private open daily weekly monthly quick batch stream
realtime offline mobile desktop web linux windows macos python javascript typescript rust golang java sql postgres sqlite redis mongodb aws azure
gcp s3 lambda notion jira linear trello asana zoom teams discord telegram whatsapp twitter reddit youtube spotify shopify stripe paypal salesforce
hubspot zendesk intercom gmail outlook drive dropbox box confluence airtable excel word openai anthropic llm gpt claude mcp rag retrieval
knowledge base answer question faq tutorial guide onboarding learning course quiz flashcard study exam homework math physics chemistry biology
`
  .trim()
  .split(/\s+/);

export const SETTINGS_SHOWN = 'LOG_LEVEL=silent, every RATE_LIMIT_* and REGISTRY_RATE_LIMIT_* = 0';
/** The in-process sidecar's settings besides its paths and database: no limit, no log. */
export const QUIET_SIDECAR: Record<string, string> = {
  LOG_LEVEL: 'silent',
  RATE_LIMIT_IP_PER_MINUTE: '0',
  RATE_LIMIT_USER_PER_MINUTE: '0',
  RATE_LIMIT_UPLOADS_PER_HOUR: '0',
  REGISTRY_RATE_LIMIT_IP_PER_MINUTE: '0',
  REGISTRY_RATE_LIMIT_USER_PER_MINUTE: '0',
  REGISTRY_RATE_LIMIT_PUBLISH_PER_HOUR: '0',
};

export interface RegistryBench {
  rows: Row[];
  notes: string[];
}

interface SyntheticAgent {
  owner: number;
  name: string;
  description: string;
  category: AgentManifest['category'];
  tags: string[];
  readme: string;
  publishedAt: string;
  downloads: number;
  stars: number;
  permissions: AgentManifest['permissions'];
}

/** Latencies of each call, in the order they finished, and the wall time of the whole loop. */
interface Timings {
  ms: number[];
  wallMs: number;
}

interface SearchResult {
  database: string;
  /** Why there is no measurement, when there is none. */
  notRun?: string;
  seedMs: number;
  /** Bytes the database takes once seeded. */
  bytes: number;
  search: Timings;
  lookup: Timings;
  /** `total` of every measured query. */
  totals: number[];
  http: { search: Timings; healthz: Timings } | { failed: string };
}

export interface Backend {
  database: 'SQLite' | 'PostgreSQL';
  /** The state database, fresh; the settings the sidecar needs to open the same one. */
  open(): Promise<{ state: StateDb; env: Record<string, string>; bytes(): Promise<number> }>;
  dispose(): Promise<void>;
}

export async function benchRegistry(work: string, repo: string, progress: (line: string) => void): Promise<RegistryBench> {
  const dir = path.join(work, 'registry');
  const releasesDir = path.join(dir, 'releases');
  await mkdir(releasesDir, { recursive: true });
  await cp(path.join(repo, 'releases', 'mirror.json'), path.join(releasesDir, 'mirror.json'));

  progress(`registry: generating ${AGENTS.toLocaleString('en')} agents and ${(WARM_UP_QUERIES + MEASURED_QUERIES).toLocaleString('en')} queries`);
  const agents = syntheticAgents();
  const queries = searchQueries();
  const lookups = lookupNames(agents);

  const results: SearchResult[] = [];
  results.push(await searchBench(sqliteBackend(path.join(dir, 'sqlite')), { releasesDir, agents, queries, lookups }, progress));
  const postgres = postgresBackend(path.join(dir, 'postgres'));
  results.push(typeof postgres === 'string' ? notRun('PostgreSQL', postgres) : await searchBench(postgres, { releasesDir, agents, queries, lookups }, progress));

  const publish = await publishBench(path.join(dir, 'publish'), repo, progress);
  return {
    rows: [...results.flatMap(searchRows), ...publishRows(publish)],
    notes: [...results.flatMap(searchNotes), `Corpus: ${corpusNote(agents)}`, `Queries: ${queryNote(queries)}`, ...publishNotes(publish)],
  };
}

/** Seeds a fresh database, measures the queries in-process, then over HTTP through an in-process sidecar. */
async function searchBench(
  backend: Backend,
  input: { releasesDir: string; agents: SyntheticAgent[]; queries: string[]; lookups: { scope: string; name: string }[] },
  progress: (line: string) => void,
): Promise<SearchResult> {
  const { database } = backend;
  try {
    let env: Record<string, string>;
    let seedMs: number;
    let bytes: number;
    let search: Timings;
    let lookup: Timings;
    const totals = new Map<string, number>();
    const opened = await backend.open();
    try {
      const { state } = opened;
      env = opened.env;
      await migrate(state);
      progress(`registry: ${database}: seeding ${AGENTS.toLocaleString('en')} agents`);
      seedMs = await seed(state, input.agents);
      bytes = await opened.bytes();
      const queries = registryQueries(state.db, fullTextFor(state));
      progress(`registry: ${database}: ${MEASURED_QUERIES.toLocaleString('en')} searches after ${WARM_UP_QUERIES} warm-up`);
      search = await warmThenTime(input.queries, 1, async (q) => {
        const found = await queries.list({ q, sort: 'relevance', page: 1, limit: PAGE_SIZE });
        if (found.agents.length !== Math.min(found.total, PAGE_SIZE)) throw new Error(`The search for "${q}" found ${found.total} but listed ${found.agents.length}`);
        totals.set(q, found.total);
      });
      progress(`registry: ${database}: ${MEASURED_QUERIES.toLocaleString('en')} lookups by scope and name`);
      // By scope and name, the unique index: `name` alone has no index and would scan the table.
      lookup = await warmThenTime(input.lookups, 1, async ({ scope, name }) => {
        const row = await state.db.selectFrom('registry_agents').selectAll().where('scope', '=', scope).where('name', '=', name).executeTakeFirst();
        if (!row) throw new Error(`No agent @${scope}/${name}`);
      });
    } finally {
      await opened.state.close();
    }
    const http = await httpBench(env, input.releasesDir, input.queries, totals, database, progress).catch((error: unknown) => {
      progress(`registry: ${database}: HTTP failed: ${(error as Error).message}`);
      return { failed: (error as Error).message };
    });
    return { database, seedMs, bytes, search, lookup, totals: input.queries.slice(WARM_UP_QUERIES).map((q) => totals.get(q)!), http };
  } finally {
    await backend.dispose();
  }
}

/** Users, then the agents through `importVersions` in batches, then their download and star counts. */
async function seed(state: StateDb, agents: SyntheticAgent[]): Promise<number> {
  const started = performance.now();
  const { db } = state;
  const at = new Date().toISOString();
  const users = Array.from({ length: USERS }, (_, i) => ({
    github_id: 1_000_000 + i,
    username: ownerName(i),
    display_name: `Owner ${i}`,
    avatar_url: `https://avatars.githubusercontent.com/u/${1_000_000 + i}`,
    bio: null,
    website: null,
    created_at: at,
    updated_at: at,
  }));
  for (let i = 0; i < users.length; i += 100) await db.insertInto('registry_users').values(users.slice(i, i + 100)).execute();
  const ids = new Map((await db.selectFrom('registry_users').select(['id', 'username']).execute()).map((user) => [user.username, user.id]));

  const packages = registryPackages(db, fullTextFor(state));
  for (let i = 0; i < agents.length; i += IMPORT_BATCH) {
    const batch = agents.slice(i, i + IMPORT_BATCH).map((agent) => ({ input: versionOf(agent, ids.get(ownerName(agent.owner))!), state: 'active' as const, publishedAt: agent.publishedAt, unpublishedAt: undefined }));
    const imported = await packages.importVersions(batch);
    if (imported !== batch.length) throw new Error(`importVersions took ${imported} of ${batch.length} versions`);
  }
  // importVersions starts every count at 0; lists sort by downloads after relevance.
  await db.transaction().execute(async (trx) => {
    for (const agent of agents) {
      await trx.updateTable('registry_agents').set({ download_count: agent.downloads, star_count: agent.stars }).where('scope', '=', ownerName(agent.owner)).where('name', '=', agent.name).execute();
    }
  });
  // autovacuum analyzes a table this size within a minute of the inserts; the bench does not wait for it.
  if (state.dialect === 'postgres') await sql`analyze`.execute(db);
  return performance.now() - started;
}

function versionOf(agent: SyntheticAgent, ownerId: number): VersionToPublish {
  const scope = ownerName(agent.owner);
  const sha256 = createHash('sha256').update(`${scope}/${agent.name}`).digest('hex');
  return {
    scope,
    name: agent.name,
    version: '1.0.0',
    ownerId,
    tarball: { blob: tarballBlobKey(scope, agent.name, '1.0.0', sha256), sha256, size: 4096 + agent.readme.length },
    manifest: {
      name: agent.name,
      version: '1.0.0',
      description: agent.description,
      category: agent.category,
      tags: agent.tags,
      license: 'MIT',
      repository: `https://github.com/${scope}/${agent.name}`,
      permissions: agent.permissions,
      mcp_servers: [],
      examples: [{ prompt: agent.description.toLowerCase() }],
    },
    readme: agent.readme,
  };
}

/**
 * GET /api/v1/search?q=… against a sidecar in this process (createSidecar, listen), 4 requests at
 * a time, each answer's `total` checked against the in-process search; GET /healthz the same way.
 */
async function httpBench(
  databaseEnv: Record<string, string>,
  releasesDir: string,
  queries: string[],
  totals: Map<string, number>,
  database: string,
  progress: (line: string) => void,
): Promise<{ search: Timings; healthz: Timings }> {
  const dataDir = databaseEnv.MIRROR_DATA_DIR!;
  progress(`registry: ${database}: building the site, starting the sidecar`);
  await build({ releasesDir, site: path.join(dataDir, 'site') });
  const sidecar = await createSidecar(loadConfig({ ...QUIET_SIDECAR, MIRROR_RELEASES: releasesDir, ...databaseEnv }), { migrateAtStart: true });
  try {
    const running = await listen({ app: sidecar.app, port: 0, host: '127.0.0.1' });
    try {
      progress(`registry: ${database}: ${MEASURED_QUERIES.toLocaleString('en')} GET /api/v1/search, ${HTTP_CONCURRENCY} at a time`);
      const search = await warmThenTime(queries, HTTP_CONCURRENCY, async (q) => {
        const answer = await fetch(`${running.url}/api/v1/search?q=${encodeURIComponent(q)}&limit=${PAGE_SIZE}`);
        const body = (await answer.json()) as { total?: number };
        if (answer.status !== 200 || body.total !== totals.get(q)) throw new Error(`GET /api/v1/search?q=${q} answered ${answer.status} with total ${body.total}; the in-process search found ${totals.get(q)}`);
      });
      progress(`registry: ${database}: ${MEASURED_QUERIES.toLocaleString('en')} GET /healthz, ${HTTP_CONCURRENCY} at a time`);
      const healthz = await warmThenTime(queries, HTTP_CONCURRENCY, async () => {
        const answer = await fetch(`${running.url}/healthz`);
        await answer.arrayBuffer();
        if (answer.status !== 200) throw new Error(`GET /healthz answered ${answer.status}`);
      });
      return { search, healthz };
    } finally {
      await running.close();
    }
  } finally {
    await sidecar.close();
  }
}

export function sqliteBackend(dataDir: string): Backend {
  const file = path.join(dataDir, 'state.db');
  return {
    database: 'SQLite',
    async open() {
      const state = await openDatabase({ file });
      return {
        state,
        env: { MIRROR_DATA_DIR: dataDir },
        // Measured while open: part of the data may still be in the write-ahead log.
        bytes: async () => (await stat(file)).size + (await stat(`${file}-wal`).then((wal) => wal.size, () => 0)),
      };
    },
    async dispose() {},
  };
}

/** A fresh database on the server the settings name, or why there is none. */
export function postgresBackend(dataDir: string): Backend | string {
  const setting = DATABASE_URL_SETTINGS.find((name) => process.env[name]);
  if (!setting) return `not run: set ${DATABASE_URL_SETTINGS.join(' or ')} (e.g. postgres://postgres@127.0.0.1:5432/test)`;
  const name = `mirror_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: process.env[setting] });
  let created = false;
  return {
    database: 'PostgreSQL',
    async open() {
      await admin.connect();
      await admin.query(`create database ${name}`);
      created = true;
      const url = new URL(process.env[setting]!);
      url.pathname = `/${name}`;
      const state = await openDatabase({ url: url.href, file: '' });
      return {
        state,
        env: { MIRROR_DATA_DIR: dataDir, DATABASE_URL: url.href },
        bytes: async () => Number((await admin.query<{ size: string }>('select pg_database_size($1) as size', [name])).rows[0]!.size),
      };
    },
    async dispose() {
      if (created) await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

function notRun(database: string, why: string): SearchResult {
  const none = { ms: [], wallMs: 0 };
  return { database, notRun: why, seedMs: 0, bytes: 0, search: none, lookup: none, totals: [], http: { failed: why } };
}

/** `run` over the first WARM_UP_QUERIES inputs untimed, then over the rest timed, `concurrency` at a time. */
async function warmThenTime<T>(inputs: T[], concurrency: number, run: (input: T) => Promise<void>): Promise<Timings> {
  for (const input of inputs.slice(0, WARM_UP_QUERIES)) await run(input);
  const measured = inputs.slice(WARM_UP_QUERIES);
  const ms: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < measured.length) {
        const input = measured[next++]!;
        const began = performance.now();
        await run(input);
        ms.push(performance.now() - began);
      }
    }),
  );
  return { ms, wallMs: performance.now() - started };
}

interface PublishResult {
  size: number;
  baseline: Memory;
  after: Memory;
  ms: number;
  command: string;
  copy: Awaited<ReturnType<typeof copyReference>>;
  failed?: string;
}

/**
 * A fresh `mirror serve` (upload.ts), a registry token from the CLI on the same data, a warm-up,
 * then one publish with curl: VmRSS before, VmHWM after, the wall time of the PUT; the tarball is
 * then downloaded and checked against the file.
 */
async function publishBench(dir: string, repo: string, progress: (line: string) => void): Promise<PublishResult> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'agent-10MiB.tar.gz');
  progress(`registry: gzip -1 of ${PUBLISH_SIZE / MiB} MiB of random bytes`);
  const tarball = await writeGzippedRandom(file, PUBLISH_SIZE);
  const copy = await copyReference(dir, file, progress);
  // startServer keeps server n's data in data-n and its manifest store in releases-n, under `dir`.
  const env = { ...process.env, ...ISOLATION, ...SERVE_SETTINGS, MIRROR_DATA_DIR: path.join(dir, 'data-1'), MIRROR_RELEASES: path.join(dir, 'releases-1') };
  return withServer(await startServer(dir, repo, 1, progress), async (server) => {
    const token = (await execFileAsync(process.execPath, ['dist/mirror.js', 'registry', 'token', 'create', '--user', 'bench'], { cwd: repo, env })).stdout.trim().split('\n').pop()!;
    const manifest = { name: 'bench', version: '1.0.0', description: 'bench', category: 'devtools' };
    const url = `${server.url}/api/v1/agents/@bench/bench`;
    const curl = ['curl', '-sS', '--fail-with-body', '-X', 'PUT', '-H', `Authorization: Bearer ${token}`, '-F', `tarball=@${file}`, '-F', `agent_yaml=${JSON.stringify(manifest)}`, '-F', 'readme=# bench', url];
    const shown = shownCurl(curl.map((arg) => (arg === `tarball=@${file}` ? `tarball=@${path.basename(file)}` : arg)));
    const command = `${SERVE_COMMAND}; TOKEN=$(node dist/mirror.js registry token create --user bench); ${shown}`;

    await warmUp(server);
    for (const page of ['/api/v1/agents', '/api/v1/categories', '/api/v1/search?q=bench']) {
      const answer = await fetch(`${server.url}${page}`);
      await answer.arrayBuffer();
      if (answer.status !== 200) throw new Error(`Warm-up GET ${page} answered ${answer.status}`);
    }
    const baseline = await memory(server.pid);
    await execFileAsync('sync');
    progress(`registry: publishing ${mib(tarball.size)} (server pid ${server.pid})`);
    const logged = server.output.length;
    const started = performance.now();
    const answer = await curlPost(curl);
    const ms = performance.now() - started;
    const after = await memory(server.pid);
    if ('failed' in answer) {
      const cause = loggedError(server.output.slice(logged));
      return { size: tarball.size, baseline, after, ms, command, copy, failed: `${answer.failed}${cause ? `; the server logged ${cause}` : ''}` };
    }
    const published = JSON.parse(answer.stdout) as { success?: boolean; version?: string };
    if (published.success !== true || published.version !== '1.0.0') throw new Error(`The publish answered ${answer.stdout}`);
    const descriptor = (await (await fetch(`${url}/download/1.0.0`)).json()) as { tarball_url: string; sha256: string; size: number };
    const downloaded = await downloadDigest(descriptor.tarball_url);
    if (descriptor.sha256 !== tarball.sha256 || downloaded.sha256 !== tarball.sha256 || downloaded.size !== tarball.size) {
      throw new Error(`The published tarball is ${downloaded.size} bytes with sha256 ${downloaded.sha256} (descriptor ${descriptor.sha256}); the file is ${tarball.size} bytes with ${tarball.sha256}`);
    }
    return { size: tarball.size, baseline, after, ms, command, copy };
  });
}

/** gzip level 1 of `size` random bytes, streamed to `file`: a real gzip stream, hardly smaller than its input. */
async function writeGzippedRandom(file: string, size: number): Promise<{ size: number; sha256: string }> {
  const chunks = function* () {
    for (let written = 0; written < size; written += MiB) yield randomBytes(Math.min(MiB, size - written));
  };
  const hash = createHash('sha256');
  const gzip = createGzip({ level: 1 });
  gzip.on('data', (chunk: Buffer) => hash.update(chunk));
  await pipeline(Readable.from(chunks()), gzip, createWriteStream(file));
  return { size: (await stat(file)).size, sha256: hash.digest('hex') };
}

function searchRows(result: SearchResult): Row[] {
  const where = `${AGENTS.toLocaleString('en')} listed agents, ${result.database}`;
  const inProcess = `in the bench's process, ${result.database}, after ${WARM_UP_QUERIES} warm-up calls (BENCH_ROWS=registry npm run bench)`;
  const direct: Row = {
    measured: `Registry search, ${where}: registryQueries.list({ q, sort: 'relevance', page: 1, limit: ${PAGE_SIZE} }) (GET /api/v1/search's query), ${MEASURED_QUERIES.toLocaleString('en')} 1- and 2-word queries one after the other`,
    ours: result.notRun ?? stats(result.search, 'queries'),
    reference: result.notRun ? '—' : `lookup of one agent by scope and name, the floor: ${stats(result.lookup, 'lookups')}`,
    target: '—',
    ourCommand: `registryQueries(db, fullTextFor(state)).list({ q, sort: 'relevance', page: 1, limit: ${PAGE_SIZE} }), ${inProcess}`,
    referenceCommand: `db.selectFrom('registry_agents').selectAll().where('scope', '=', scope).where('name', '=', name), ${MEASURED_QUERIES.toLocaleString('en')} random existing agents, ${inProcess}`,
  };
  const http = result.http;
  const server = `createSidecar + listen in the bench's process (${SETTINGS_SHOWN}), ${result.database}; fetch, ${HTTP_CONCURRENCY} at a time, after ${WARM_UP_QUERIES} warm-up requests`;
  const overHttp: Row = {
    measured: `Registry search over HTTP, ${where}: GET /api/v1/search?q=…, ${MEASURED_QUERIES.toLocaleString('en')} requests, ${HTTP_CONCURRENCY} at a time (client and server share one Node process)`,
    ours: result.notRun ?? ('failed' in http ? `failed: ${http.failed}` : stats(http.search, 'requests')),
    reference: result.notRun || 'failed' in http ? '—' : `GET /healthz on the same server, a bare handler: ${stats(http.healthz, 'requests')}`,
    target: '—',
    ourCommand: `GET /api/v1/search?q=…&limit=${PAGE_SIZE} (${server})`,
    referenceCommand: `GET /healthz (${server})`,
  };
  return [direct, overHttp];
}

function searchNotes(result: SearchResult): string[] {
  if (result.notRun) return [`${result.database}: ${result.notRun}`];
  const sorted = [...result.totals].sort((a, b) => a - b);
  const empty = result.totals.filter((total) => total === 0).length;
  return [
    `${result.database}: seeding ${AGENTS.toLocaleString('en')} agents (${USERS} users, importVersions in batches of ${IMPORT_BATCH}, then their download and star counts${result.database === 'PostgreSQL' ? ', then analyze' : ''}) took ${seconds(result.seedMs)}; the database takes ${mib(result.bytes)}.`,
    `${result.database}: matches per measured query: median ${percentile(sorted, 0.5).toLocaleString('en')}, min ${sorted[0]!.toLocaleString('en')}, max ${sorted.at(-1)!.toLocaleString('en')} of ${AGENTS.toLocaleString('en')}; ${empty} queries matched nothing.`,
  ];
}

function publishRows(run: PublishResult): Row[] {
  const growth = run.after.hwm - run.baseline.rss;
  const rssCommand = `grep -E 'VmRSS|VmHWM' /proc/<server pid>/status before and after: ${run.command}`;
  return [
    {
      measured: `Registry publish, ${mib(run.size)} tarball (gzip -1 of random bytes, multipart): server peak RSS growth (VmHWM after − VmRSS before, fresh server)`,
      ours: `${run.failed ? 'publish failed (see the next row); until then: ' : ''}${mib(growth)} (baseline ${mib(run.baseline.rss)}, peak ${mib(run.after.hwm)})`,
      reference: `file ${mib(run.size)}; the server's high-water mark before the publish: ${mib(run.baseline.hwm)}`,
      target: `< ${mib(PUBLISH_GROWTH_TARGET)}`,
      met: !run.failed && growth < PUBLISH_GROWTH_TARGET,
      ourCommand: rssCommand,
    },
    {
      measured: `Registry publish, ${mib(run.size)} tarball: wall time of the PUT to its 200 (stored, site rebuilt, listed; once)`,
      ours: run.failed ? `failed after ${seconds(run.ms)}: ${run.failed}` : `${seconds(run.ms)} (${Math.round(run.size / 1e6 / (run.ms / 1000))} MB/s)`,
      reference: `cp of the same file on the same file system: ${bestSeconds(run.copy)}`,
      target: '—',
      ourCommand: run.command,
      referenceCommand: run.copy.command,
    },
  ];
}

function publishNotes(run: PublishResult): string[] {
  return run.failed ? [] : [`Publish: the tarball downloaded from the published version's tarball_url matched the file's ${mib(run.size)} and SHA-256.`];
}

/** `p50 1.23 ms, p99 4.56 ms, 789 queries/s` */
function stats(timings: Timings, unit: string): string {
  const sorted = [...timings.ms].sort((a, b) => a - b);
  const ms = (value: number) => `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
  return `p50 ${ms(percentile(sorted, 0.5))}, p99 ${ms(percentile(sorted, 0.99))}, ${Math.round(sorted.length / (timings.wallMs / 1000)).toLocaleString('en')} ${unit}/s`;
}

/** Nearest rank. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

function ownerName(i: number): string {
  return `owner${i}`;
}

/** The synthetic agents, the same on every run. */
function syntheticAgents(): SyntheticAgent[] {
  const random = mulberry32(CORPUS_SEED);
  const word = zipf(random);
  const between = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const words = (count: number) => Array.from({ length: count }, word);
  const year = Date.UTC(2026, 0, 1);
  return Array.from({ length: AGENTS }, (_, i) => {
    const name = `${word()}-${word()}-${i}`;
    const sentences: string[] = [];
    for (let left = between(100, 400); left > 0; ) {
      const length = Math.min(left, between(6, 18));
      const text = words(length).join(' ');
      sentences.push(`${text[0]!.toUpperCase()}${text.slice(1)}.`);
      left -= length;
    }
    // Downloads spread over six orders of magnitude, as a registry's do.
    const downloads = Math.floor(10 ** (random() * 6));
    return {
      owner: i % USERS,
      name,
      description: words(between(5, 15)).join(' '),
      category: AGENT_CATEGORIES[between(0, AGENT_CATEGORIES.length - 1)]!.slug,
      tags: [...new Set(words(between(0, 5)))],
      readme: `# ${name}\n\n${sentences.join(' ')}\n`,
      publishedAt: new Date(year - between(0, 364) * 86_400_000).toISOString(),
      downloads,
      stars: Math.floor(downloads / between(20, 200)),
      permissions: { filesystem: random() < 0.3, network: random() < 0.8, execute_commands: random() < 0.2 },
    };
  });
}

/** Half one word, half two, drawn uniformly from the vocabulary. */
function searchQueries(): string[] {
  const random = mulberry32(QUERY_SEED);
  const word = () => VOCABULARY[Math.floor(random() * VOCABULARY.length)]!;
  return Array.from({ length: WARM_UP_QUERIES + MEASURED_QUERIES }, () => (random() < 0.5 ? word() : `${word()} ${word()}`));
}

function lookupNames(agents: SyntheticAgent[]): { scope: string; name: string }[] {
  const random = mulberry32(QUERY_SEED + 1);
  return Array.from({ length: WARM_UP_QUERIES + MEASURED_QUERIES }, () => {
    const agent = agents[Math.floor(random() * agents.length)]!;
    return { scope: ownerName(agent.owner), name: agent.name };
  });
}

function corpusNote(agents: SyntheticAgent[]): string {
  const readmeWords = agents.reduce((sum, agent) => sum + agent.readme.split(/\s+/).length, 0);
  return `${AGENTS.toLocaleString('en')} agents under ${USERS} owners, one version each, names \`<word>-<word>-<n>\`, descriptions of 5–15 words, 0–5 tags, READMEs of 100–400 words (${Math.round(readmeWords / agents.length)} on average), ${AGENT_CATEGORIES.length} categories, downloads log-uniform from 1 to 10^6; words drawn from ${VOCABULARY.length} with Zipf's law (mulberry32, seed ${CORPUS_SEED.toString(16)}).`;
}

function queryNote(queries: string[]): string {
  const measured = queries.slice(WARM_UP_QUERIES);
  const twoWords = measured.filter((q) => q.includes(' ')).length;
  return `${measured.length.toLocaleString('en')} measured (${measured.length - twoWords} of one word, ${twoWords} of two, the last word also as a prefix, as search does), words uniform over the vocabulary (mulberry32, seed ${QUERY_SEED.toString(16)}); e.g. ${measured.slice(0, 4).map((q) => `"${q}"`).join(', ')}.`;
}

/** A word of the vocabulary, the k-th most common with probability ∝ 1/k. */
function zipf(random: () => number): () => string {
  const cumulative: number[] = [];
  let total = 0;
  for (let k = 1; k <= VOCABULARY.length; k++) cumulative.push((total += 1 / k));
  return () => {
    const target = random() * total;
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (cumulative[middle]! < target) low = middle + 1;
      else high = middle;
    }
    return VOCABULARY[low]!;
  };
}

