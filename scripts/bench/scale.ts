// Scale rows: how `mirror build` grows with the store. For stores of N releases (1,000 and 10,000;
// BENCH_SCALE_SIZES=1000,10000,100000 for more) in two shapes, one product and 50 products sharing
// the store (BENCH_SCALE_PRODUCTS=1 or 50 picks one), each a child process with a data directory
// of its own: a full build (wall time, and peak RSS: GNU time's %M, the kernel's ru_maxrss) against
// `cp -r` of the folder it wrote, in the same run; rebuilds after adding one release; the
// CloudFront KeyValueStore the route table needs, by the generator's own kvsEntries and
// checkKvsLimits; and each per release, against the next smaller store, so a cost that grows faster
// than the store shows as a per-release cost that grows. At 10,000 releases, the sidecar's upload →
// listed time and the worst GET latency meanwhile (rebuild.ts) for both shapes. And nginx serving
// each full build with the generated config, its route table preloaded whole and read a shard at a
// time: how soon it answers, what it holds (PSS), and a request's latency.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, get } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { KvsLimitError, KVS_LIMITS, checkKvsLimits, kvsBytes, kvsEntries } from '../../generator/publish/cloudfront/kvs-entries.ts';
import { ROUTES_FILE, currentBuild, readRoutes } from '../../generator/publish/local-dir.ts';
import type { RouteTable } from '../../generator/render/route-table.ts';
import { filesOf, stepsOf, written } from './build.ts';
import { benchRebuild } from './rebuild.ts';
import { bestOf, bestSeconds, seconds, timed, type Best, type Run } from './run.ts';
import { startNginx } from './serving.ts';
import { describeShape, productNames, releaseCount, shapeOf, writeRelease, writeSyntheticStore, type StoreShape } from './synthetic-store.ts';
import type { Row } from './table.ts';

const execFileAsync = promisify(execFile);

const DEFAULT_SIZES = [1_000, 10_000];
const DEFAULT_PRODUCTS = [1, 50];
/** The sidecar rows (a store with blobs, a server, uploads) run at these sizes only: 10,000 against 1,000. */
const SIDECAR_SIZES = new Set([1_000, 10_000]);
/**
 * Rebuilds after the full build, each after adding one release: the first two make a fresh folder
 * linked from the current build (the site keeps three builds), the third brings the oldest build
 * up to date in place, as every later rebuild does: the steady state.
 */
const REBUILDS = 3;
const GNU_TIME = '/usr/bin/time';
/** cp -r takes a second or two and varies more than that between runs on a shared machine: the fastest of a few. */
const COPY_ATTEMPTS = 3;
/** Keeps the sidecar rows' data directories apart from the rebuild and upload rows' servers, and from each other. */
const SERVER_NUMBER = 200;

export interface ScaleBench {
  rows: Row[];
  /** The CLI's step timings of each build, and how each grew from one size to the next. */
  notes: string[];
}

interface Measured extends Run {
  peakBytes: number;
}

interface KvsSize {
  entries: number;
  bytes: number;
  fits: boolean;
  problem?: string;
}

interface Scale {
  /** Where the store, its builds and copies are: removed once every store is measured. */
  folder: string;
  releases: number;
  shape: StoreShape;
  full: Measured;
  copy: Best;
  rebuilds: Measured[];
  outputBytes: number;
  kvs: KvsSize;
  /** nginx serving the full build both ways, or why it did not run. */
  nginx: NginxServing[] | string;
}

interface NginxServing {
  /** How the route table is loaded. */
  how: string;
  /** From nginx's start to its first answer. */
  startMs: number;
  /** The proportional set size of its master and worker. */
  pssBytes: number;
  meanMs: number;
  p99Ms: number;
}

/** Requests of the latency run, one at a time over one kept-alive connection, after as many to warm up. */
const NGINX_REQUESTS = 400;

