// Deploy rows: `mirror deploy` against `aws s3 sync`, both into the same s3rver (a child process)
// through a counting proxy. Into empty buckets first: a 1,000-release store by both tools, then the
// 10,000-release store by ours only (aws s3 sync would need minutes more than the bench's budget;
// its bucket is seeded with a copy of ours' objects; BENCH_DEPLOY_AWS_FULL=1 syncs it with aws
// instead). Then one release is added and both deploy it.
// The stores have real ~100-byte blobs.
// The reference syncs the tree a self-hoster would: a fresh `mirror build`'s public files plus the
// blob store hard-linked in under the blob keys (hard links keep the blobs' old mtimes, which is
// the most favourable case for `aws s3 sync`: it skips blobs it already uploaded).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { seconds, timed, type Run } from './run.ts';
import { startBenchS3, type BenchS3, type ProxyStats } from './s3-server.ts';
import { BLOB_SIZE, DEFAULT_SHAPE, writeRelease, writeSyntheticStore, type StoreShape } from './synthetic-store.ts';
import type { Row } from './table.ts';

const execFileAsync = promisify(execFile);

const OURS_BUCKET = 'bench-ours';
const AWS_BUCKET = 'bench-aws';
const SMALL_OURS_BUCKET = 'small-ours';
const SMALL_AWS_BUCKET = 'small-aws';
const SHM = '/dev/shm';
/** BENCH_DEPLOY_AWS_FULL=1: `aws s3 sync` the full store into its empty bucket too (several minutes more). */
const FULL_REFERENCE = process.env.BENCH_DEPLOY_AWS_FULL === '1';
/** The deployer's own object (generator/publish/s3-target.ts). */
const STATE_KEY = '.mirror/deploy-state.json';
const REQUESTS_FACTOR_TARGET = 10;
const WALL_FACTOR_TARGET = 5;
/** $AWS_CLI alone when set; else Debian's package first (what the rows compare with), then any `aws` on PATH. */
const AWS_CANDIDATES = process.env.AWS_CLI ? [process.env.AWS_CLI] : ['/usr/bin/aws', 'aws'];
const NOT_RUN = 'not run: `aws` not found (`apt-get install -y awscli` is needed)';

export interface DeployBench {
  rows: Row[];
  /** Lines for after the table: what each tool uploaded, the CLI's step timings. */
  notes: string[];
}

interface Measured {
  run: Run;
  stats: ProxyStats;
}

