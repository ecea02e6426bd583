// The only code that reads the manifest store. Validates every file and reports every problem at
// once, each with its file and JSON path, before anything is rendered.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import type { z } from 'zod';
import { defaultChannels, formatOf, sortBySemver, type Catalog, type Channel, type Product, type Release } from '../model/catalog.ts';
import { contentTypeFor } from '../model/content-types.ts';
import { canonicalArch, canonicalPlatform } from '../model/platforms.ts';
import type { RegistryPackage } from '../model/registry.ts';
import { loaderFingerprint, noLoadCache, type LoadCache, type LoadCacheMemory } from './cache.ts';
import { parseValid, readJson, validate } from './json-file.ts';
import { LoadError, reportInto, type Problem, type Report } from './problems.ts';
import { REGISTRY_DIRECTORY, readRegistry, registryFilePath } from './registry.ts';
import { productFile, releaseFile, siteFile } from './schema.ts';

export { LoadError, formatProblem, type Problem } from './problems.ts';

/** Directories of the store that hold something other than products. */
const RESERVED_DIRECTORIES = new Set([REGISTRY_DIRECTORY]);

export interface LoadOptions {
  /** What the last load kept (openLoadCache with LOADER_FINGERPRINT): unchanged files are not read again. Every file is read without. */
  cache?: LoadCache | undefined;
  /** Release files to read from which a thread reads them ahead (the cache's default: a few thousand; tests pass 0). */
  readAheadFrom?: number | undefined;
}

/** Reads and validates the whole manifest store; throws LoadError listing every problem. */
export async function loadCatalog(dir: string, { cache = noLoadCache(), readAheadFrom }: LoadOptions = {}): Promise<Catalog> {
  const problems: Problem[] = [];
  const report = reportInto(problems);

  const sitePath = path.join(dir, 'mirror.json');
  const siteData = existsSync(sitePath) ? cache.value(sitePath, 'settings', report, (text) => parseValid(sitePath, siteFile, text, report)) : siteFile.parse({});
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    throw new LoadError([{ file: dir, path: '', message: `cannot read the manifest store (${error.code ?? error.message})` }]);
  });

  const listed: { dir: string; name: string; files: string[] }[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.') || entry.name === 'mirror.json' || RESERVED_DIRECTORIES.has(entry.name)) continue;
    if (!entry.isDirectory()) {
      report(path.join(dir, entry.name), '', 'unexpected file: the store holds mirror.json and one directory per product');
      continue;
    }
    const productDir = path.join(dir, entry.name);
    listed.push({ dir: productDir, name: entry.name, files: (await readdir(productDir)).filter((name) => name !== 'product.json' && !name.startsWith('.')).sort() });
  }
  // Every release file, in the order they are loaded: read ahead when there are many to read.
  const ahead = cache.expect(
    listed.flatMap(({ dir, files }) => files.filter((name) => name.endsWith('.json')).map((name) => path.join(dir, name))),
    readAheadFrom,
  );
  const products: Product[] = [];
  // The releases whose files were parsed, not taken from the cache.
  const parsed: Release[] = [];
  try {
    for (const { dir: productDir, name, files } of listed) {
      const product = loadProduct(productDir, name, files, cache, report, parsed);
      if (product) products.push(product);
    }
  } finally {
    await ahead?.close();
  }
  const registry = await readRegistry(dir, report);
  checkBlobKeys(products, registry, dir, report, parsed.length < cache.stats.files.release ? parsed : undefined);
  const agentProducts = products.filter((product) => product.layout === 'agent');
  if (agentProducts.length > 1) {
    report(path.join(dir, agentProducts[1]!.name, 'product.json'), 'layout', `only one product can use the agent layout; \`${agentProducts[0]!.name}\` already does`);
  }
  if (problems.length > 0) throw new LoadError(problems);
  return {
    site: { title: siteData?.title ?? 'Releases', baseUrl: siteData?.base_url ?? '' },
    products,
    registry,
  };
}

