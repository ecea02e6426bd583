// `npm run soak [-- --duration 10m]`: two `mirror serve` replicas sharing a data directory,
// PostgreSQL and Redis; clients uploading binaries to and reading them from both, publishing
// registry packages on both, and fleet agents heartbeating against both; both also deploying the
// site to an S3 bucket (s3rver) in the background after each rebuild; and faults on a schedule:
// kill -9 of a replica in the middle of an upload then a restart, Redis stopped then started while
// S3 answers errors, and (as root) the blob store's disk filled until writes fail, held full, then
// freed. At the end every acknowledged upload and publish is downloaded from both replicas and
// every listing is checked, and the bucket must catch up with every acknowledged upload; the table
// says what held, and the exit code is 1 unless nothing was lost.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { build } from '../../generator/pipeline.ts';
import { seedFromSample } from '../../generator/sample-store.ts';
import { localIssuer } from '../../sidecar/auth/jwt.ts';
import { loadOrCreateCa } from '../../sidecar/fleet/ca.ts';
import { mirror, ownDatabase, ownRedis, replica, sparePort, type Replica } from './cluster.ts';
import { mountSmallDisk, stagingFiles, type SmallDisk } from './disk-full.ts';
import { agentsOnline, heartbeater, registerAgents, type FleetAccess } from './fleet.ts';
import { registryPublisher, SCOPE, verifyPublished, type Published } from './registry.ts';
import { startFaultyS3, type OutageMix, type S3OutageWindow } from './s3-faults.ts';
import { bucketConverged, remotePublishes, startedInSync, type RemotePublishes } from './s3-remote.ts';
import { fetchAnswer, jsonOf, KINDS, traffic, type Answer, type DiskFullWindow, type Kind, type Tally } from './traffic.ts';

const TARGETS = [['linux', 'amd64'], ['linux', 'arm64'], ['darwin', 'amd64'], ['darwin', 'arm64'], ['windows', 'amd64'], ['windows', '386']] as const;
const UPLOADERS = 4;
const READERS = 2;
const PUBLISHERS = 2;
const AGENTS = 4;
/**
 * A survivor's stall is the longest it kept an upload waiting, among those in flight at a kill or
 * sent in this window after it: what the kill cost its clients. The restarted replica's own first
 * uploads, which wait for its build thread to warm up, are shown apart.
 */
const STALL_WINDOW_MS = 10_000;
const STALL_LIMIT_MS = 2_000;
/** Each round of faults: a kill, a Redis outage with an S3 outage, a full disk, about 18 s in all. */
const ROUND_MS = 20_000;
const KILL_AFTER_MS = 1_000;
const FAULT_GAP_MS = 500;
const REDIS_OUTAGE_MS = 3_000;
const DISK_FULL_MS = 3_000;
/**
 * S3 fails at the same time as Redis: a round has no other 3 s clear of the kill's stall window and
 * of the full disk (during which no upload rebuilds, so none deploys). The two touch separate paths.
 * Most requests get S3's 503 or 500, some are cut halfway through the answer.
 */
const S3_OUTAGE_MS = 3_000;
const S3_OUTAGE_MIX: OutageMix = { cuts: 0.1, errors: 1 };
const S3_BUCKET = 'mirror-soak';
/** How long the bucket has, once the traffic and faults are over, to hold every acknowledged upload. */
const S3_CONVERGE_MS = 60_000;
/** How long each replica's first deploy (the whole site, to an empty bucket) may take before the traffic starts. */
const S3_FIRST_DEPLOY_MS = 30_000;
/** Time left after a full disk, or an S3 outage, for uploads to succeed again before the run ends. */
const RECOVERY_MS = 2_000;
/** The blob store's tmpfs: room for the sample and what a run uploads (about 0.3 MiB/s), filled to the brim by the fault. */
const DISK_BYTES = 256 * 1024 * 1024;
const DISK_BYTES_PER_SECOND = 512 * 1024;

const PLURAL: Record<Kind, string> = { upload: 'uploads', read: 'reads', publish: 'publishes', heartbeat: 'heartbeats' };

interface Acknowledged {
  version: string;
  filename: string;
  sha256: string;
}