export async function benchDeploys(work: string, repo: string, progress: (line: string) => void, shape: StoreShape = DEFAULT_SHAPE): Promise<DeployBench> {
  const store = path.join(work, 'deploy-store');
  const data = path.join(work, 'deploy-data');
  const blobs = path.join(data, 'blobs');
  const smallShape: StoreShape = { ...shape, majors: 1 };
  const smallStore = path.join(work, 'deploy-small-store');
  const smallData = path.join(work, 'deploy-small-data');
  progress('writing the synthetic stores with blobs');
  const releases = await writeSyntheticStore(store, shape, { blobsDir: blobs });
  const smallReleases = await writeSyntheticStore(smallStore, smallShape, { blobsDir: path.join(smallData, 'blobs') });

  const aws = await findAwsCli();
  if (!aws) progress(`aws CLI not found (tried ${AWS_CANDIDATES.join(', ')}): \`apt-get install -y awscli\` is needed for the reference cells; they say "not run"`);
  else progress(`reference: ${aws.program} (${aws.version})`);

  const awsConfig = path.join(work, 'aws-config');
  await writeFile(awsConfig, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n');
  const credentials = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_CONFIG_FILE: awsConfig };
  // awscli ≥ 2.23 sends CRC trailers (aws-chunked) that s3rver does not understand; older ones ignore these.
  const awsEnv = { ...credentials, AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required', AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required' };

  // s3rver's objects on tmpfs when there is one: S3's own disk is not what either tool is measured on.
  const s3dir = await mkdtemp(path.join(existsSync(SHM) ? SHM : work, 'mirror-bench-s3rver-'));
  progress(`starting s3rver (${s3dir}) and the counting proxy (child process)`);
  const s3 = await startBenchS3(s3dir, [OURS_BUCKET, AWS_BUCKET, SMALL_OURS_BUCKET, SMALL_AWS_BUCKET]);
  try {
    const ours = (bucket: string, releasesDir = store, dataDir = data): Promise<Measured> =>
      measure(s3, () => timed(['node', 'dist/mirror.js', 'deploy', '--bucket', bucket, '--endpoint', s3.endpoint, '--region', 'us-east-1', '--releases', releasesDir], repo, { MIRROR_DATA_DIR: dataDir, ...credentials }));
    const sync = (tree: Tree, bucket: string): Promise<Measured> =>
      measure(s3, () => timed([aws!.program, '--endpoint-url', s3.endpoint, 's3', 'sync', tree.dir, `s3://${bucket}/`, '--only-show-errors'], repo, awsEnv));
    /** The tree a CI job would sync: a fresh build (new mtimes) plus the blob store, hard-linked. */
    const tree = async (name: string, releasesDir = store, dataDir = data): Promise<Tree> => {
      const out = path.join(work, `${name}-build`);
      const dir = path.join(work, name);
      const build = await timed(['node', 'dist/mirror.js', 'build', '--releases', releasesDir, '--out', out], repo, { MIRROR_DATA_DIR: dataDir });
      const linkPublic = await timed(['cp', '-al', path.join(path.resolve(path.dirname(out), await readlink(out)), 'public'), dir], repo);
      const linkBlobs = await timed(['cp', '-al', `${path.join(dataDir, 'blobs')}/.`, dir], repo);
      return { dir, runs: [build, linkPublic, linkBlobs] };
    };

    progress(`deploy into an empty bucket, ${smallReleases.toLocaleString('en')} releases, ours`);
    const oursSmall = await ours(SMALL_OURS_BUCKET, smallStore, smallData);
    progress(`  ${seconds(oursSmall.run.ms)}, ${describeRequests(oursSmall.stats)}`);
    let awsSmall: Measured | undefined;
    let smallTree: Tree | undefined;
    if (aws) {
      smallTree = await tree('small-tree', smallStore, smallData);
      progress(`deploy into an empty bucket, ${smallReleases.toLocaleString('en')} releases, aws s3 sync`);
      awsSmall = await sync(smallTree, SMALL_AWS_BUCKET);
      progress(`  ${seconds(awsSmall.run.ms)}, ${describeRequests(awsSmall.stats)}`);
    }

    progress(`deploy into an empty bucket, ${releases.toLocaleString('en')} releases, ours`);
    const oursInitial = await ours(OURS_BUCKET);
    progress(`  ${seconds(oursInitial.run.ms)}, ${describeRequests(oursInitial.stats)}`);
    let seed: Run | undefined;
    let awsInitial: Measured | undefined;
    let initialTree: Tree | undefined;
    if (aws && FULL_REFERENCE) {
      initialTree = await tree('initial-tree');
      progress(`deploy into an empty bucket, ${releases.toLocaleString('en')} releases, aws s3 sync`);
      awsInitial = await sync(initialTree, AWS_BUCKET);
      progress(`  ${seconds(awsInitial.run.ms)}, ${describeRequests(awsInitial.stats)}`);
    } else if (aws) {
      // Not `aws s3 sync` at this size by default: it takes minutes more than the bench's budget.
      // The copy holds the same keys and sizes, and s3rver answers LastModified from each object
      // file's mtime, which `cp -a` keeps: for `aws s3 sync` it is as if it had uploaded them itself.
      progress(`seeding s3://${AWS_BUCKET}/ with a copy of s3://${OURS_BUCKET}/'s objects in s3rver's store`);
      seed = await timed(['cp', '-a', `${path.join(s3dir, OURS_BUCKET)}/.`, path.join(s3dir, AWS_BUCKET)], repo);
      await rm(path.join(s3dir, AWS_BUCKET, '.mirror'), { recursive: true, force: true });
    }

    const version = `${shape.majors - 1}.${shape.minors - 1}.${shape.patches}`;
    progress(`adding ${version} (release file + 6 blobs)`);
    await writeRelease(store, version, releases, { blobsDir: blobs });

    progress('deploy after adding one release, ours');
    const oursAdded = await ours(OURS_BUCKET);
    progress(`  ${seconds(oursAdded.run.ms)}, ${describeRequests(oursAdded.stats)}`);
    let awsAdded: Measured | undefined;
    let addedTree: Tree | undefined;
    if (aws) {
      progress('rebuilding the tree to sync, as a CI job on a fresh checkout would');
      addedTree = await tree('tree');
      progress('sync after adding one release, aws s3 sync');
      awsAdded = await sync(addedTree, AWS_BUCKET);
      progress(`  ${seconds(awsAdded.run.ms)}, ${describeRequests(awsAdded.stats)}`);
    }

    progress('deploy with nothing changed, ours');
    const oursSame = await ours(OURS_BUCKET);
    let awsSame: Measured | undefined;
    if (aws) {
      progress('sync of the same tree again, aws s3 sync');
      awsSame = await sync(addedTree!, AWS_BUCKET);
    }

    const objectsOf = (m: Measured) => m.stats.putKeys.filter((key) => !key.endsWith(`/${STATE_KEY}`)).length;
    const shapeOf = (m: Measured, n: number) => {
      const objects = objectsOf(m);
      return `${n.toLocaleString('en')} releases, ${objects.toLocaleString('en')} objects (${(n * 6).toLocaleString('en')} artifacts of ${BLOB_SIZE} B + ${(objects - n * 6).toLocaleString('en')} site files)`;
    };
    const requestRatio = awsAdded ? total(awsAdded.stats) / total(oursAdded.stats) : undefined;
    const wallRatio = awsAdded ? awsAdded.run.ms / oursAdded.run.ms : undefined;
    const prepared = (t: Tree | undefined) => (t ? `; before it, \`mirror build\` + \`cp -al\` of the tree took ${seconds(t.runs.reduce((sum, run) => sum + run.ms, 0))}, not counted` : '');
    const treeCommand = (t: Tree | undefined, run: Measured | undefined) => (t && run ? [...t.runs.map((r) => r.command), run.run.command].join(' && ') : undefined);
    const full = (m: Measured) => `${seconds(m.run.ms)}; ${describeRequests(m.stats)}; ${describeBytes(m.stats)}`;

    const rows: Row[] = [
      {
        measured: `Deploy into an empty bucket: ${shapeOf(oursSmall, smallReleases)}; wall, requests, body bytes (once)`,
        ours: full(oursSmall),
        reference: awsSmall ? `aws s3 sync: ${full(awsSmall)}${prepared(smallTree)}` : NOT_RUN,
        target: '—',
        ourCommand: oursSmall.run.command,
        ...(awsSmall ? { referenceCommand: treeCommand(smallTree, awsSmall) } : {}),
      },
      {
        measured: `Deploy into an empty bucket: ${shapeOf(oursInitial, releases)} (once; sets up the rows below)`,
        ours: full(oursInitial),
        reference: awsInitial
          ? `aws s3 sync: ${full(awsInitial)}${prepared(initialTree)}`
          : seed
            ? `aws s3 sync not run at this size (minutes over the bench's budget; BENCH_DEPLOY_AWS_FULL=1 runs it; see the row above): its bucket was seeded with a copy of ours' objects in s3rver's store, ${seconds(seed.ms)}`
            : NOT_RUN,
        target: '—',
        ourCommand: oursInitial.run.command,
        ...(awsInitial ? { referenceCommand: treeCommand(initialTree, awsInitial) } : seed ? { referenceCommand: `${seed.command} && rm -r ${path.join(s3dir, AWS_BUCKET, '.mirror')}` } : {}),
      },
      {
        measured: `Deploy after adding one release (${version}: release file + 6 blobs) to ${releases.toLocaleString('en')}: requests`,
        ours: `${describeRequests(oursAdded.stats)}${requestRatio ? `; ours/aws ${(1 / requestRatio).toFixed(4)} (${requestRatio.toFixed(1)}× fewer); PUTs ours/aws ${oursAdded.stats.requests.PUT ?? 0}/${awsAdded!.stats.requests.PUT ?? 0}` : ''}`,
        reference: awsAdded ? `aws s3 sync of a fresh build + blobs: ${describeRequests(awsAdded.stats)}` : NOT_RUN,
        target: `≥ ${REQUESTS_FACTOR_TARGET}× fewer than aws s3 sync`,
        ...(requestRatio ? { met: requestRatio >= REQUESTS_FACTOR_TARGET } : {}),
        ourCommand: oursAdded.run.command,
        ...(awsAdded ? { referenceCommand: treeCommand(addedTree, awsAdded) } : {}),
      },
      {
        measured: 'Deploy after adding one release: body bytes sent and received',
        ours: `${describeBytes(oursAdded.stats)}${awsAdded ? `; PUT bodies ours/aws ${ratio(put(oursAdded.stats), put(awsAdded.stats))}` : ''}`,
        reference: awsAdded ? `aws s3 sync: ${describeBytes(awsAdded.stats)}` : NOT_RUN,
        target: '—',
        ourCommand: oursAdded.run.command,
        ...(awsAdded ? { referenceCommand: awsAdded.run.command } : {}),
      },
      {
        measured: 'Deploy after adding one release: wall time (once; ours includes loading and rendering the store, the reference is the sync alone)',
        ours: `${seconds(oursAdded.run.ms)}${wallRatio ? `; ours/aws ${(1 / wallRatio).toFixed(3)} (${wallRatio.toFixed(1)}× less)` : ''}`,
        reference: awsAdded ? `aws s3 sync: ${seconds(awsAdded.run.ms)}${prepared(addedTree)}` : NOT_RUN,
        target: `≥ ${WALL_FACTOR_TARGET}× less than aws s3 sync`,
        ...(wallRatio ? { met: wallRatio >= WALL_FACTOR_TARGET } : {}),
        ourCommand: oursAdded.run.command,
        ...(awsAdded ? { referenceCommand: awsAdded.run.command } : {}),
      },
      {
        measured: 'Deploy again, nothing changed (context; once)',
        ours: full(oursSame),
        reference: awsSame ? `aws s3 sync of the same tree again: ${full(awsSame)}` : NOT_RUN,
        target: '—',
        ourCommand: oursSame.run.command,
        ...(awsSame ? { referenceCommand: awsSame.run.command } : {}),
      },
    ];

    const labelled: [string, Measured | undefined][] = [
      [`ours, ${smallReleases.toLocaleString('en')} releases, empty bucket`, oursSmall],
      [`aws, ${smallReleases.toLocaleString('en')} releases, empty bucket`, awsSmall],
      [`ours, ${releases.toLocaleString('en')} releases, empty bucket`, oursInitial],
      [`aws, ${releases.toLocaleString('en')} releases, empty bucket`, awsInitial],
      ['ours, one release added', oursAdded],
      ['aws, one release added', awsAdded],
      ['ours, nothing changed', oursSame],
      ['aws, nothing changed', awsSame],
    ];
    const notes = [
      aws ? `Reference: ${aws.program}, ${aws.version}.` : `Reference not run: no \`aws\` (tried ${AWS_CANDIDATES.join(', ')}); \`apt-get install -y awscli\` is needed.`,
      `S3: s3rver 3.7 (file-system store in ${s3dir}) behind a counting HTTP proxy, both in one child process (Node with --openssl-legacy-provider: s3rver's list continuation tokens use DES). Bytes are HTTP bodies; headers are not counted.`,
      ...(aws
        ? [`The tree \`aws s3 sync\` gets: a fresh \`mirror build --out\` (new folder, so every site file has a new mtime, as on a fresh checkout) with its public/ and the blob store hard-linked in (\`cp -al\`; the blobs keep their mtimes, the most favourable case for aws).`]
        : []),
      `Ours, after adding one release, uploaded: ${describePuts(oursAdded.stats)}.`,
      ...(awsAdded ? [`aws s3 sync, after adding one release, uploaded: ${describePuts(awsAdded.stats)}. Its rule for a local file: upload when the key is missing, the size differs, or the file's mtime is newer than the object's LastModified. The fresh build gave every site file a new mtime, so every one went up again, changed or not; the hard-linked blobs kept their old mtimes, so only the 6 new ones went up.`] : []),
      `Ours, nothing changed, uploaded: ${describePuts(oursSame.stats)}.`,
      ...(awsInitial ? [`aws s3 sync, ${releases.toLocaleString('en')} releases into an empty bucket, uploaded: ${describePuts(awsInitial.stats)}.`] : []),
      ...labelled.filter(([, m]) => m !== undefined).map(([label, m]) => `Time at the S3 proxy, ${label}: ${describeTimings(m!.stats)}.`),
      `CLI step timings (ours): empty bucket ${stepsOf(oursInitial.run)}; after adding one release ${stepsOf(oursAdded.run)}; nothing changed ${stepsOf(oursSame.run)}.`,
      ...labelled
        .filter(([, m]) => m !== undefined && m.stats.errors > 0)
        .map(([label, m]) => `Error answers (status ≥ 400), ${label}: ${m!.stats.errors}, e.g. ${m!.stats.errorSamples.join('; ')}.`),
      ...labelled
        .filter(([, m]) => m !== undefined && m.stats.otherSamples.length > 0)
        .map(([label, m]) => `Requests other than GET/HEAD/PUT, ${label}: ${m!.stats.otherSamples.join('; ')}.`),
    ];
    return { rows, notes };
  } finally {
    await s3.close();
    await rm(s3dir, { recursive: true, force: true });
  }
}