export async function benchScale(work: string, repo: string, progress: (line: string) => void): Promise<ScaleBench> {
  if (!existsSync(GNU_TIME)) throw new Error(`The scale rows read peak RSS with ${GNU_TIME}: \`apt-get install -y time\``);
  const sizes = listOf(process.env.BENCH_SCALE_SIZES, DEFAULT_SIZES);
  const shapes = listOf(process.env.BENCH_SCALE_PRODUCTS, DEFAULT_PRODUCTS);
  const rows: Row[] = [];
  const notes: string[] = [];
  const sidecar: Row[] = [];
  // Smallest store first: each row's reference is the next smaller store of the same shape.
  const previous = new Map<number, Scale>();
  const folders: string[] = [];
  try {
    for (const releases of sizes) {
      for (const products of shapes) {
        const scale = await measure(work, repo, progress, shapeOf(releases, products));
        folders.push(scale.folder);
        rows.push(...scaleRows(scale, previous.get(products)));
        notes.push(...stepNotes(scale), ...growthNotes(scale, previous.get(products)));
        previous.set(products, scale);
        if (SIDECAR_SIZES.has(releases)) sidecar.push(...(await benchRebuild(work, repo, progress, { shape: scale.shape, label: `scale-${products}-${releases}`, serverNumber: SERVER_NUMBER + products * 1000 + releases / 1000 })));
      }
    }
  } finally {
    // Removed once every store is measured: on a file system without a journal (ext4 can run
    // without), files made within minutes of deleting many take several times longer, as the
    // allocator skips each recently freed inode, and whichever build or copy came next would pay.
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
  }
  return { rows: [...rows, ...sidecar], notes };
}

/** `1000,10000` → [1000, 10000], ascending; `fallback` when unset. */
function listOf(value: string | undefined, fallback: number[]): number[] {
  if (!value?.trim()) return fallback;
  const numbers = value.split(',').map((item) => Number(item.trim()));
  if (numbers.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`Expected positive whole numbers separated by commas, got \`${value}\``);
  return [...new Set(numbers)].sort((a, b) => a - b);
}

/** One store: written, built, copied, measured, rebuilt; its folder is left for benchScale to remove (removed here only if it fails). */
async function measure(work: string, repo: string, progress: (line: string) => void, shape: StoreShape): Promise<Scale> {
  const folder = path.join(work, `scale-${shape.products ?? 1}-${releaseCount(shape)}`);
  const store = path.join(folder, 'releases');
  const site = path.join(folder, 'site');
  const label = `scale: ${releaseCount(shape).toLocaleString('en')} releases, ${describeShape(shape)}`;
  progress(`${label}: writing the store`);
  const releases = await writeSyntheticStore(store, shape);
  // A data directory of its own: no signing key or load cache of another row's is used.
  const build = (): Promise<Measured> => measuredBuild(repo, store, site, path.join(folder, 'data'));
  try {
    progress(`${label}: full build`);
    const full = await build();
    const output = await currentBuild(site);
    if (!output) throw new Error(`\`${full.command}\` left no site at ${site}`);
    progress(`${label}: cp -r of the build folder`);
    // Each copy a folder of its own, none deleted in between (see benchScale).
    const copy = await bestOf(COPY_ATTEMPTS, (attempt) => timed(['cp', '-r', output, path.join(folder, `copy-${attempt}`)], folder));
    const outputBytes = await diskBytes(output);
    progress(`${label}: KeyValueStore of the route table`);
    const table = await readRoutes(output);
    const kvs = kvsSize(kvsEntries(table));
    progress(`${label}: nginx serving the build`);
    const nginx = await measureNginx(folder, site, output, table);
    const rebuilds: Measured[] = [];
    for (let i = 0; i < REBUILDS; i++) {
      const added = newRelease(shape, i);
      progress(`${label}: rebuild ${i + 1}/${REBUILDS} after adding ${added.product} ${added.version}`);
      await writeRelease(store, added.version, releases + i, { product: added.product });
      rebuilds.push(await build());
    }
    return { folder, releases, shape, full, copy, rebuilds, outputBytes, kvs, nginx };
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw error;
  }
}

