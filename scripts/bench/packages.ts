// Package rows: what the package-manager outputs (product.json `packages.outputs`) add to `mirror
// build` of the 10,000-release synthetic store. Full builds, cold (a fresh --out), with the outputs
// off and on, interleaved: the six zips a release with the install script, Homebrew formula and Scoop
// manifest; and the same store with a fake .deb and .rpm for linux/amd64 and linux/arm64 added to
// every release, with apt and rpm too. Then the files a rebuild writes after adding one release,
// outputs on. No data directory key: nothing signs, so the rows measure rendering alone.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { currentBuild, readManifest } from '../../generator/publish/local-dir.ts';
import { filesOf, stepsOf, written } from './build.ts';
import { bestSeconds, fastest, seconds, timed, type Best, type Run } from './run.ts';
import { DEFAULT_SHAPE, PRODUCT, writeRelease, writeSyntheticStore } from './synthetic-store.ts';
import type { Row } from './table.ts';

const ATTEMPTS = 3;
const OVERHEAD_TARGET = 0.25;
const ARCHIVE_OUTPUTS = ['install-script', 'homebrew', 'scoop'];
const ALL_OUTPUTS = [...ARCHIVE_OUTPUTS, 'apt', 'rpm'];
/** The fake packages' targets: Debian's and rpm's names for each architecture. */
const PACKAGE_TARGETS = [
  { arch: 'amd64', debian: 'amd64', rpm: 'x86_64' },
  { arch: 'arm64', debian: 'arm64', rpm: 'aarch64' },
];

export interface PackagesBench {
  rows: Row[];
  /** The CLI's step timings of the runs reported, and the files the rebuild wrote. */
  notes: string[];
}

export async function benchPackages(work: string, repo: string, progress: (line: string) => void): Promise<PackagesBench> {
  const zips = path.join(work, 'packages-zips-store');
  const packaged = path.join(work, 'packages-debs-store');
  progress('writing the synthetic stores for the package rows');
  const releases = await writeSyntheticStore(zips);
  await writeSyntheticStore(packaged);
  for (const version of versionsOf()) await addFakePackages(packaged, version);
  // A data directory of its own without a key: the apt Release and repomd.xml stay unsigned.
  const build = (store: string, out: string): Promise<Run> => timed(['node', 'dist/mirror.js', 'build', '--releases', store, '--out', out], repo, { MIRROR_DATA_DIR: path.join(work, 'packages-data') });

  // Cold: a fresh --out each time. Earlier sites stay until the end, as in the signing rows: removing
  // tens of thousands of files just before a build slows it.
  const configs = [
    { name: 'zips-off', store: zips, outputs: [] },
    { name: 'zips-on', store: zips, outputs: ARCHIVE_OUTPUTS },
    { name: 'debs-off', store: packaged, outputs: [] },
    { name: 'debs-on', store: packaged, outputs: ALL_OUTPUTS },
  ];
  const runs = new Map<string, Run[]>(configs.map((config) => [config.name, []]));
  const siteOf = (name: string, attempt: number) => path.join(work, `packages-${name}-site-${attempt}`);
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    for (const config of configs) {
      progress(`full build ${config.name} ${attempt}/${ATTEMPTS}`);
      await setOutputs(config.store, config.outputs);
      runs.get(config.name)!.push(await build(config.store, siteOf(config.name, attempt)));
    }
  }
  const [zipsOff, zipsOn, debsOff, debsOn] = configs.map((config) => fastest(runs.get(config.name)!)) as [Best, Best, Best, Best];

  // The store stays with every output on; a live site keeps two builds, so this rebuild gets us there.
  const site = siteOf('debs-on', ATTEMPTS);
  progress('rebuild with every output on, nothing changed');
  const unchanged = await build(packaged, site);
  const version = `${DEFAULT_SHAPE.majors - 1}.${DEFAULT_SHAPE.minors - 1}.${DEFAULT_SHAPE.patches}`;
  await writeRelease(packaged, version, releases);
  await addFakePackages(packaged, version);
  progress(`rebuild with every output on after adding ${version}`);
  const previous = (await currentBuild(site))!;
  const added = await build(packaged, site);
  const changed = await changedKeys(previous, (await currentBuild(site))!);

  const overhead = (on: Best, off: Best) => on.ms / off.ms - 1;
  const rows: Row[] = [
    {
      measured: `Full build with package outputs ${ARCHIVE_OUTPUTS.join(', ')} vs none: ${releases.toLocaleString('en')} releases × 6 zips, ${filesOf(zipsOn)} site files (${filesOf(zipsOff)} without); fresh --out (wall, best of ${ATTEMPTS}, interleaved)`,
      ours: `${bestSeconds(zipsOn)}, ${percent(overhead(zipsOn, zipsOff))}`,
      reference: `${bestSeconds(zipsOff)}, no outputs`,
      target: `< +${OVERHEAD_TARGET * 100} %`,
      met: overhead(zipsOn, zipsOff) < OVERHEAD_TARGET,
      ourCommand: `product.json "packages": {"outputs": ${JSON.stringify(ARCHIVE_OUTPUTS)}, "binary": "${PRODUCT}"}; ${zipsOn.command}`,
      referenceCommand: `product.json without "packages"; ${zipsOff.command}`,
    },
    {
      measured: `Full build with all five package outputs (${ALL_OUTPUTS.join(', ')}) vs none: the same releases with a fake .deb and .rpm for linux/amd64 and linux/arm64 added to each (10 artifacts a release), ${filesOf(debsOn)} site files (${filesOf(debsOff)} without); fresh --out (wall, best of ${ATTEMPTS}, interleaved)`,
      ours: `${bestSeconds(debsOn)}, ${percent(overhead(debsOn, debsOff))}`,
      reference: `${bestSeconds(debsOff)}, no outputs`,
      target: `< +${OVERHEAD_TARGET * 100} %`,
      met: overhead(debsOn, debsOff) < OVERHEAD_TARGET,
      ourCommand: `product.json "packages": {"outputs": ${JSON.stringify(ALL_OUTPUTS)}, "binary": "${PRODUCT}"}; ${debsOn.command}`,
      referenceCommand: `product.json without "packages"; ${debsOff.command}`,
    },
    {
      measured: `Rebuild after adding ${version} (with its .deb and .rpm), all five outputs on: site files written, besides the route table and site.json (listed below); wall time`,
      ours: `${written(added)} written (${changed.length} site keys new or changed); ${seconds(added.ms)}`,
      reference: `${seconds(unchanged.ms)}, rebuild with nothing changed (${written(unchanged)} written)`,
      target: '—',
      ourCommand: added.command,
      referenceCommand: unchanged.command,
    },
  ];
  const notes = [
    `full build, zips, outputs off (best): ${stepsOf(zipsOff)}; on: ${stepsOf(zipsOn)}.`,
    `full build, zips + .deb + .rpm, outputs off (best): ${stepsOf(debsOff)}; on: ${stepsOf(debsOn)}.`,
    `rebuild after adding ${version}, outputs on: ${stepsOf(added)}; wrote ${groupKeys(changed).join(', ')}, the route table, site.json.`,
  ];
  return { rows, notes };
}