interface Tree {
  dir: string;
  /** The build and the two links that made it. */
  runs: Run[];
}

async function measure(s3: BenchS3, run: () => Promise<Run>): Promise<Measured> {
  await s3.stats(true);
  const measured = await run();
  return { run: measured, stats: await s3.stats(true) };
}

async function findAwsCli(): Promise<{ program: string; version: string } | undefined> {
  for (const program of AWS_CANDIDATES) {
    try {
      const { stdout, stderr } = await execFileAsync(program, ['--version']);
      return { program, version: (stdout || stderr).trim() };
    } catch {
      // Not there: try the next one.
    }
  }
  return undefined;
}

function total(stats: ProxyStats): number {
  return Object.values(stats.requests).reduce((sum, n) => sum + n, 0);
}

function put(stats: ProxyStats): number {
  return stats.sentBytes.PUT ?? 0;
}

/** `19,013 requests (12,010 PUT, 73 GET)` */
function describeRequests(stats: ProxyStats): string {
  const methods = Object.entries(stats.requests).sort(([, a], [, b]) => b - a);
  return `${total(stats).toLocaleString('en')} requests (${methods.map(([method, n]) => `${n.toLocaleString('en')} ${method}`).join(', ') || 'none'})`;
}

function describeBytes(stats: ProxyStats): string {
  const sent = Object.values(stats.sentBytes).reduce((sum, n) => sum + n, 0);
  return `sent ${size(sent)} (PUT bodies ${size(put(stats))}), received ${size(stats.receivedBytes)}`;
}

