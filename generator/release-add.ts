// `mirror release add`: hash files, put them in the blob store, write the release file.
// Blobs go in first, so a release file never names bytes that are not there yet.
import { randomUUID } from 'node:crypto';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { LoadError, loadCatalog, validateRelease } from './load/index.ts';
import type { ReleaseFileInput } from './load/schema.ts';
import type { Channel, Product } from './model/catalog.ts';
import { contentTypeFor } from './model/content-types.ts';
import { AGENT_LAYOUT_NAMES, canonicalArch, canonicalPlatform, type Arch, type Platform } from './model/platforms.ts';
import { jsonBody } from './render/site-file.ts';
import type { BlobStore } from './stores/blob-store.ts';
import { hashFile } from './stores/hash.ts';

export interface ArtifactInput {
  path: string;
  /** Name or alias; inferred from the file name when absent. */
  platform?: string | undefined;
  arch?: string | undefined;
  contentType?: string | undefined;
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
  const catalog = await loadCatalog(options.releasesDir);
  const product = catalog.products.find((candidate) => candidate.name === options.product);
  if (!product) throw new Error(`Unknown product \`${options.product}\`; the store has ${catalog.products.map((p) => `\`${p.name}\``).join(', ') || 'none'}`);

  const file = path.join(options.releasesDir, product.name, `${options.version}.json`);
  const existing = await readExisting(file);
  const artifacts = await Promise.all(
    options.files.map(async (input) => {
      const filename = path.basename(input.path);
      const { platform, arch } = targetOf(input, filename);
      const digest = await hashFile(input.path);
      return {
        platform,
        arch,
        filename,
        size: digest.size,
        sha256: digest.sha256,
        content_type: input.contentType ?? contentTypeFor(filename),
        blob: blobKeyFor(product, options.version, platform, arch, filename),
        source: input.path,
      };
    }),
  );
  for (const artifact of artifacts) {
    const clash = existing?.artifacts?.find((old) => (old.platform === artifact.platform && old.arch === artifact.arch) || (product.layout === 'binary' && old.filename === artifact.filename));
    if (clash) throw new ReleaseConflictError(`${product.name} ${options.version} already has ${clash.filename} (${clash.platform}/${clash.arch}); published artifacts are never overwritten`);
  }

  const entries = artifacts.map(({ source: _source, ...entry }) => entry);
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
  await writeReleaseFile(file, data, existing === undefined);
  return { file, created: existing === undefined, artifacts: entries };
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

/** Platform and architecture as given, or read from tokens of the file name (`tool_1.0.0_linux_amd64.zip`). */
function targetOf(input: ArtifactInput, filename: string): { platform: Platform; arch: Arch } {
  const tokens = filename.toLowerCase().split(/[_\-.]/);
  const platform = input.platform !== undefined ? canonicalPlatform(input.platform) : tokens.map(canonicalPlatform).find(Boolean);
  const arch = input.arch !== undefined ? canonicalArch(input.arch) : tokens.map(canonicalArch).find(Boolean);
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

/** Writes through a temporary file: a new release appears by link (never replacing one), a grown one by rename. */
async function writeReleaseFile(file: string, data: ReleaseFileInput, create: boolean): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID()}.tmp`);
  await writeFile(temporary, jsonBody(data));
  try {
    if (!create) return await rename(temporary, file);
    try {
      await link(temporary, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new ReleaseConflictError(`${file} was written by someone else meanwhile; run the command again`);
      throw error;
    }
  } finally {
    await rm(temporary, { force: true });
  }
}