/** nginx (1 worker) serving the build with the route table preloaded whole, then read a shard at a time; why not, when nginx cannot run here. */
async function measureNginx(folder: string, site: string, build: string, table: RouteTable): Promise<NginxServing[] | string> {
  if (spawnSync('nginx', ['-v']).error) return 'nginx is not installed (apt-get install nginx libnginx-mod-http-js)';
  // Past WHOLE_TABLE_MAX_PATHS a build has no routes.json: written here for the preloaded reference, removed after.
  const wholeTable = path.join(build, ROUTES_FILE);
  const writtenHere = !existsSync(wholeTable);
  if (writtenHere) await writeFile(wholeTable, JSON.stringify(table));
  // Pages, folders and redirects spread over the table (the store has no blobs, so no artifacts).
  const served = Object.keys(table.paths).filter((each) => table.paths[each]!.type !== 'blob');
  const paths = Array.from({ length: NGINX_REQUESTS }, (_, i) => served[Math.floor((i * served.length) / NGINX_REQUESTS)]!);
  const results: NginxServing[] = [];
  for (const [how, preloadRoutesBytes] of [
    ['preloaded whole (routes.json)', Number.POSITIVE_INFINITY],
    ['route table read a shard at a time', 0],
  ] as const) {
    const started = performance.now();
    const nginx = await startNginx(path.join(folder, `nginx-${preloadRoutesBytes}`), site, path.join(folder, 'no-blobs'), { probe: '/', preloadRoutesBytes });
    try {
      const startMs = performance.now() - started;
      const times = await latencies(nginx.url, [...paths, ...paths]);
      const measured = times.slice(paths.length).sort((a, b) => a - b);
      results.push({ how, startMs, pssBytes: await pssOf(nginx.pid), meanMs: measured.reduce((sum, ms) => sum + ms, 0) / measured.length, p99Ms: measured[Math.floor(measured.length * 0.99)]! });
    } finally {
      await nginx.close();
    }
  }
  if (writtenHere) await rm(wholeTable);
  return results;
}

/** Each GET's time to its last byte, one at a time over one kept-alive connection; any answer but 200 or 302 fails the run. */
async function latencies(url: string, paths: string[]): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const times: number[] = [];
    for (const wanted of paths) {
      const started = performance.now();
      const status = await new Promise<number>((resolve, reject) => {
        get(`${url}${wanted}`, { agent }, (answer) => answer.resume().on('end', () => resolve(answer.statusCode!))).on('error', reject);
      });
      if (status !== 200 && status !== 302) throw new Error(`nginx answered GET ${wanted} with ${status}`);
      times.push(performance.now() - started);
    }
    return times;
  } finally {
    agent.destroy();
  }
}

/** The proportional set size of a process and its children (nginx's master and workers), from /proc. */
async function pssOf(pid: number): Promise<number> {
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean).map(Number);
  let bytes = 0;
  for (const each of [pid, ...children]) bytes += Number(/^Pss:\s+(\d+) kB$/m.exec(await readFile(`/proc/${each}/smaps_rollup`, 'utf8'))![1]) * 1024;
  return bytes;
}

/** The next patch of the first product's newest minor, one more each time: the newest release, as a release job adds it. */
function newRelease(shape: StoreShape, i: number): { product: string; version: string } {
  return { product: productNames(shape)[0]!, version: `${shape.majors - 1}.${shape.minors - 1}.${shape.patches + i}` };
}

/** `mirror build` under GNU time: wall time (run.ts) and the build process's peak RSS. */
async function measuredBuild(repo: string, store: string, site: string, data: string): Promise<Measured> {
  const rssFile = path.join(path.dirname(site), 'peak-rss.txt');
  const run = await timed([GNU_TIME, '-f', '%M', '-o', rssFile, process.execPath, 'dist/mirror.js', 'build', '--releases', store, '--out', site], repo, { MIRROR_DATA_DIR: data });
  const peakKiB = Number((await readFile(rssFile, 'utf8')).trim().split('\n').at(-1));
  if (!Number.isFinite(peakKiB) || peakKiB <= 0) throw new Error(`${GNU_TIME} wrote no peak RSS for \`${run.command}\``);
  // Shown as typed: `node`, not this Node binary's path.
  return { ...run, command: run.command.replace(process.execPath, 'node'), peakBytes: peakKiB * 1024 };
}

/** `du -sb`: the bytes of the files under `folder`, as written (apparent sizes). */
async function diskBytes(folder: string): Promise<number> {
  const { stdout } = await execFileAsync('du', ['-sb', folder]);
  return Number(stdout.split('\t')[0]);
}

