// Build rows: a full build of a synthetic store of 10,000 releases, then rebuilds of the same
// site after adding one release at a time. Each build is `mirror build` in a child process.
import { readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { loadCacheFile } from '../../generator/load/cache.ts';
import { bestOf, bestSeconds, fastest, seconds, timed, type Run } from './run.ts';
import { DEFAULT_SHAPE, writeRelease, writeSyntheticStore } from './synthetic-store.ts';
import type { Row } from './table.ts';

const ATTEMPTS = 3;
const FULL_BUILD_TARGET_MS = 10_000;
const WRITTEN_TARGET = 50;

export interface BuildBench {
  rows: Row[];
  /** The CLI's own per-step timings of the runs reported. */
  steps: string[];
}

export async function benchBuilds(work: string, repo: string, progress: (line: string) => void): Promise<BuildBench> {
  const store = path.join(work, 'store');
  progress('writing the synthetic store');
  const releases = await writeSyntheticStore(store);
  // A data directory of its own: no signing key of the checkout's (`npm start` makes one) signs these builds.
  const build = (out: string): Promise<Run> => timed(['node', 'dist/mirror.js', 'build', '--releases', store, '--out', out], repo, { MIRROR_DATA_DIR: path.join(work, 'build-data') });

  // A fresh --out each time, so no file can be linked from an earlier build.
  const siteFor = (attempt: number) => path.join(work, `site-${attempt}`);
  const full = await bestOf(ATTEMPTS, async (attempt) => {
    progress(`full build ${attempt}/${ATTEMPTS}`);
    if (attempt > 1) await removeSite(siteFor(attempt - 1));
    return build(siteFor(attempt));
  });
  const site = siteFor(ATTEMPTS);
  const copy = await bestOf(ATTEMPTS, async (attempt) => copyBuild(['cp', '-r'], await currentBuild(site), path.join(work, `copy-${attempt}`)));

  // A live site keeps two builds, so every later build also prunes one: this rebuild gets us there.
  progress('rebuild, nothing changed');
  const unchanged = await build(site);

  // The next patch of the newest minor: the newest release, as a release job would add it.
  const versions = Array.from({ length: ATTEMPTS }, (_, i) => `${DEFAULT_SHAPE.majors - 1}.${DEFAULT_SHAPE.minors - 1}.${DEFAULT_SHAPE.patches + i}`);
  const added: Run[] = [];
  for (const [i, version] of versions.entries()) {
    progress(`rebuild after adding ${version}`);
    await writeRelease(store, version, releases + i);
    added.push(await build(site));
  }
  const bestAdded = fastest(added);
  // One more, without the load cache (removed first): the load every rebuild did before the cache.
  const uncachedVersion = `${DEFAULT_SHAPE.majors - 1}.${DEFAULT_SHAPE.minors - 1}.${DEFAULT_SHAPE.patches + ATTEMPTS}`;
  progress(`rebuild after adding ${uncachedVersion}, load cache removed`);
  await writeRelease(store, uncachedVersion, releases + ATTEMPTS);
  await rm(loadCacheFile(site), { force: true });
  const uncached = await build(site);
  const writtenCounts = added.map(written);
  const link = await bestOf(ATTEMPTS, async (attempt) => copyBuild(['cp', '-al'], await currentBuild(site), path.join(work, `link-${attempt}`)));

  const rows: Row[] = [
    {
      measured: `Full build: ${releases.toLocaleString('en')} releases × 6 artifacts, ${filesOf(full)} site files, fresh --out (wall, best of ${ATTEMPTS}, no warm-up)`,
      ours: bestSeconds(full),
      reference: `${bestSeconds(copy)}, cp -r of the built folder: writing the same files, no rendering`,
      target: '< 10 s',
      met: full.ms < FULL_BUILD_TARGET_MS,
      ourCommand: full.command,
      referenceCommand: copy.command,
    },
    {
      measured: 'Rebuild, nothing changed (wall, once; context for the rows below)',
      ours: `${seconds(unchanged.ms)}, ${written(unchanged)} files written`,
      reference: `${bestSeconds(link)}, cp -al of the built folder: linking every file`,
      target: '—',
      ourCommand: unchanged.command,
      referenceCommand: link.command,
    },
    {
      measured: `Rebuild after adding one release: site files written, besides the build's own site.json and route table (${versions.join(', ')} added one by one)`,
      ours: writtenCounts.join(', '),
      reference: '—',
      target: `< ${WRITTEN_TARGET}`,
      met: Math.max(...writtenCounts) < WRITTEN_TARGET,
      ourCommand: bestAdded.command,
    },
    {
      measured: `Rebuild after adding one release: wall time (best of ${ATTEMPTS})`,
      ours: bestSeconds(bestAdded),
      reference: `${seconds(link.ms)}, cp -al as above`,
      target: '—',
      ourCommand: bestAdded.command,
      referenceCommand: link.command,
    },
    {
      measured: `Rebuild after adding one release: the load step (CLI timing, best of ${ATTEMPTS}) with the load cache, against the same rebuild without it (${uncachedVersion}, cache removed first)`,
      ours: `${Math.min(...added.map(loadMs))} ms, ${readOf(bestAdded)}`,
      reference: `${loadMs(uncached)} ms, ${readOf(uncached)}`,
      target: '—',
      ourCommand: bestAdded.command,
      referenceCommand: `rm ${path.basename(loadCacheFile(site))}; ${uncached.command}`,
    },
  ];
  const steps = [
    `full build: ${stepsOf(full)}`,
    `rebuild, nothing changed: ${stepsOf(unchanged)}`,
    ...added.map((run, i) => `rebuild after adding ${versions[i]}: ${stepsOf(run)}`),
    `rebuild after adding ${uncachedVersion}, load cache removed: ${stepsOf(uncached)}`,
  ];
  return { rows, steps };
}

async function currentBuild(site: string): Promise<string> {
  return path.resolve(path.dirname(site), await readlink(site));
}

async function copyBuild(cp: string[], build: string, destination: string): Promise<Run> {
  await rm(destination, { recursive: true, force: true });
  const run = await timed([...cp, build, destination], path.dirname(build));
  await rm(destination, { recursive: true, force: true });
  return run;
}

async function removeSite(site: string): Promise<void> {
  await rm(site, { force: true });
  await rm(`${site}.builds`, { recursive: true, force: true });
}

/** The N of the CLI's `... (N written, M unchanged) ...` line. */
export function written(run: Run): number {
  return Number(match(run, /\((\d+) written, \d+ unchanged\)/));
}

export function filesOf(run: Run): string {
  return match(run, /: ([\d,]+) site files? \(/);
}

/** The CLI's `[load … ms, templates … ms, …]` suffix. */
export function stepsOf(run: Run): string {
  return match(run, /\[([^\]]+)\]/);
}

/** The load step's milliseconds in the CLI's timings. */
function loadMs(run: Run): number {
  return Number(match(run, /\[load (\d+) ms/));
}

/** The CLI's `read N of M release files` (or `read M release files`), as a reader says it. */
function readOf(run: Run): string {
  const counts = /^read (?:([\d,]+) of )?([\d,]+) release files?/m.exec(run.stdout);
  if (!counts) throw new Error(`Unexpected output of \`${run.command}\`: ${run.stdout}`);
  return `${counts[1] ?? counts[2]} of ${counts[2]} release files read`;
}

function match(run: Run, pattern: RegExp): string {
  const found = pattern.exec(run.stdout)?.[1];
  if (found === undefined) throw new Error(`Unexpected output of \`${run.command}\`: ${run.stdout}`);
  return found;
}
