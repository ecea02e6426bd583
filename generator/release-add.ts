// `mirror release add`: hash files, put them in the blob store, write the release file.
// Blobs go in first, so a release file never names bytes that are not there yet.
import { createHash, randomUUID } from 'node:crypto';
import { readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import semver from 'semver';
import { LoadError, loadProductSettings, productNames, validateRelease } from './load/index.ts';
import type { ReleaseFileInput } from './load/schema.ts';
import { formatOf, type Channel, type Product } from './model/catalog.ts';
import { contentTypeFor } from './model/content-types.ts';
import { AGENT_LAYOUT_NAMES, canonicalArch, canonicalPlatform, type Arch, type Platform } from './model/platforms.ts';
import { readDebMetadata } from './packages/deb.ts';
import { readRpmMetadata } from './packages/rpm.ts';
import { jsonBody } from './render/site-file.ts';
import type { BlobStore } from './stores/blob-store.ts';
import { hashFile, type FileDigest } from './stores/hash.ts';
import { openLocks, type Locks } from './stores/locks.ts';

export interface ArtifactInput {
  path: string;
  /** The artifact's name; the file's own name when absent (an upload's staging file has none worth keeping). */
  filename?: string | undefined;
  /** Size and sha256 already computed while the file was written; the blob store checks them again when it commits. */
  digest?: FileDigest | undefined;
  /** Name or alias; inferred from the file name when absent. */
  platform?: string | undefined;
  arch?: string | undefined;
  contentType?: string | undefined;
  /** The digest the file must have, e.g. from a build tool's checksums file. */
  sha256?: string | undefined;
}

export interface AddReleaseOptions {
  releasesDir: string;
  blobs: BlobStore;
  product: string;
  version: string;
  files: ArtifactInput[];
  /** ISO 8601; kept from the existing file when artifacts are added to a release. */
  publishedAt: string;
  channels?: Channel[] | undefined;
  notesUrl?: string | null | undefined;
  /** Where writers of one version take turns; by default lock files of this host's, named for the store (see `storeLocksDir`). */
  locks?: Locks | undefined;
}

export interface AddReleaseResult {
  file: string;
  created: boolean;
  artifacts: NonNullable<ReleaseFileInput['artifacts']>;
}

export class ReleaseConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReleaseConflictError';
  }
}