const { values } = parseArgs({ options: { duration: { type: 'string', default: '5m' } } });
const durationMs = parseDuration(values.duration!);
const serverUrl = process.env.SOAK_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
if (!serverUrl) {
  console.error('The soak needs PostgreSQL: set SOAK_DATABASE_URL (or TEST_DATABASE_URL), e.g. postgres://postgres@127.0.0.1:5432/test');
  process.exit(2);
}
// Ctrl-C ends through process.exit, so the exit handlers run (the tmpfs's unmount).
process.once('SIGINT', () => process.exit(130));

const dir = await mkdtemp(path.join(tmpdir(), 'mirror-soak-'));
const dataDir = path.join(dir, 'data');
const releasesDir = path.join(dir, 'releases');
const blobsDir = path.join(dataDir, 'blobs');
const teardown: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })];
const disk = await mountSmallDisk(blobsDir, DISK_BYTES + Math.ceil(durationMs / 1000) * DISK_BYTES_PER_SECOND);
const smallDisk: SmallDisk | undefined = 'skipped' in disk ? undefined : disk;
if (smallDisk) teardown.push(() => smallDisk.unmount());

const acknowledged: Acknowledged[] = [];
const published: Published[] = [];
/** Every upload a replica answered, acknowledged (201) or not. */
const answered: { replica: Replica; started: number; at: number; acknowledged: boolean }[] = [];
const kills: { at: number; survivor: Replica }[] = [];
const counts = { reads: 0, wrongBytesLive: 0, redisOutages: 0, restarts: 0, s3Outages: 0, s3OutagesSkipped: 0 };
/** The replicas' remote publishes: each victim's counted just before its kill, which resets them, and both at the end. */
const publishesToS3: RemotePublishes = { ok: 0, failed: 0 };
const requests = traffic();
/** Staging files present just after a kill, before the restart: the ones a kill may leave. */
const leftByKill = new Set<string>();
/** Staging files that outlived their request, kills aside. */
const leftBehind = new Set<string>();
let sequence = 0;
let running = true;
let started = 0;
let elapsedSeconds = 0;
let replicas: Replica[] = [];
let exitCode = 1;