/** One product's settings without its releases: what an upload needs before it reads a body. Undefined for a name the store lacks. */
export async function loadProductSettings(dir: string, name: string): Promise<Omit<Product, 'releases'> | undefined> {
  // Only a directory the store lists: a name from a URL never reaches the file system unchecked.
  if (!(await productNames(dir)).includes(name)) return undefined;
  const problems: Problem[] = [];
  const report = reportInto(problems);
  const file = path.join(dir, name, 'product.json');
  const settings = await readJson(file, productFile, report);
  if (settings && settings.name !== name) report(file, 'name', `must equal the directory name \`${name}\`, got \`${settings.name}\``);
  if (problems.length > 0) throw new LoadError(problems);
  if (!settings) return undefined;
  return productOf(settings);
}

/** The store's product directories, sorted; none when it cannot be read. */
export async function productNames(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.') && !RESERVED_DIRECTORIES.has(entry.name))
    .map((entry) => entry.name)
    .sort((a, b) => a.localeCompare(b));
}

/** A product's settings in the model's terms, defaults filled in. */
function productOf(settings: z.output<typeof productFile>): Omit<Product, 'releases'> {
  const packages = settings.packages;
  const name = packages?.name ?? settings.name;
  return {
    name: settings.name,
    title: settings.title,
    description: settings.description,
    homepage: settings.homepage,
    layout: settings.layout,
    filePrefix: filePrefixOf(settings),
    packages: {
      outputs: packages?.outputs ?? [],
      name,
      binary: packages?.binary ?? settings.name,
      windowsBinary: packages?.windows_binary ?? `${packages?.binary ?? settings.name}.exe`,
      license: packages?.license ?? null,
      apt: { component: packages?.apt.component ?? 'main' },
      rpm: { repository: packages?.rpm.repository ?? name },
    },
  };
}

/** Checks one release file's data as the loader would; an empty list means it is valid. */
export function validateRelease(file: string, data: unknown, product: Pick<Product, 'layout' | 'filePrefix' | 'packages'>): Problem[] {
  const problems: Problem[] = [];
  const report = reportInto(problems);
  const parsed = validate(file, releaseFile, data, report);
  if (parsed) checkRelease(toRelease(parsed), product, file, report);
  return problems;
}

/** A product directory's settings and releases; `names` are the directory's files but product.json, sorted. */
function loadProduct(dir: string, dirName: string, names: string[], cache: LoadCache, report: Report, parsed: Release[]): Product | undefined {
  const productPath = path.join(dir, 'product.json');
  const settings = cache.value(productPath, 'settings', report, (text) => parseValid(productPath, productFile, text, report));
  if (settings && settings.name !== dirName) report(productPath, 'name', `must equal the directory name \`${dirName}\`, got \`${settings.name}\``);

  const product = settings && productOf(settings);
  const checkedAgainst = product && JSON.stringify([product.layout, product.filePrefix, product.packages]);
  const releases: Release[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (!name.endsWith('.json')) {
      report(file, '', 'unexpected file: a product directory holds product.json and <version>.json files');
      continue;
    }
    // Kept in the model's form; the checks that involve other files run on every load.
    const release = cache.value(file, 'release', report, (text) => {
      const data = parseValid(file, releaseFile, text, report);
      const release = data && toRelease(data);
      if (release) parsed.push(release);
      return release;
    });
    if (!release) continue;
    shareRepeated(release);
    if (`${release.version}.json` !== name) report(file, 'version', `must match the file name \`${name}\`, got \`${release.version}\``);
    if (product) checkReleaseOnce(release, product, checkedAgainst!, file, report);
    releases.push(release);
  }
  if (!product) return undefined;
  return { ...product, releases: sortedOnce(dir, releases, cache.memory) };
}

/** The product settings checkRelease reads, by release object it passed: a load with a kept cache checks only new releases. */
const checked = new WeakMap<Release, string>();

function checkReleaseOnce(release: Release, product: Omit<Product, 'releases'>, settings: string, file: string, report: Report): void {
  if (checked.get(release) === settings) return;
  let problems = 0;
  checkRelease(release, product, file, (...problem) => {
    problems++;
    report(...problem);
  });
  if (problems === 0) checked.set(release, settings);
}

/**
 * The releases by semver. With a loader's memory, which keeps each product directory's last sort
 * (the same release objects in the same order sort the same), that sort brought up to date when a
 * few releases came or went; otherwise sorted anew.
 */
