// `npm run bench`: times a full build of 10,000 releases, rebuilds after adding one release,
// deploys of the same store to S3 (s3rver) against `aws s3 sync`, the CloudFront KeyValueStore and
// function the same store needs, file hashing against sha256sum, and uploads to the sidecar
// (`mirror serve`: a 200 MiB raw and a 50 MiB JSON upload, the server's peak RSS and the throughput
// against cp; upload-to-listed latency on SQLite and PostgreSQL), and rebuilds (upload to listed on
// a store of 10,000 releases, and the worst latency of a small GET every 10 ms while the sidecar
// rebuilds), and the agent registry (search
// over 10,000 agents on SQLite and, with TEST_DATABASE_URL or BENCH_DATABASE_URL set, PostgreSQL,
// in-process and over HTTP; a 10 MiB publish's peak RSS and wall time), and the deployment-agent
// fleet (heartbeats per second over mutual TLS with 1,000 registered agents against a bare Node
// HTTPS handler, and task assignment latency to the task stream, on SQLite and, with
// TEST_DATABASE_URL or BENCH_DATABASE_URL set, PostgreSQL), and signing (a full build of the same
// 10,000 releases signed against unsigned, wall time and peak RSS; the signatures a rebuild after
// adding one release makes; one signature by node:crypto against openpgp.sign), and the
// package-manager outputs (full builds of the same store with product.json `packages.outputs` off
// and on, zips only and with fake .deb and .rpm artifacts for apt and rpm; the files a rebuild after
// adding one release writes with them on), and serving (the sample built once and served by `mirror
// serve`, by nginx with the generated config and 1 worker, and by a bare Koa handler: requests per
// second and p99 for a small JSON index and a 302 redirect under autocannon, 50 connections, 10 s);
// and the GitHub Action (its bundle from a fresh copy of the repository adding a release, against
// `node -e ''`; its size; the composite action's `npm ci --omit=dev` it replaced, skipped with
// BENCH_ACTION_NPM_CI=0); and scale (full builds and rebuilds of 1,000 and 10,000 releases, one
// product and 50, wall time and peak RSS against cp -r of the output, the KeyValueStore each needs,
// the cost per release; at 10,000 the rebuild rows' sidecar measures for both shapes;
// BENCH_SCALE_SIZES=1000,10000,100000 picks the sizes, BENCH_SCALE_PRODUCTS=1 or 50 one shape);
// prints a Markdown table.
// Progress goes to stderr.
// Work files go under $TMPDIR (default /tmp): the build rows measure that file system as much as our code.
// BENCH_ROWS=build,deploy,edge,hashing,upload,rebuild,registry,fleet,signing,packages,serving,action,scale picks row groups (default: all). BENCH_DEPLOY_MAJORS=N shrinks the
// deploy store to N × 1,000 releases (default 10), for trying the deploy rows out quickly;
// BENCH_DEPLOY_AWS_FULL=1 also times `aws s3 sync` of the full store into an empty bucket (minutes more).
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, release, tmpdir, type } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchAction } from './action.ts';
import { benchBuilds, type BuildBench } from './build.ts';
import { benchDeploys, type DeployBench } from './deploy.ts';
import { benchEdge } from './edge.ts';
import { benchFleet } from './fleet.ts';
import { benchHashing } from './hashing.ts';
import { benchPackages, type PackagesBench } from './packages.ts';
import { benchRebuild } from './rebuild.ts';
import { benchScale, type ScaleBench } from './scale.ts';
import { benchRegistry, type RegistryBench } from './registry.ts';
import { benchServing } from './serving.ts';
import { benchSigning, type SigningBench } from './signing.ts';
import { DEFAULT_SHAPE } from './synthetic-store.ts';
import { markdownTable, type Row } from './table.ts';
import { benchUploads } from './upload.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const work = await mkdtemp(path.join(tmpdir(), 'mirror-bench-'));
const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

const groups = new Set((process.env.BENCH_ROWS ?? 'build,deploy,edge,hashing,upload,rebuild,registry,fleet,signing,packages,serving,action,scale').split(',').map((group) => group.trim()));
const majors = Number(process.env.BENCH_DEPLOY_MAJORS ?? DEFAULT_SHAPE.majors);