/** How many PUTs, split into artifacts, site files and the deployer's own state object. */
function describePuts(stats: ProxyStats): string {
  const keys = stats.putKeys.map((key) => key.slice(key.indexOf('/') + 1));
  const state = keys.filter((key) => key === STATE_KEY).length;
  const artifacts = keys.filter((key) => key.startsWith('releases/')).length;
  const site = keys.length - state - artifacts;
  return `${keys.length.toLocaleString('en')} objects: ${artifacts.toLocaleString('en')} artifacts, ${site.toLocaleString('en')} site files${state ? `, the state object ${STATE_KEY}` : ''}`;
}

/** `LIST 72 × = 9.1 s, state GET 1 × = 1.2 s, …`, slowest first. */
function describeTimings(stats: ProxyStats): string {
  return Object.entries(stats.timings)
    .sort(([, a], [, b]) => b.ms - a.ms)
    .map(([kind, { count, ms }]) => `${kind} ${count.toLocaleString('en')}× ${seconds(ms)}`)
    .join(', ');
}

function size(bytes: number): string {
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}

function ratio(part: number, whole: number): string {
  if (whole === 0) return 'n/a';
  return `${(part / whole).toFixed(3)}`;
}

/** The CLI's `[load … ms, templates … ms, …]` suffix. */
function stepsOf(run: Run): string {
  return /\[([^\]]+)\]/.exec(run.stdout)?.[1] ?? '(no timings in the output)';
}