/** Every release version of the default store, as writeSyntheticStore numbers them. */
function versionsOf(): string[] {
  const versions: string[] = [];
  for (let major = 0; major < DEFAULT_SHAPE.majors; major++) {
    for (let minor = 0; minor < DEFAULT_SHAPE.minors; minor++) {
      for (let patch = 0; patch < DEFAULT_SHAPE.patches; patch++) versions.push(`${major}.${minor}.${patch}`);
    }
  }
  return versions;
}

/**
 * Adds a .deb and an .rpm per Linux architecture to a release file, with the metadata `mirror
 * release add` would read from them. No bytes: a build reads the release files alone.
 */
async function addFakePackages(store: string, version: string): Promise<void> {
  const file = path.join(store, PRODUCT, `${version}.json`);
  const release = JSON.parse(await readFile(file, 'utf8')) as { published_at: string; artifacts: unknown[] };
  const [major, minor, patch] = version.split('.');
  const buildtime = Date.parse(release.published_at) / 1000;
  for (const target of PACKAGE_TARGETS) {
    const artifact = (extension: string, contentType: string) => {
      const filename = `bench_cli_${version}_linux_${target.arch}.${extension}`;
      const sha256 = createHash('sha256').update(filename).digest('hex');
      return { platform: 'linux', arch: target.arch, filename, size: 1_000_000 + parseInt(sha256.slice(0, 5), 16), sha256, content_type: contentType, blob: `releases/${major}/${minor}/${patch}/${filename}` };
    };
    release.artifacts.push(
      {
        ...artifact('deb', 'application/vnd.debian.binary-package'),
        deb: { control: { Package: PRODUCT, Version: version, Architecture: target.debian, Maintainer: 'Bench <bench@example.com>', 'Installed-Size': '3000', Section: 'utils', Priority: 'optional', Description: 'Bench CLI\n a synthetic package for the benchmarks' } },
      },
      {
        ...artifact('rpm', 'application/x-rpm'),
        rpm: { name: PRODUCT, version, release: '1', arch: target.rpm, summary: 'Bench CLI', description: 'A synthetic package for the benchmarks.', license: 'MIT', buildtime, header_range: { start: 4504, end: 9000 }, installed_size: 3_000_000, archive_size: 1_000_000, files: [`/usr/bin/${PRODUCT}`] },
      },
    );
  }
  await writeFile(file, `${JSON.stringify(release, null, 2)}\n`);
}

/** Sets or removes product.json's `packages`; the bench then builds that store. */
async function setOutputs(store: string, outputs: string[]): Promise<void> {
  const file = path.join(store, PRODUCT, 'product.json');
  const { packages: _, ...product } = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  const settings = outputs.length > 0 ? { ...product, packages: { outputs, binary: PRODUCT } } : product;
  await writeFile(file, `${JSON.stringify(settings, null, 2)}\n`);
}

/** Site keys the newer build's manifest lists with other bytes than the older's, or anew. */
async function changedKeys(older: string, newer: string): Promise<string[]> {
  const before = (await readManifest(older)).files;
  const after = (await readManifest(newer)).files;
  return Object.entries(after)
    .filter(([key, file]) => before[key]?.sha256 !== file.sha256)
    .map(([key]) => key)
    .sort();
}

/** Keys with a hash in their name folded into one `…/<sha256>` entry with a count, so the list stays readable. */
function groupKeys(keys: string[]): string[] {
  const counts = new Map<string, number>();
  for (const key of keys) {
    const folded = key.replace(/[0-9a-f]{64}/g, '<sha256>');
    counts.set(folded, (counts.get(folded) ?? 0) + 1);
  }
  return [...counts].map(([key, count]) => (count > 1 ? `${key} ×${count}` : key));
}

function percent(fraction: number): string {
  return `${fraction >= 0 ? '+' : '−'}${Math.abs(fraction * 100).toFixed(1)} %`;
}
