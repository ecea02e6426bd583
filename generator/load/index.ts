// The only code that reads the manifest store. Validates every file and reports every problem at
// once, each with its file and JSON path, before anything is rendered.
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import type { z } from 'zod';
import { defaultChannels, sortBySemver, type Catalog, type Product, type Release } from '../model/catalog.ts';
import { contentTypeFor } from '../model/content-types.ts';
import { productFile, releaseFile, siteFile } from './schema.ts';

export interface Problem {
  file: string;
  /** JSON path inside the file, empty for the file as a whole. */
  path: string;
  message: string;
}

export class LoadError extends Error {
  constructor(readonly problems: Problem[]) {
    super(`${problems.length} problem${problems.length === 1 ? '' : 's'} in the manifest store:\n${problems.map(formatProblem).join('\n')}`);
    this.name = 'LoadError';
  }
}

export function formatProblem(problem: Problem): string {
  return problem.path ? `${problem.file}: ${problem.path}: ${problem.message}` : `${problem.file}: ${problem.message}`;
}

/** Directories of the store that hold something other than products. */
const RESERVED_DIRECTORIES = new Set(['registry']);

/** Reads and validates the whole manifest store; throws LoadError listing every problem. */
export async function loadCatalog(dir: string): Promise<Catalog> {
  const problems: Problem[] = [];
  const report = (file: string, jsonPath: string, message: string) => problems.push({ file, path: jsonPath, message });

  const siteData = await readJson(path.join(dir, 'mirror.json'), siteFile, report, { optional: true });
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    throw new LoadError([{ file: dir, path: '', message: `cannot read the manifest store (${error.code ?? error.message})` }]);
  });

  const products: Product[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.') || entry.name === 'mirror.json' || RESERVED_DIRECTORIES.has(entry.name)) continue;
    if (!entry.isDirectory()) {
      report(path.join(dir, entry.name), '', 'unexpected file: the store holds mirror.json and one directory per product');
      continue;
    }
    const product = await loadProduct(path.join(dir, entry.name), entry.name, report);
    if (product) products.push(product);
  }
  checkBlobKeys(products, dir, report);
  const agentProducts = products.filter((product) => product.layout === 'agent');
  if (agentProducts.length > 1) {
    report(path.join(dir, agentProducts[1]!.name, 'product.json'), 'layout', `only one product can use the agent layout; \`${agentProducts[0]!.name}\` already does`);
  }
  if (problems.length > 0) throw new LoadError(problems);
  return {
    site: { title: siteData?.title ?? 'Releases', baseUrl: siteData?.base_url ?? '' },
    products,
  };
}

type Report = (file: string, jsonPath: string, message: string) => void;

/** One product's settings without its releases: what an upload needs before it reads a body. Undefined for a name the store lacks. */
export async function loadProductSettings(dir: string, name: string): Promise<Omit<Product, 'releases'> | undefined> {
  // Only a directory the store lists: a name from a URL never reaches the file system unchecked.
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  if (name.startsWith('.') || RESERVED_DIRECTORIES.has(name) || !entries.some((entry) => entry.isDirectory() && entry.name === name)) return undefined;
  const problems: Problem[] = [];
  const file = path.join(dir, name, 'product.json');
  const settings = await readJson(file, productFile, (at, jsonPath, message) => problems.push({ file: at, path: jsonPath, message }));
  if (problems.length > 0) throw new LoadError(problems);
  if (!settings) return undefined;
  return { name: settings.name, title: settings.title, description: settings.description, homepage: settings.homepage, layout: settings.layout, filePrefix: filePrefixOf(settings) };
}

/** Checks one release file's data as the loader would; an empty list means it is valid. */
export function validateRelease(file: string, data: unknown, product: Pick<Product, 'layout' | 'filePrefix'>): Problem[] {
  const problems: Problem[] = [];
  const report: Report = (at, jsonPath, message) => problems.push({ file: at, path: jsonPath, message });
  const parsed = validate(file, releaseFile, data, report);
  if (parsed) checkRelease(toRelease(parsed), product.layout, product.filePrefix, file, report);
  return problems;
}