/** The store's size, and whether checkKvsLimits lets a deploy write it. */
function kvsSize(entries: Map<string, string>): KvsSize {
  try {
    checkKvsLimits(entries);
    return { entries: entries.size, bytes: kvsBytes(entries), fits: true };
  } catch (error) {
    if (!(error instanceof KvsLimitError)) throw error;
    return { entries: entries.size, bytes: kvsBytes(entries), fits: false, problem: error.message };
  }
}

function scaleRows(scale: Scale, smaller: Scale | undefined): Row[] {
  const { releases, full, copy, kvs } = scale;
  const store = `${releases.toLocaleString('en')} releases, ${describeShape(scale.shape)}`;
  const [first, , steady] = scale.rebuilds as [Measured, Measured, Measured];
  const limit = `≤ ${megabytes(KVS_LIMITS.storeBytes)} (CloudFront's ${KVS_LIMITS.storeBytes.toLocaleString('en')} bytes), keys ≤ ${KVS_LIMITS.keyBytes} B, values ≤ ${KVS_LIMITS.valueBytes} B`;
  const kvsCommand = `readRoutes(<build folder>) → kvsEntries → checkKvsLimits (generator/publish/cloudfront/kvs-entries.ts, in the bench) after: ${full.command}`;
  return [
    {
      measured: `Scale, ${store}: full build, fresh --out, ${filesOf(full)} site files (wall, once; peak RSS of the build process, GNU time %M; MB = 10^6 bytes)`,
      ours: `${seconds(full.ms)}, ${megabytes(full.peakBytes)} peak RSS`,
      reference: `${bestSeconds(copy)}, cp -r of the build folder (${megabytes(scale.outputBytes)}), best of ${COPY_ATTEMPTS}; build/cp ${(full.ms / copy.ms).toFixed(1)}×`,
      target: '—',
      ourCommand: full.command,
      referenceCommand: copy.command,
    },
    {
      measured: `Scale, ${store}: rebuild after adding one release, the steady state (the ${ordinal(REBUILDS)} of ${REBUILDS}, one release added before each: it brings the oldest build up to date in place), ${written(steady)} files written (wall, peak RSS)`,
      ours: `${seconds(steady.ms)}, ${megabytes(steady.peakBytes)} peak RSS`,
      reference: `the full build above: ${seconds(full.ms)}, ${megabytes(full.peakBytes)}; the 1st rebuild (a fresh folder linked from the full build): ${seconds(first.ms)}, ${megabytes(first.peakBytes)}`,
      target: '—',
      ourCommand: steady.command,
      referenceCommand: full.command,
    },
    {
      measured: `Scale, ${store}: CloudFront KeyValueStore of the build's route table: entries, bytes (keys and values, UTF-8)`,
      ours: `${kvs.entries.toLocaleString('en')} entries, ${megabytes(kvs.bytes)}; ${kvs.fits ? 'fits' : `does not fit: ${kvs.problem}`}`,
      reference: limit,
      target: limit,
      met: kvs.fits,
      ourCommand: kvsCommand,
    },
    nginxRow(scale, store),
    {
      measured: `Scale, ${store}: cost per release (full build wall time, its output by du -sb, KeyValueStore bytes; each ÷ ${releases.toLocaleString('en')})`,
      ours: perRelease(scale),
      reference: smaller ? `${smaller.releases.toLocaleString('en')} releases, same shape: ${perRelease(smaller)}` : '— (the smallest store)',
      target: '—',
      ourCommand: `${full.command}; du -sb <build folder>; ${kvsCommand.split(' after: ')[0]}`,
      referenceCommand: smaller ? `the same at ${smaller.releases.toLocaleString('en')} releases (rows above)` : undefined,
    },
  ];
}

