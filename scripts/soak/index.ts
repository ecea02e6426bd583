// `npm run soak [-- --duration 10m]`: two `mirror serve` replicas sharing a data directory,
// PostgreSQL and Redis, clients uploading to and reading from both, and faults on a schedule:
// kill -9 of a replica in the middle of an upload then a restart, Redis stopped then started.
// At the end every acknowledged upload is downloaded from both replicas and every listing is
// checked; the table says what held, and the exit code is 1 unless nothing was lost.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from '../../generator/pipeline.ts';
import { seedFromSample } from '../../generator/sample-store.ts';
import { localIssuer } from '../../sidecar/auth/jwt.ts';
import { mirror, ownDatabase, ownRedis, replica, sparePort, type Replica } from './cluster.ts';

const TARGETS = [['linux', 'amd64'], ['linux', 'arm64'], ['darwin', 'amd64'], ['darwin', 'arm64'], ['windows', 'amd64'], ['windows', '386']] as const;
const UPLOADERS = 4;
const READERS = 2;
/** A stall is the longest the surviving replica went without finishing an upload, among the gaps that begin in this window after a kill. */
const STALL_WINDOW_MS = 10_000;
const STALL_LIMIT_MS = 2_000;

interface Acknowledged {
  version: string;
  filename: string;
  sha256: string;
}

interface Sent {
  replica: Replica;
  generation: number;
  started: number;
  /** Set when its replica was killed while it was in flight: its failure is the fault's, not a bug. */
  cutByKill?: boolean;
}

const { values } = parseArgs({ options: { duration: { type: 'string', default: '5m' } } });
const durationMs = parseDuration(values.duration!);
const serverUrl = process.env.SOAK_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
if (!serverUrl) {
  console.error('The soak needs PostgreSQL: set SOAK_DATABASE_URL (or TEST_DATABASE_URL), e.g. postgres://postgres@127.0.0.1:5432/test');
  process.exit(2);
}

const dir = await mkdtemp(path.join(tmpdir(), 'mirror-soak-'));
const dataDir = path.join(dir, 'data');
const releasesDir = path.join(dir, 'releases');
await seedFromSample(releasesDir, path.join(dataDir, 'blobs'));
await build({ releasesDir, site: path.join(dataDir, 'site') });
const database = await ownDatabase(serverUrl);
const redis = await ownRedis();
await redis.start();
const env = {
  MIRROR_DATA_DIR: dataDir,
  MIRROR_RELEASES: releasesDir,
  DATABASE_URL: database.url,
  REDIS_URL: redis.url,
  HOST: '127.0.0.1',
  FLEET_PORT: '0',
  LOG_LEVEL: 'warn',
  // High enough never to refuse, so every request still counts in Redis.
  RATE_LIMIT_IP_PER_MINUTE: '10000000',
  RATE_LIMIT_READS_PER_MINUTE: '10000000',
  RATE_LIMIT_USER_PER_MINUTE: '10000000',
  RATE_LIMIT_UPLOADS_PER_HOUR: '10000000',
};
await mirror(['migrate'], env);
const token = await (await localIssuer({ dir: path.join(dataDir, 'auth') })).mint('soak', Math.ceil(durationMs / 1000) + 3600);
const replicas = [replica('a', await sparePort(), env), replica('b', await sparePort(), env)];
await Promise.all(replicas.map((each) => each.start()));

const acknowledged: Acknowledged[] = [];
const inFlight = new Set<Sent>();
const completions: { replica: Replica; at: number }[] = [];
const kills: { at: number; survivor: Replica }[] = [];
const counts = { uploads: 0, reads: 0, refusedWhileDown: 0, cutByKill: 0, serverErrors: 0, otherFailures: 0, wrongBytesLive: 0, redisOutages: 0, restarts: 0 };
const failures: string[] = [];
let sequence = 0;
let running = true;
const started = Date.now();