try {
  await seedFromSample(releasesDir, blobsDir);
  await build({ releasesDir, site: path.join(dataDir, 'site') });
  const database = await ownDatabase(serverUrl);
  teardown.push(() => database.drop());
  const redis = await ownRedis();
  teardown.push(() => redis.stop());
  await redis.start();
  const s3 = await startFaultyS3(path.join(dir, 's3'), S3_BUCKET);
  teardown.push(() => s3.close());
  const env = {
    ...s3.env(),
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
    REGISTRY_RATE_LIMIT_IP_PER_MINUTE: '10000000',
    REGISTRY_RATE_LIMIT_USER_PER_MINUTE: '10000000',
    REGISTRY_RATE_LIMIT_PUBLISH_PER_HOUR: '10000000',
  };
  await mirror(['migrate'], env);
  const ttlSeconds = Math.ceil(durationMs / 1000) + 3600;
  const issuer = await localIssuer({ dir: path.join(dataDir, 'auth') });
  const token = await issuer.mint('soak', ttlSeconds);
  const registryToken = (await mirror(['registry', 'token', 'create', '--user', SCOPE], env)).trim().split('\n').at(-1)!;
  replicas = [replica('a', await sparePort(), env), replica('b', await sparePort(), env)];
  teardown.push(() => Promise.all(replicas.map((each) => each.stop())).then(() => undefined));
  await Promise.all(replicas.map((each) => each.start()));
  // Each deploys the whole site at its start: not a load to measure stalls against.
  if (!(await startedInSync(replicas, S3_FIRST_DEPLOY_MS))) requests.failures.push(`the replicas' first deploys to S3 had not ended after ${S3_FIRST_DEPLOY_MS / 1000} s`);
  const fleet: FleetAccess = { replicas, ca: (await loadOrCreateCa(path.join(dataDir, 'fleet', 'ca.json'))).certificate, operatorToken: await issuer.mint('soak-operator', ttlSeconds, ['fleet:admin']) };
  const agents = await registerAgents(AGENTS, fleet);
  const live = { traffic: requests, replicas, running: () => running };

  async function uploader(): Promise<void> {
    while (running) {
      const n = sequence++;
      const minor = Math.floor(n / TARGETS.length);
      const [platform, arch] = TARGETS[n % TARGETS.length]!;
      const version = `7.${minor}.0`;
      const bytes = randomBytes(32 * 1024 + Math.floor(Math.random() * 96 * 1024));
      const target = liveReplica(n);
      const sent = performance.now();
      const answer = await requests.send(
        'upload',
        target,
        `POST upload ${version} ${platform}/${arch}`,
        () =>
          fetchAnswer(`${target.url}/binary/releases/agent-as-code/7/${minor}/upload?version=${version}&platform=${platform}&architecture=${arch}`, {
            method: 'POST',
            body: new Uint8Array(bytes),
            headers: { 'Content-Type': 'application/zip', Authorization: `Bearer ${token}` },
          }),
        { outOfSpace: uploadOutOfSpace },
      );
      if (answer) answered.push({ replica: target, started: sent, at: performance.now(), acknowledged: answer.status === 201 });
      if (answer?.status === 201) {
        const { release } = jsonOf(answer) as { release: { filename: string } };
        acknowledged.push({ version, filename: release.filename, sha256: sha256(bytes) });
      } else if (answer) {
        requests.fail('upload', `upload ${version} ${platform}/${arch} to ${target.name}: ${answer.status} ${answer.body.toString().slice(0, 200)}`);
      }
    }
  }

  async function reader(): Promise<void> {
    while (running) {
      const pick = acknowledged[Math.floor(Math.random() * acknowledged.length)];
      const target = liveReplica(Math.floor(Math.random() * 2));
      if (!pick) {
        await sleep(50);
        continue;
      }
      const [, minor] = pick.version.split('.');
      const answer = await requests.send('read', target, `GET ${pick.filename}`, () => fetchAnswer(`${target.url}/binary/releases/agent-as-code/7/${minor}/${pick.filename}`));
      if (!answer) continue;
      counts.reads++;
      if (answer.status !== 200 || sha256(answer.body) !== pick.sha256) {
        counts.wrongBytesLive++;
        requests.failures.push(`read ${pick.filename} from ${target.name}: ${answer.status}`);
      }
    }
  }

  /** kill -9 of a replica while one of its uploads is in flight, then a restart a second later. */
  async function killMidUpload(victim: Replica, survivor: Replica): Promise<void> {
    // Counted now: the kill takes the counts with it.
    addPublishes(await remotePublishes(victim));
    const deadline = Date.now() + 5_000;
    const uploading = () => [...requests.inFlight].some((sent) => sent.kind === 'upload' && sent.replica === victim && sent.generation === victim.generation);
    while (Date.now() < deadline && !uploading()) await sleep(5);
    for (const sent of requests.inFlight) if (sent.replica === victim) sent.cutByKill = true;
    kills.push({ at: performance.now(), survivor });
    await victim.kill();
    for (const file of await stagingFiles(blobsDir)) leftByKill.add(file.name);
    await sleep(1_000);
    await victim.start();
    counts.restarts++;
  }

  async function s3Outage(): Promise<void> {
    const window: S3OutageWindow = { from: performance.now() };
    requests.s3Outages.push(window);
    counts.s3Outages++;
    await s3.outage(S3_OUTAGE_MS, S3_OUTAGE_MIX, window);
  }

  async function redisOutage(): Promise<void> {
    await redis.stop();
    counts.redisOutages++;
    await sleep(REDIS_OUTAGE_MS);
    await redis.start();
  }

  /** Fills the blob store's disk while uploads go on; what the window's requests staged must be gone once they are answered. */
  async function diskFull(onDisk: SmallDisk): Promise<void> {
    const window: DiskFullWindow = { from: performance.now() };
    requests.diskFull.push(window);
    await onDisk.fill(DISK_FULL_MS, window);
    await requests.settled(window.to!);
    const freed = performance.timeOrigin + window.to!;
    for (const file of await stagingFiles(blobsDir)) if (file.modified <= freed && !leftByKill.has(file.name)) leftBehind.add(file.name);
  }

  /**
   * Rounds of faults spread over the run: a kill (alternating between the replicas), then, once
   * the kill's stall window and a stall's length are over, Redis goes away and comes back, then
   * the disk fills and is freed. Uploads wait for Redis and fail on a full disk; neither gap is
   * to be taken for a survivor's stall.
   */
  async function faults(): Promise<void> {
    const rounds = Math.max(1, Math.floor(durationMs / ROUND_MS));
    for (let round = 0; round < rounds; round++) {
      if (!(await until(started + (round * durationMs) / rounds + KILL_AFTER_MS))) return;
      await killMidUpload(replicas[round % 2]!, replicas[(round + 1) % 2]!);
      if (!(await until(kills.at(-1)!.at + STALL_WINDOW_MS + STALL_LIMIT_MS))) return;
      // An S3 outage needs time after it, before the end, for a deploy to be retried and the bucket to catch up.
      const s3Fits = performance.now() + S3_OUTAGE_MS + RECOVERY_MS <= started + durationMs;
      if (!s3Fits) counts.s3OutagesSkipped++;
      await Promise.all([redisOutage(), ...(s3Fits ? [s3Outage()] : [])]);
      // A full disk that the end of the run would cut short could not show uploads succeeding again.
      if (!smallDisk || performance.now() + FAULT_GAP_MS + DISK_FULL_MS + RECOVERY_MS > started + durationMs) continue;
      if (!(await until(performance.now() + FAULT_GAP_MS))) return;
      await diskFull(smallDisk);
    }
  }

  started = performance.now();
  const uploads = Array.from({ length: UPLOADERS }, uploader);
  const reads = Array.from({ length: READERS }, reader);
  const publishes = Array.from({ length: PUBLISHERS }, (_, n) => registryPublisher(`soak-tool-${n + 1}`, n, { ...live, token: registryToken, published }));
  const beats = agents.map((agent, n) => heartbeater(agent, n, live));
  const faulting = faults();
  await sleep(durationMs);
  running = false;
  const stopped = performance.now();
  await Promise.all([...uploads, ...reads, ...publishes, faulting]);
  const heartbeats = (await Promise.all(beats)).reduce((sum, each) => sum + each, 0);
  elapsedSeconds = (performance.now() - started) / 1000;
  for (const agent of agents) agent.tls.destroy();
  // The faults are over and nothing uploads any more: from now on the bucket can only catch up. Read while the replicas are checked.
  const uploaded = acknowledged.map((ack) => ({ listing: `/binary/releases/agent-as-code/7/${ack.version.split('.')[1]}/`, filename: ack.filename, sha256: ack.sha256 }));
  const converging = bucketConverged(s3.direct, S3_BUCKET, path.join(dataDir, 'site'), uploaded, S3_CONVERGE_MS);
  // Awaited after the replicas' checks; a failure meanwhile is not an unhandled rejection.
  converging.catch(() => undefined);

  // Verification, after the faults: every acknowledged upload and publish from both replicas, every listing.
  let lost = 0;
  let wrongBytes = 0;
  const failures = requests.failures;
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
  const publishCheck = await verifyPublished(published, replicas);
  failures.push(...publishCheck.failures);
  const fleetCheck = await agentsOnline(agents, fleet);
  failures.push(...fleetCheck.failures);
  const converged = await converging;
  failures.push(...converged.problems.map((problem) => `not in S3: ${problem}`));
  for (const each of replicas) addPublishes(await remotePublishes(each));
  const staging = await stagingFiles(blobsDir);
  for (const file of staging) if (!leftByKill.has(file.name)) leftBehind.add(file.name);
  failures.push(...[...leftBehind].map((name) => `staging file left behind: .tmp/${name}`));
  const completions = answered.filter((entry) => entry.acknowledged);
  const afterKill = (at: number, replica: Replica) => answered.filter((entry) => entry.replica === replica && entry.at > at && entry.started < at + STALL_WINDOW_MS);
  const stalls = kills.map(({ at, survivor }) => Math.max(0, ...afterKill(at, survivor).map((entry) => entry.at - entry.started)));
  // The measure before: the longest the survivor went without acknowledging an upload, which also
  // counts the time the clients, each sending one upload at a time, spent on the restarted replica.
  const gaps = kills.map(({ at, survivor }) => {
    const done = completions.filter((entry) => entry.replica === survivor && entry.at > at).map((entry) => entry.at);
    let previous = at;
    let longest = 0;
    for (const when of [...done, stopped]) {
      if (previous >= at + STALL_WINDOW_MS) break;
      longest = Math.max(longest, when - previous);
      previous = when;
    }
    return longest;
  });
  const restarted = kills.map(({ at, survivor }) => {
    const victim = replicas.find((each) => each !== survivor)!;
    return Math.max(0, ...afterKill(at, victim).map((entry) => entry.at - entry.started));
  });
  const longestStall = Math.max(0, ...stalls);
  const windows = requests.diskFull;
  const backAfterFull = windows.filter((window) => completions.some((entry) => entry.started >= window.to!)).length;
  const ackedWhileFull = completions.filter((entry) => windows.some((window) => entry.started >= window.full! && entry.at <= window.to!)).length;

  const { tally } = requests;
  const serverErrors = total('serverErrors');
  const serverErrorsWhileS3Failed = total('serverErrorsWhileS3Failed');
  const injected = s3.counts.injected.SlowDown + s3.counts.injected.InternalError;
  const otherFailures = total('otherFailures');
  const wrong = wrongBytes + counts.wrongBytesLive + publishCheck.wrongBytes;
  const rows: [string, string, boolean?][] = [
    ['duration', `${elapsedSeconds.toFixed(0)} s`],
    ['uploads acknowledged', rate(acknowledged.length)],
    ['reads checked', rate(counts.reads)],
    ['registry publishes acknowledged', rate(published.length)],
    ['fleet heartbeats answered', rate(heartbeats)],
    ['fleet agents online on both replicas at the end', `${fleetCheck.online}/${agents.length * replicas.length}`, fleetCheck.online === agents.length * replicas.length],
    ['kill -9 + restart', String(counts.restarts)],
    ['Redis outages', String(counts.redisOutages)],
    ['S3 outages (with the Redis outages)', `${counts.s3Outages} × ${S3_OUTAGE_MS / 1000} s${counts.s3OutagesSkipped > 0 ? `, ${counts.s3OutagesSkipped} skipped: too near the end for uploads after it` : ''}`],
    ['S3 requests forwarded to s3rver', String(s3.counts.forwarded)],
    [
      'S3 errors injected',
      `${injected} (503 SlowDown ${s3.counts.injected.SlowDown}, 500 InternalError ${s3.counts.injected.InternalError}), ${s3.counts.cut} cut mid-answer`,
      counts.s3Outages === 0 || injected > 0,
    ],
    // The sidecar counts a result per upload that asked for a deploy: uploads sharing one deploy each count its result.
    ['remote publishes (replicas\' site_remote_publishes_total)', `ok ${publishesToS3.ok}, failed ${publishesToS3.failed}`],
    ['disk full (blobs on a tmpfs)', smallDisk ? `${windows.length} × ${DISK_FULL_MS / 1000} s, ${smallDisk.bytes / 1024 / 1024} MiB tmpfs` : `skipped: ${(disk as { skipped: string }).skipped}`],
    ['requests cut by a kill', byKind('cutByKill')],
    ['requests refused by a down replica', byKind('refusedWhileDown')],
    ...(smallDisk
      ? ([
          ['requests refused: disk full (500 naming the cause)', byKind('refusedDiskFull'), windows.length === 0 || tally.upload.refusedDiskFull > 0],
          ['requests left without an answer while the disk was full', byKind('unansweredDiskFull'), total('unansweredDiskFull') === 0],
          ['uploads acknowledged while the disk was full', String(ackedWhileFull)],
          ['disk-full windows followed by an acknowledged upload', `${backAfterFull}/${windows.length}`, backAfterFull === windows.length],
        ] as [string, string, boolean?][])
      : []),
    ['acknowledged uploads lost', String(lost), lost === 0],
    ['acknowledged registry publishes lost', String(publishCheck.lost), publishCheck.lost === 0],
    ['wrong bytes', `${wrong}${wrong > 0 ? ` (uploads ${wrongBytes}, live reads ${counts.wrongBytesLive}, publishes ${publishCheck.wrongBytes})` : ''}`, wrong === 0],
    ['listed but not downloadable', String(listedNotDownloadable), listedNotDownloadable === 0],
    ['staging files left behind (kills aside)', String(leftBehind.size), leftBehind.size === 0],
    ['staging files a kill -9 left, still there at the end', String(staging.filter((file) => leftByKill.has(file.name)).length), staging.every((file) => !leftByKill.has(file.name))],
    ['5xx outside a killed replica\'s in-flight or a full disk', byKind('serverErrors'), serverErrors === 0],
    ['of those, while S3 answered errors', byKind('serverErrorsWhileS3Failed'), serverErrorsWhileS3Failed === 0],
    ['other failed requests', byKind('otherFailures'), otherFailures === 0],
    [
      'S3 converged',
      `${converged.converged} of ${converged.total} acknowledged uploads listed in S3 ${converged.ms === undefined ? `(not all within ${S3_CONVERGE_MS / 1000} s)` : `within ${(converged.ms / 1000).toFixed(1)} s`} (${converged.behindAtFirst} not yet at the first read)`,
      converged.ms !== undefined,
    ],
    [`longest stall of a survivor after a kill (its slowest upload)`, `${Math.round(longestStall)} ms (${stalls.map(Math.round).join(', ') || 'no kill'})`, kills.length > 0 && longestStall < STALL_LIMIT_MS],
    [`longest a survivor went without acknowledging an upload after a kill`, `${Math.round(Math.max(0, ...gaps))} ms`],
    [`slowest upload to the restarted replica in the same window`, `${Math.round(Math.max(0, ...restarted))} ms (${restarted.map(Math.round).join(', ') || 'no kill'})`],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  console.log(`\n| ${'soak'.padEnd(width)} | result |\n| ${'-'.repeat(width)} | --- |`);
  for (const [name, value, ok] of rows) console.log(`| ${name.padEnd(width)} | ${value}${ok === undefined ? '' : ok ? ' ✓' : ' ✗'} |`);
  for (const failure of failures.slice(0, 20)) console.error(failure);
  exitCode = rows.every(([, , ok]) => ok !== false) ? 0 : 1;
} catch (error) {
  running = false;
  console.error(error);
} finally {
  await finish();
}
process.exit(exitCode);

/** Undoes the set-up in reverse: replicas, Redis, the database, the tmpfs, the directory. */
async function finish(): Promise<void> {
  for (const step of teardown.reverse()) await step().catch((error: unknown) => console.error(`teardown: ${String(error)}`));
  teardown.length = 0;
}

function addPublishes(counted: RemotePublishes): void {
  publishesToS3.ok += counted.ok;
  publishesToS3.failed += counted.failed;
}

/** The `n`th live replica, round the live ones; the first when none is live. */
function liveReplica(n: number): Replica {
  const live = replicas.filter((each) => each.alive);
  return live[n % live.length] ?? replicas[0]!;
}

/** The 500 an upload gets while the disk is full: the contract's shape, and a message that names the cause. */
function uploadOutOfSpace(answer: Answer): boolean {
  const body = jsonOf(answer) as { error?: unknown; message?: unknown } | undefined;
  return answer.status === 500 && body?.error === 'Internal Server Error' && typeof body.message === 'string' && body.message.startsWith('Failed to upload binary: ') && /disk space|ENOSPC/i.test(body.message);
}

function total(field: keyof Tally): number {
  return KINDS.reduce((sum, kind) => sum + requests.tally[kind][field], 0);
}

function byKind(field: keyof Tally): string {
  const parts = KINDS.filter((kind) => requests.tally[kind][field] > 0).map((kind) => `${PLURAL[kind]} ${requests.tally[kind][field]}`);
  return `${total(field)}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`;
}

function rate(count: number): string {
  return `${count} (${(count / elapsedSeconds).toFixed(1)}/s)`;
}

/** Sleeps until `time` (performance.now()); false when the soak stopped meanwhile or had stopped. */
async function until(time: number): Promise<boolean> {
  while (running && performance.now() < time) await sleep(Math.min(250, time - performance.now()));
  return running;
}

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