export async function addRelease(options: AddReleaseOptions): Promise<AddReleaseResult> {
  if (semver.valid(options.version) !== options.version) throw new Error(`Expected \`--version\` to be a semantic version such as 1.12.2, got \`${options.version}\``);
  if (options.files.length === 0) throw new Error('Name at least one artifact file');
  // The product's settings only: an add costs the same in a store of any size.
  const product = await loadProductSettings(options.releasesDir, options.product);
  if (!product) throw new Error(`Unknown product \`${options.product}\`; the store has ${(await productNames(options.releasesDir)).map((name) => `\`${name}\``).join(', ') || 'none'}`);

  const file = path.join(options.releasesDir, product.name, `${options.version}.json`);
  const artifacts = await Promise.all(
    options.files.map(async (input) => {
      const filename = input.filename ?? path.basename(input.path);
      const { platform, arch } = targetOf(input, filename, options.version);
      const digest = input.digest ?? (await hashFile(input.path));
      if (input.sha256 !== undefined && input.sha256 !== digest.sha256) {
        throw new Error(`${input.path}: sha256 is ${digest.sha256}, but the checksums file says ${input.sha256}`);
      }
      return {
        platform,
        arch,
        filename,
        size: digest.size,
        sha256: digest.sha256,
        content_type: input.contentType ?? contentTypeFor(filename),
        blob: blobKeyFor(product, options.version, platform, arch, filename),
        // What apt's and yum's indexes list, read from the package once, here.
        ...(formatOf(filename) === 'deb' && product.packages.outputs.includes('apt') ? { deb: await readDebMetadata(input.path) } : {}),
        ...(formatOf(filename) === 'rpm' && product.packages.outputs.includes('rpm') ? { rpm: await readRpmMetadata(input.path) } : {}),
        source: input.path,
      };
    }),
  );
  const entries = artifacts.map(({ source: _source, ...entry }) => entry);

  // Writers of one version take turns, so concurrent adds of different platforms all land.
  const locks = options.locks ?? (await openLocks({ dir: await storeLocksDir(options.releasesDir) }));
  return locks.withLock(`release:${product.name}/${options.version}`, async () => {
    const existing = await readExisting(file);
    if (existing) checkAmendment(existing, options, product, entries);
    const data: ReleaseFileInput = existing
      ? { ...existing, artifacts: [...(existing.artifacts ?? []), ...entries] }
      : {
          version: options.version,
          published_at: options.publishedAt,
          ...(options.channels ? { channels: options.channels } : {}),
          notes_url: options.notesUrl ?? null,
          status: 'active',
          artifacts: entries,
        };
    const problems = validateRelease(file, data, product);
    if (problems.length > 0) throw new LoadError(problems);

    for (const artifact of artifacts) await options.blobs.putFile(artifact.blob, artifact.source, artifact);
    await writeReleaseFile(file, data);
    return { file, created: existing === undefined, artifacts: entries };
  });
}

/**
 * Lock files for a manifest store outside it, so that a refused add leaves the store (often a git
 * checkout) untouched: in the temporary directory, named for the store's real path, so every
 * process on this host adding to one store meets in one place.
 */
async function storeLocksDir(releasesDir: string): Promise<string> {
  const store = await realpath(releasesDir);
  return path.join(tmpdir(), 'release-mirror-locks', createHash('sha256').update(store).digest('hex').slice(0, 16));
}

/** An archive, a .deb and an .rpm for one platform and architecture sit side by side. */
function sameSlot(a: string, b: string): boolean {
  const slot = (filename: string) => (formatOf(filename) === 'deb' || formatOf(filename) === 'rpm' ? formatOf(filename) : 'archive');
  return slot(a) === slot(b);
}

/** Adding to a published release may only add artifacts: no replacement, no change of its other facts. */
function checkAmendment(existing: ReleaseFileInput, options: AddReleaseOptions, product: Omit<Product, 'releases'>, entries: ReleaseFileInput['artifacts']): void {
  for (const artifact of entries) {
    const clash = existing.artifacts?.find((old) => (old.platform === artifact.platform && old.arch === artifact.arch && sameSlot(old.filename, artifact.filename)) || (product.layout === 'binary' && old.filename === artifact.filename));
    if (clash) throw new ReleaseConflictError(`${product.name} ${options.version} already has ${clash.filename} (${clash.platform}/${clash.arch}); published artifacts are never overwritten`);
  }
  if (options.channels && JSON.stringify(options.channels) !== JSON.stringify(existing.channels)) {
    throw new ReleaseConflictError(`${product.name} ${options.version} is already published; its channels cannot be changed by adding artifacts`);
  }
  if (options.notesUrl !== undefined && options.notesUrl !== existing.notes_url) {
    throw new ReleaseConflictError(`${product.name} ${options.version} is already published; its notes URL cannot be changed by adding artifacts`);
  }
}

/** Blob keys: seed 000's `releases/<major>/<minor>/<patch>/<file>`, seed 001's `agent/<platform>[/<arch>]/<version>/<file>`. */
export function blobKeyFor(product: Pick<Product, 'layout'>, version: string, platform: Platform, arch: Arch, filename: string): string {
  if (product.layout === 'binary') {
    const parsed = semver.parse(version)!;
    return `releases/${parsed.major}/${parsed.minor}/${parsed.patch}${parsed.prerelease.length ? `-${parsed.prerelease.join('.')}` : ''}/${filename}`;
  }
  const platformName = AGENT_LAYOUT_NAMES.platform[platform] ?? platform;
  const archPart = platform === 'darwin' ? `${AGENT_LAYOUT_NAMES.arch[arch] ?? arch}/` : '';
  return `agent/${platformName}/${archPart}${version}/${filename}`;
}

const PLATFORM_WORDS = /(?<=^|[-_.])(linux|darwin|macos|osx|windows|win)(?=$|[-_.])/g;
const ARCH_WORDS = /(?<=^|[-_.])(x86_64|amd64|x64|aarch64|arm64|i386|386|x86)(?=$|[-_.])/g;

/** Platform and architecture as given, or the last such words of the file name once the version is taken out (`tool_1.0.386_linux_amd64.zip`). */
function targetOf(input: ArtifactInput, filename: string, version: string): { platform: Platform; arch: Arch } {
  const name = filename.toLowerCase().replaceAll(version.toLowerCase(), '');
  const lastWord = (pattern: RegExp) => [...name.matchAll(pattern)].at(-1)?.[1];
  const platformName = input.platform ?? lastWord(PLATFORM_WORDS);
  const archName = input.arch ?? lastWord(ARCH_WORDS);
  const platform = platformName === undefined ? undefined : canonicalPlatform(platformName);
  const arch = archName === undefined ? undefined : canonicalArch(archName);
  if (input.platform !== undefined && !platform) throw new Error(`${input.path}: unknown platform \`${input.platform}\``);
  if (input.arch !== undefined && !arch) throw new Error(`${input.path}: unknown architecture \`${input.arch}\``);
  if (!platform || !arch) {
    throw new Error(`${input.path}: cannot tell the ${platform ? 'architecture' : 'platform'} from the file name; write it as FILE#PLATFORM/ARCH (for example ${filename}#darwin/arm64)`);
  }
  return { platform, arch };
}

async function readExisting(file: string): Promise<ReleaseFileInput | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as ReleaseFileInput;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Writes through a temporary file renamed into place, so readers see the old file or the new one. */
async function writeReleaseFile(file: string, data: ReleaseFileInput): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID()}.tmp`);
  await writeFile(temporary, jsonBody(data));
  try {
    await rename(temporary, file);
  } finally {
    await rm(temporary, { force: true });
  }
}