function nginxRow(scale: Scale, store: string): Row {
  const measured = `Scale, ${store}: nginx serving the full build (mirror nginx-conf's config, 1 worker): its first answer after start, PSS of master and worker, GET latency one at a time (${NGINX_REQUESTS} pages, folders and redirects of the table)`;
  const command = 'nginx -p <prefix> -c <mirror nginx-conf output> (the route table read a shard at a time: the default past 8 MiB of routes.json, or without one); the GETs over one kept-alive connection (scripts/bench/scale.ts)';
  if (typeof scale.nginx === 'string') return { measured, ours: `not run: ${scale.nginx}`, reference: '—', target: '—', ourCommand: command };
  const [whole, sharded] = scale.nginx as [NginxServing, NginxServing];
  const shown = (run: NginxServing) => `${run.how}: started in ${seconds(run.startMs)}, ${megabytes(run.pssBytes)} PSS, GET mean ${run.meanMs.toFixed(2)} ms, p99 ${run.p99Ms.toFixed(2)} ms`;
  return { measured, ours: shown(sharded), reference: shown(whole), target: '—', ourCommand: command, referenceCommand: 'the same config with the whole routes.json preloaded (js_preload_object), as up to 8 MiB; past 32,768 paths a build writes none, and the bench writes it from the shards' };
}

function perRelease(scale: Scale): string {
  const { releases, full, outputBytes, kvs } = scale;
  const kvsPart = `${(kvs.bytes / releases).toFixed(0)} B KVS`;
  return `${(full.ms / releases).toFixed(2)} ms/release, ${(outputBytes / 1e3 / releases).toFixed(1)} KB/release output, ${kvsPart}/release`;
}

/** The CLI's own step timings of each build of a store. */
function stepNotes(scale: Scale): string[] {
  const store = `${scale.releases.toLocaleString('en')} releases, ${describeShape(scale.shape)}`;
  return [`${store}, full build: ${stepsOf(scale.full)}`, ...scale.rebuilds.map((run, i) => `${store}, rebuild ${i + 1}/${REBUILDS} after adding one release: ${stepsOf(run)}`)];
}

/**
 * How much each cost grew from the next smaller store of the same shape, against how much the store
 * grew: a factor well above the store's is a cost that grows faster than the store.
 */
function growthNotes(scale: Scale, smaller: Scale | undefined): string[] {
  if (!smaller) return [];
  const factor = (after: number, before: number) => `${(after / before).toFixed(1)}×`;
  const steady = (s: Scale) => s.rebuilds[REBUILDS - 1]!;
  const measures: [string, number, number][] = [
    ['full build wall', scale.full.ms, smaller.full.ms],
    ['full build peak RSS', scale.full.peakBytes, smaller.full.peakBytes],
    ['output bytes', scale.outputBytes, smaller.outputBytes],
    ['cp -r wall', scale.copy.ms, smaller.copy.ms],
    ['steady rebuild wall', steady(scale).ms, steady(smaller).ms],
    ['steady rebuild peak RSS', steady(scale).peakBytes, steady(smaller).peakBytes],
    ['KVS entries', scale.kvs.entries, smaller.kvs.entries],
  ];
  measures.push(['KVS bytes', scale.kvs.bytes, smaller.kvs.bytes]);
  const steps = (run: Run) => new Map([...stepsOf(run).matchAll(/(\w[\w ]*?) (\d+) ms/g)].map((found) => [found[1]!, Number(found[2])]));
  const before = steps(smaller.full);
  for (const [step, ms] of steps(scale.full)) {
    const was = before.get(step);
    if (was !== undefined && was >= 10) measures.push([`full build step ${step}`, ms, was]);
  }
  const stepsBefore = steps(steady(smaller));
  for (const [step, ms] of steps(steady(scale))) {
    const was = stepsBefore.get(step);
    if (was !== undefined && was >= 10) measures.push([`steady rebuild step ${step}`, ms, was]);
  }
  return [`growth, ${describeShape(scale.shape)}, ${smaller.releases.toLocaleString('en')} → ${scale.releases.toLocaleString('en')} releases (store ${factor(scale.releases, smaller.releases)}): ${measures.map(([name, after, was]) => `${name} ${factor(after, was)}`).join(', ')}`];
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 10e6 ? 2 : 0)} MB`;
}

function ordinal(n: number): string {
  return n === 1 ? '1st' : n === 2 ? '2nd' : n === 3 ? '3rd' : `${n}th`;
}