function sortedOnce(dir: string, releases: Release[], memory: LoadCacheMemory | undefined): Release[] {
  if (!memory) return sortBySemver(releases);
  const sorts = (memory.sorts ??= new Map<string, { releases: Release[]; sorted: Release[] }>());
  const last = sorts.get(dir);
  if (last && last.releases.length === releases.length && last.releases.every((release, i) => release === releases[i])) return last.sorted;
  const sorted = (last && updatedSort(last, releases)) ?? sortBySemver(releases);
  sorts.set(dir, { releases, sorted });
  return sorted;
}

/** The last sort without the releases that went, with the new ones inserted; undefined when most are new, or a new one ties with another (whose order only a full sort keeps). */
function updatedSort(last: { releases: Release[]; sorted: Release[] }, releases: Release[]): Release[] | undefined {
  const before = new Set(last.releases);
  const added = releases.filter((release) => !before.has(release));
  if (added.length > releases.length / 8) return undefined;
  const now = new Set(releases);
  const sorted = last.sorted.filter((release) => now.has(release));
  for (const release of added) {
    const version = new semver.SemVer(release.version);
    let low = 0;
    let high = sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const order = version.compare(sorted[middle]!.version);
      if (order === 0) return undefined;
      if (order > 0) low = middle + 1;
      else high = middle;
    }
    sorted.splice(low, 0, release);
  }
  return sorted;
}

/** The code a cached file's value depends on; another fingerprint makes an older cache unusable. */
export const LOADER_FINGERPRINT = loaderFingerprint([siteFile, productFile, releaseFile, toRelease, formatOf, contentTypeFor, defaultChannels, canonicalPlatform, canonicalArch]);

function filePrefixOf(settings: z.output<typeof productFile>): string {
  return settings.file_prefix ?? settings.name.replaceAll('-', '_');
}

function toRelease(data: z.output<typeof releaseFile>): Release {
  const parsed = semver.parse(data.version)!;
  return {
    version: data.version,
    major: parsed.major,
    minor: parsed.minor,
    patch: parsed.patch,
    prerelease: parsed.prerelease.length > 0,
    publishedAt: data.published_at,
    channels: data.channels ?? defaultChannels(data.version),
    notesUrl: data.notes_url,
    status: data.status,
    artifacts: data.artifacts.map((artifact) => ({
      platform: artifact.platform,
      arch: artifact.arch,
      format: formatOf(artifact.filename),
      filename: artifact.filename,
      size: artifact.size,
      sha256: artifact.sha256,
      contentType: artifact.content_type ?? contentTypeFor(artifact.filename),
      blob: artifact.blob,
      ...(artifact.deb ? { deb: artifact.deb } : {}),
      ...(artifact.rpm ? { rpm: artifact.rpm } : {}),
    })),
  };
}

/**
 * One object per content type and per channel list: a store's artifacts share a handful of each,
 * and JSON.parse (of a release file or of the load cache's line) copies them every time. At
 * 100,000 releases of six artifacts, the copies are about 25 MB.
 */
const contentTypes = new Map<string, string>();
const channelLists = new Map<string, Channel[]>();

function shareRepeated(release: Release): void {
  const channels = release.channels.join(',');
  const list = channelLists.get(channels);
  if (list === undefined) channelLists.set(channels, release.channels);
  else release.channels = list;
  for (const artifact of release.artifacts) {
    const type = contentTypes.get(artifact.contentType);
    if (type === undefined) contentTypes.set(artifact.contentType, artifact.contentType);
    else artifact.contentType = type;
  }
}