/** Sends a request to one replica, and tells apart the failures a kill explains from the others. */
async function send(target: Replica, pathname: string, init: RequestInit = {}): Promise<Response | undefined> {
  const sent: Sent = { replica: target, generation: target.generation, started: performance.now() };
  inFlight.add(sent);
  try {
    const response = await fetch(`${target.url}${pathname}`, init);
    const body = Buffer.from(await response.arrayBuffer());
    if (response.status >= 500 && !sent.cutByKill) {
      counts.serverErrors++;
      failures.push(`${target.name} ${init.method ?? 'GET'} ${pathname}: ${response.status} ${body.toString().slice(0, 200)}`);
    }
    return new Response(body, { status: response.status, headers: response.headers });
  } catch (error) {
    if (sent.cutByKill) counts.cutByKill++;
    else if (!target.alive || target.generation !== sent.generation) counts.refusedWhileDown++;
    else {
      counts.otherFailures++;
      failures.push(`${target.name} ${init.method ?? 'GET'} ${pathname}: ${(error as Error).cause ?? (error as Error).message}`);
    }
    return undefined;
  } finally {
    inFlight.delete(sent);
  }
}

async function uploader(): Promise<void> {
  while (running) {
    const n = sequence++;
    const minor = Math.floor(n / TARGETS.length);
    const [platform, arch] = TARGETS[n % TARGETS.length]!;
    const version = `7.${minor}.0`;
    const bytes = randomBytes(32 * 1024 + Math.floor(Math.random() * 96 * 1024));
    const live = replicas.filter((each) => each.alive);
    const target = live[n % live.length] ?? replicas[0]!;
    const response = await send(target, `/binary/releases/agent-as-code/7/${minor}/upload?version=${version}&platform=${platform}&architecture=${arch}`, {
      method: 'POST',
      body: new Uint8Array(bytes),
      headers: { 'Content-Type': 'application/zip', Authorization: `Bearer ${token}` },
    });
    if (response?.status === 201) {
      const { release } = (await response.json()) as { release: { filename: string } };
      acknowledged.push({ version, filename: release.filename, sha256: sha256(bytes) });
      completions.push({ replica: target, at: performance.now() });
      counts.uploads++;
    } else if (response && response.status < 500) {
      counts.otherFailures++;
      failures.push(`upload ${version} ${platform}/${arch} to ${target.name}: ${response.status} ${await response.text()}`);
    }
  }
}

async function reader(): Promise<void> {
  while (running) {
    const pick = acknowledged[Math.floor(Math.random() * acknowledged.length)];
    const live = replicas.filter((each) => each.alive);
    const target = live[Math.floor(Math.random() * live.length)] ?? replicas[0]!;
    if (!pick) {
      await sleep(50);
      continue;
    }
    const [, minor] = pick.version.split('.');
    const response = await send(target, `/binary/releases/agent-as-code/7/${minor}/${pick.filename}`);
    if (!response) continue;
    counts.reads++;
    if (response.status !== 200 || sha256(Buffer.from(await response.arrayBuffer())) !== pick.sha256) {
      counts.wrongBytesLive++;
      failures.push(`read ${pick.filename} from ${target.name}: ${response.status}`);
    }
  }
}

/** kill -9 of a replica while one of its uploads is in flight, then a restart a second later. */
async function killMidUpload(victim: Replica, survivor: Replica): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && ![...inFlight].some((sent) => sent.replica === victim && sent.generation === victim.generation)) await sleep(5);
  for (const sent of inFlight) if (sent.replica === victim) sent.cutByKill = true;
  kills.push({ at: performance.now(), survivor });
  await victim.kill();
  await sleep(1_000);
  await victim.start();
  counts.restarts++;
}

async function redisOutage(): Promise<void> {
  await redis.stop();
  counts.redisOutages++;
  await sleep(3_000);
  await redis.start();
}

/** Faults spread over the run: kills alternate between the replicas; Redis goes away between them. */
async function faults(): Promise<void> {
  const rounds = Math.max(1, Math.floor(durationMs / 20_000));
  for (let round = 0; round < rounds && running; round++) {
    await sleep(durationMs / (rounds + 1) / 2);
    if (!running) break;
    const victim = replicas[round % 2]!;
    await killMidUpload(victim, replicas[(round + 1) % 2]!);
    await sleep(durationMs / (rounds + 1) / 2);
    if (!running) break;
    await redisOutage();
  }
}

const workers = [...Array.from({ length: UPLOADERS }, uploader), ...Array.from({ length: READERS }, reader)];
const faulting = faults();
await sleep(durationMs);
running = false;
await Promise.all([...workers, faulting]);
const elapsedSeconds = (Date.now() - started) / 1000;