async function loadProduct(dir: string, dirName: string, report: Report): Promise<Product | undefined> {
  const productPath = path.join(dir, 'product.json');
  const settings = await readJson(productPath, productFile, report);
  if (settings && settings.name !== dirName) report(productPath, 'name', `must equal the directory name \`${dirName}\`, got \`${settings.name}\``);

  const names = (await readdir(dir)).filter((name) => name !== 'product.json' && !name.startsWith('.')).sort();
  const releases: Release[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (!name.endsWith('.json')) {
      report(file, '', 'unexpected file: a product directory holds product.json and <version>.json files');
      continue;
    }
    const data = await readJson(file, releaseFile, report);
    if (!data) continue;
    if (`${data.version}.json` !== name) report(file, 'version', `must match the file name \`${name}\`, got \`${data.version}\``);
    const release = toRelease(data);
    if (settings) checkRelease(release, settings.layout, filePrefixOf(settings), file, report);
    releases.push(release);
  }
  if (!settings) return undefined;
  return {
    name: settings.name,
    title: settings.title,
    description: settings.description,
    homepage: settings.homepage,
    layout: settings.layout,
    filePrefix: filePrefixOf(settings),
    releases: sortBySemver(releases),
  };
}

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
      filename: artifact.filename,
      size: artifact.size,
      sha256: artifact.sha256,
      contentType: artifact.content_type ?? contentTypeFor(artifact.filename),
      blob: artifact.blob,
    })),
  };
}

/** Rules that span fields of one release. */
function checkRelease(release: Release, layout: Product['layout'], filePrefix: string, file: string, report: Report): void {
  if (release.prerelease && release.channels.includes('stable')) {
    report(file, 'channels', 'a prerelease cannot be in channel `stable`');
  }
  const targets = new Set<string>();
  const filenames = new Set<string>();
  release.artifacts.forEach((artifact, i) => {
    const at = `artifacts[${i}]`;
    const target = `${artifact.platform}/${artifact.arch}`;
    if (targets.has(target)) report(file, at, `a second artifact for ${target}`);
    targets.add(target);
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

/** One blob key names one content everywhere in the catalog. */
function checkBlobKeys(products: Product[], dir: string, report: Report): void {
  const seen = new Map<string, { sha256: string; where: string }>();
  for (const product of products) {
    for (const release of product.releases) {
      const where = path.join(dir, product.name, `${release.version}.json`);
      release.artifacts.forEach((artifact, i) => {
        const first = seen.get(artifact.blob);
        if (!first) seen.set(artifact.blob, { sha256: artifact.sha256, where });
        else if (first.sha256 !== artifact.sha256) report(where, `artifacts[${i}].blob`, `\`${artifact.blob}\` is also used by ${first.where} with other content`);
      });
    }
  }
}

async function readJson<S extends z.ZodType>(file: string, schema: S, report: Report, options: { optional?: boolean } = {}): Promise<z.output<S> | undefined> {
  let text: string;
  try {
    // Synchronous: thousands of small files read several times faster than through the thread pool.
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && options.optional) return schema.parse({}) as z.output<S>;
    report(file, '', code === 'ENOENT' ? 'missing' : `cannot read (${code})`);
    return undefined;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    report(file, '', `not valid JSON (${(error as Error).message})`);
    return undefined;
  }
  return validate(file, schema, data, report);
}

function validate<S extends z.ZodType>(file: string, schema: S, data: unknown, report: Report): z.output<S> | undefined {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    for (const key of keys) report(file, formatJsonPath(key === undefined ? issue.path : [...issue.path, key]), key === undefined ? issue.message : 'unknown field');
  }
  return undefined;
}

function formatJsonPath(segments: PropertyKey[]): string {
  return segments.map((segment, i) => (typeof segment === 'number' ? `[${segment}]` : `${i === 0 ? '' : '.'}${String(segment)}`)).join('');
}