try {
  const started = performance.now();
  // Servers run the compiled CLI, as installed: compile the sources as they are now.
  execFileSync(process.execPath, ['scripts/build.js'], { cwd: repo, stdio: 'ignore' });
  let builds: BuildBench | undefined;
  let deploys: DeployBench | undefined;
  let edge: Row[] = [];
  let hashing: Row[] = [];
  let uploads: Row[] = [];
  let rebuilds: Row[] = [];
  let registry: RegistryBench | undefined;
  let fleet: Row[] = [];
  let signing: SigningBench | undefined;
  let packages: PackagesBench | undefined;
  let serving: Row[] = [];
  let action: Row[] = [];
  let scale: ScaleBench | undefined;
  if (groups.has('build')) builds = await benchBuilds(work, repo, progress);
  if (groups.has('deploy')) deploys = await benchDeploys(work, repo, progress, { ...DEFAULT_SHAPE, majors });
  if (groups.has('edge')) edge = await benchEdge(work, progress);
  if (groups.has('hashing')) hashing = await benchHashing(work, repo, progress);
  if (groups.has('upload')) uploads = await benchUploads(work, repo, progress);
  if (groups.has('rebuild')) rebuilds = await benchRebuild(work, repo, progress);
  if (groups.has('registry')) registry = await benchRegistry(work, repo, progress);
  if (groups.has('fleet')) fleet = await benchFleet(work, repo, progress);
  if (groups.has('signing')) signing = await benchSigning(work, repo, progress);
  if (groups.has('packages')) packages = await benchPackages(work, repo, progress);
  if (groups.has('serving')) serving = await benchServing(work, repo, progress);
  if (groups.has('action')) action = await benchAction(work, repo, progress);
  if (groups.has('scale')) scale = await benchScale(work, repo, progress);
  console.log(`Machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${type()} ${release()}`);
  console.log(`Code: ${revision()}.`);
  console.log(`Commands ran from ${repo} in ${work} (removed afterwards); the whole bench took ${((performance.now() - started) / 60_000).toFixed(1)} min.\n`);
  console.log(markdownTable([...(builds?.rows ?? []), ...(deploys?.rows ?? []), ...edge, ...hashing, ...uploads, ...rebuilds, ...(registry?.rows ?? []), ...fleet, ...(signing?.rows ?? []), ...(packages?.rows ?? []), ...serving, ...action, ...(scale?.rows ?? [])]));
  if (builds) {
    console.log('\nBuild steps, from the CLI output:');
    for (const line of builds.steps) console.log(`- ${line}`);
  }
  if (deploys) {
    console.log('\nDeploys:');
    for (const line of deploys.notes) console.log(`- ${line}`);
  }
  if (registry) {
    console.log('\nRegistry:');
    for (const line of registry.notes) console.log(`- ${line}`);
  }
  if (signing) {
    console.log('\nSigning, from the CLI output:');
    for (const line of signing.notes) console.log(`- ${line}`);
  }
  if (packages) {
    console.log('\nPackage outputs, from the CLI output:');
    for (const line of packages.notes) console.log(`- ${line}`);
  }
  if (scale) {
    console.log('\nScale, from the CLI output (step timings) and the rows (growth from one size to the next):');
    for (const line of scale.notes) console.log(`- ${line}`);
  }
} finally {
  await rm(work, { recursive: true, force: true });
}

/** The commit measured, and whether files outside scripts/bench/ differed from it (read-only git). */
function revision(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repo, encoding: 'utf8' }).trim();
    const changed = execFileSync('git', ['--no-optional-locks', 'status', '--porcelain', '--', '.', ':!scripts/bench'], { cwd: repo, encoding: 'utf8' }).trim();
    return `commit ${commit}${changed ? `, with uncommitted changes outside scripts/bench/ (${changed.split('\n').length} paths)` : ''}`;
  } catch {
    return 'not a git checkout';
  }
}