// Verification, after the faults: every acknowledged upload from both replicas, every listing.
let lost = 0;
let wrongBytes = 0;
for (const ack of acknowledged) {
  const [, minor] = ack.version.split('.');
  for (const each of replicas) {
    const response = await fetch(`${each.url}/binary/releases/agent-as-code/7/${minor}/${ack.filename}`);
    if (response.status !== 200) {
      lost++;
      failures.push(`lost: ${ack.filename} answers ${response.status} on ${each.name}`);
    } else if (sha256(Buffer.from(await response.arrayBuffer())) !== ack.sha256) {
      wrongBytes++;
      failures.push(`wrong bytes: ${ack.filename} on ${each.name}`);
    }
  }
}
let listedNotDownloadable = 0;
for (let minor = 0; minor <= Math.floor((sequence - 1) / TARGETS.length); minor++) {
  for (const each of replicas) {
    const listing = await fetch(`${each.url}/binary/releases/agent-as-code/7/${minor}/`);
    if (listing.status !== 200) continue;
    const { files } = (await listing.json()) as { files: { filename: string }[] };
    for (const file of files) {
      const response = await fetch(`${each.url}/binary/releases/agent-as-code/7/${minor}/${file.filename}`, { method: 'HEAD' });
      if (response.status !== 200) {
        listedNotDownloadable++;
        failures.push(`listed but ${response.status}: ${file.filename} on ${each.name}`);
      }
    }
  }
}
const finished = performance.now();
const stalls = kills.map(({ at, survivor }) => {
  const done = completions.filter((entry) => entry.replica === survivor && entry.at > at).map((entry) => entry.at);
  let previous = at;
  let longest = 0;
  for (const when of [...done, finished]) {
    if (previous >= at + STALL_WINDOW_MS) break;
    longest = Math.max(longest, when - previous);
    previous = when;
  }
  return longest;
});
const longestStall = Math.max(0, ...stalls);

await Promise.all(replicas.map((each) => each.stop()));
await redis.stop();
await database.drop();
await rm(dir, { recursive: true, force: true });

const rows: [string, string, boolean?][] = [
  ['duration', `${elapsedSeconds.toFixed(0)} s`],
  ['uploads acknowledged', `${counts.uploads} (${(counts.uploads / elapsedSeconds).toFixed(1)}/s)`],
  ['reads checked', `${counts.reads} (${(counts.reads / elapsedSeconds).toFixed(1)}/s)`],
  ['kill -9 + restart', String(counts.restarts)],
  ['Redis outages', String(counts.redisOutages)],
  ['requests cut by a kill', String(counts.cutByKill)],
  ['requests refused by a down replica', String(counts.refusedWhileDown)],
  ['acknowledged uploads lost', String(lost), lost === 0],
  ['wrong bytes', String(wrongBytes + counts.wrongBytesLive), wrongBytes + counts.wrongBytesLive === 0],
  ['listed but not downloadable', String(listedNotDownloadable), listedNotDownloadable === 0],
  ['5xx outside a killed replica\'s in-flight', String(counts.serverErrors), counts.serverErrors === 0],
  ['other failed requests', String(counts.otherFailures), counts.otherFailures === 0],
  [`longest stall of a survivor after a kill`, `${Math.round(longestStall)} ms (${stalls.map(Math.round).join(', ') || 'no kill'})`, kills.length > 0 && longestStall < STALL_LIMIT_MS],
];
const width = Math.max(...rows.map(([name]) => name.length));
console.log(`\n| ${'soak'.padEnd(width)} | result |\n| ${'-'.repeat(width)} | --- |`);
for (const [name, value, ok] of rows) console.log(`| ${name.padEnd(width)} | ${value}${ok === undefined ? '' : ok ? ' ✓' : ' ✗'} |`);
for (const failure of failures.slice(0, 20)) console.error(failure);
process.exit(rows.every(([, , ok]) => ok !== false) ? 0 : 1);

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function parseDuration(text: string): number {
  const match = /^(\d+)(s|m|h)$/.exec(text);
  if (!match) throw new Error(`Expected \`--duration\` such as 60s, 10m or 1h, got \`${text}\``);
  return Number(match[1]) * { s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h'];
}