/** Rules that span fields of one release. */
function checkRelease(release: Release, product: Pick<Product, 'layout' | 'filePrefix' | 'packages'>, file: string, report: Report): void {
  const { layout, filePrefix, packages } = product;
  if (release.prerelease && release.channels.includes('stable')) {
    report(file, 'channels', 'a prerelease cannot be in channel `stable`');
  }
  const targets = new Set<string>();
  const filenames = new Set<string>();
  release.artifacts.forEach((artifact, i) => {
    const at = `artifacts[${i}]`;
    // One artifact per platform, architecture and format: an archive, a .deb and an .rpm may sit side by side.
    const target = `${artifact.platform}/${artifact.arch}`;
    const slot = artifact.format === 'archive' || artifact.format === 'file' ? target : `${target} ${artifact.format}`;
    if (targets.has(slot)) report(file, at, `a second ${artifact.format === 'deb' || artifact.format === 'rpm' ? `.${artifact.format} ` : ''}artifact for ${target}`);
    targets.add(slot);
    // A repository lists a package by the fields read from it when it was added.
    if (artifact.format === 'deb' && !artifact.deb && packages.outputs.includes('apt')) report(file, at, 'a .deb needs its control fields (`deb`); add it with `mirror release add`, which reads them from the package');
    if (artifact.format === 'rpm' && !artifact.rpm && packages.outputs.includes('rpm')) report(file, at, 'an .rpm needs its header fields (`rpm`); add it with `mirror release add`, which reads them from the package');
    if (layout === 'binary') {
      const expected = `${filePrefix}_${release.version}_${artifact.platform}_${artifact.arch}.`;
      if (!artifact.filename.startsWith(expected)) report(file, `${at}.filename`, `must start with \`${expected}\`, got \`${artifact.filename}\``);
      if (filenames.has(artifact.filename)) report(file, `${at}.filename`, `\`${artifact.filename}\` is listed twice`);
      filenames.add(artifact.filename);
    } else if (!(artifact.platform === 'windows' && artifact.arch === 'amd64') && !(artifact.platform === 'darwin' && artifact.arch !== '386')) {
      report(file, at, `the agent layout publishes windows/amd64, darwin/arm64 and darwin/amd64 only, got ${target}`);
    }
  });
}

interface BlobUse {
  blob: string;
  sha256: string;
  /** The file that names the blob. */
  file: string;
  jsonPath: string;
}

/**
 * Calls `visit` with every blob key the catalog refers to (release artifacts and registry tarballs),
 * its content, and its use, described only when asked (to report a problem); stops at the first
 * visit that returns true.
 */
function visitBlobs(products: Product[], registry: RegistryPackage[], dir: string, visit: (blob: string, sha256: string, use: () => BlobUse) => boolean): void {
  for (const product of products) {
    for (const release of product.releases) {
      for (let i = 0; i < release.artifacts.length; i++) {
        const { blob, sha256 } = release.artifacts[i]!;
        if (visit(blob, sha256, () => ({ blob, sha256, file: path.join(dir, product.name, `${release.version}.json`), jsonPath: `artifacts[${i}].blob` }))) return;
      }
    }
  }
  for (const pkg of registry) {
    for (const version of pkg.versions) {
      const { blob, sha256 } = version.tarball;
      if (visit(blob, sha256, () => ({ blob, sha256, file: registryFilePath(dir, version.scope, version.name, version.version), jsonPath: 'tarball.blob' }))) return;
    }
  }
}

/**
 * One blob key names one content everywhere in the catalog. Each key's content is kept, not its
 * uses (a store's are hundreds of thousands): the first use is looked up again only to report it.
 * With `parsed`, the releases this load parsed (the others came from the load cache, which keeps
 * only a load that passed, so no two of those disagree), only the keys they and the registry (read
 * whole each load) name are checked: a rebuild does not gather every key of the store.
 */
function checkBlobKeys(products: Product[], registry: RegistryPackage[], dir: string, report: Report, parsed?: Release[]): void {
  let checked: Set<string> | undefined;
  if (parsed) {
    checked = new Set();
    for (const release of parsed) for (const artifact of release.artifacts) checked.add(artifact.blob);
    for (const pkg of registry) for (const version of pkg.versions) checked.add(version.tarball.blob);
    if (checked.size === 0) return;
  }
  const firstFile = (blob: string): string => {
    let file = '';
    visitBlobs(products, registry, dir, (other, _sha256, use) => {
      if (other !== blob) return false;
      file = use().file;
      return true;
    });
    return file;
  };
  const contents = new Map<string, string>();
  visitBlobs(products, registry, dir, (blob, sha256, use) => {
    if (checked && !checked.has(blob)) return false;
    const known = contents.get(blob);
    if (known === undefined) contents.set(blob, sha256);
    else if (known !== sha256) {
      const { file, jsonPath } = use();
      report(file, jsonPath, `\`${blob}\` is also used by ${firstFile(blob)} with other content`);
    }
    return false;
  });
}
