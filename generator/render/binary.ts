// The binary-releases layout (seed 000): Terraform-style paths under /binary/releases/<product>.
import type { Artifact, Product, Release } from '../model/catalog.ts';
import type { KvsPart } from '../publish/cloudfront/kvs-entries.ts';
import type { Crumb, PageRenderer } from './html.ts';
import { blobTarget, type PathTarget } from './route-table.ts';
import { fingerprintOf } from '../model/fingerprint.ts';
import { NO_MEMO, combine, type RenderMemo } from './memo.ts';
import { CACHE_SHORT, TEXT_TYPE, jsonFile, type BuiltFile, type SiteFile } from './site-file.ts';

export const BINARY_ROOT = 'binary/releases';
/** The listing of every binary product: the first level of their pages' breadcrumbs. */
export const BINARY_CRUMB: Crumb = { label: 'releases', href: `/${BINARY_ROOT}/` };

/**
 * A unit's paths as a render memo keeps them: the route spill's lines (route-spill.ts) and their
 * KeyValueStore entries, so a unit it gives back need not be read and serialized again.
 */
export interface KeptPaths {
  lines: readonly string[];
  kvs: KvsPart;
}

/** What a layout renders: its files (as a memo gives them back: `BuiltFile`) and its route paths. */
export interface LayoutOutput<File extends BuiltFile = SiteFile> {
  files: File[];
  paths: Record<string, PathTarget>;
  /** The paths as a render memo kept them for a build that spills its route table: handed on unread. */
  kept?: KeptPaths;
}

export function renderBinaryProduct(product: Product, pages: PageRenderer): LayoutOutput {
  return mergeOutputs(binaryProductUnits(product, pages, NO_MEMO, () => ''));
}

/**
 * The product's output in units (its listing, then one per minor), each from the memo while its
 * inputs are unchanged; rendered one at a time as they are asked for, so a caller that writes each
 * unit out before asking for the next never holds the product's whole output.
 */
export function* binaryProductUnits<File extends BuiltFile>(product: Product, pages: PageRenderer, memo: RenderMemo<File>, context: () => string): Generator<LayoutOutput<File>> {
  const base = `${BINARY_ROOT}/${product.name}`;
  const crumbs: Crumb[] = [BINARY_CRUMB, { label: product.name, href: `/${base}/` }];
  // A unit's inputs: the page context, the product's settings and the releases it lists.
  let settings: string | undefined;
  const inputs = (releases: Release[]) => () => combine([(settings ??= settingsFingerprint(product, context())), ...releases.map(fingerprintOf)]);
  yield memo.unit(`binary ${base}`, inputs(product.releases), () => renderProductListing(product, pages, base, crumbs));
  for (const [minorPath, releases] of groupByMinor(product, base)) {
    yield memo.unit(`binary ${minorPath}`, inputs(releases), () => renderMinor(product, pages, crumbs, minorPath, releases));
  }
}

/** The product's own listing: its versions, newest first, as JSON and a page. */
function renderProductListing(product: Product, pages: PageRenderer, base: string, crumbs: Crumb[]): LayoutOutput {
  const files: SiteFile[] = [];
  const versions = product.releases.map((release) => release.version);
  files.push(jsonFile(`${base}/versions.json`, { success: true, versions, count: versions.length }));
  files.push(
    jsonFile(`${base}/index.json`, {
      success: true,
      product: product.name,
      title: product.title,
      description: product.description,
      homepage: product.homepage,
      versions: [...product.releases].reverse().map((release) => ({
        version: release.version,
        published_at: release.publishedAt,
        status: release.status,
        url: `/${base}/${release.major}/${release.minor}/`,
      })),
    }),
  );
  files.push(
    pages.page(`${base}/index.html`, 'product', {
      title: product.title,
      breadcrumbs: crumbs,
      product,
      versions: [...product.releases].reverse().map((release) => ({ ...releaseView(release), url: `/${base}/${release.major}/${release.minor}/${versionAnchor(release)}` })),
    }),
  );
  const paths: Record<string, PathTarget> = {
    [`/${base}/`]: { type: 'file', key: `${base}/index.json`, html: `${base}/index.html` },
    [`/${base}/versions`]: { type: 'file', key: `${base}/versions.json`, html: `${base}/index.html` },
  };
  return { files, paths };
}

/** One minor's listing, its releases' checksum files, and the paths of their artifacts and versions. */
function renderMinor(product: Product, pages: PageRenderer, crumbs: Crumb[], minorPath: string, releases: Release[]): LayoutOutput {
  const base = `${BINARY_ROOT}/${product.name}`;
  const files: SiteFile[] = [];
  const paths: Record<string, PathTarget> = {};
  const { major, minor } = releases[0]!;
  const listing = releases.flatMap((release) => release.artifacts.map((artifact) => fileEntry(product, release, artifact)));
  files.push(jsonFile(`${minorPath}/index.json`, { success: true, major, minor, files: listing, count: listing.length }));
  files.push(
    pages.page(`${minorPath}/index.html`, 'minor', {
      title: `${product.title} ${major}.${minor}`,
      breadcrumbs: [...crumbs, { label: `${major}.${minor}`, href: `/${minorPath}/` }],
      product,
      major,
      minor,
      releases: [...releases].reverse().map((release) => ({
        ...releaseView(release),
        sums: `/${minorPath}/${sumsName(product, release)}`,
        files: release.artifacts.map((artifact) => ({ ...artifact, url: `/${minorPath}/${artifact.filename}` })),
      })),
    }),
  );
  paths[`/${minorPath}/`] = { type: 'file', key: `${minorPath}/index.json`, html: `${minorPath}/index.html` };

  for (const release of releases) {
    const sums = `${minorPath}/${sumsName(product, release)}`;
    files.push(checksumFile(sums, release));
    paths[`/${sums}`] = { type: 'file', key: sums };
    for (const artifact of release.artifacts) {
      paths[`/${minorPath}/${artifact.filename}`] = blobTarget(artifact);
    }

    // A version's page is its section of the minor page: one file per minor, not three per release.
    paths[`/${base}/${release.version}/`] = { type: 'redirect', location: `/${minorPath}/${versionAnchor(release)}` };
  }
  return { files, paths };
}

/** Several units' output as one. */
function mergeOutputs(units: Iterable<LayoutOutput>): LayoutOutput {
  const merged: LayoutOutput = { files: [], paths: {} };
  for (const unit of units) {
    for (const file of unit.files) merged.files.push(file);
    Object.assign(merged.paths, unit.paths);
  }
  return merged;
}

/** A product's settings (everything but its releases) with the render's context, as a fingerprint. */
export function settingsFingerprint(product: Product, context: string): string {
  return combine([context, JSON.stringify({ ...product, releases: undefined })]);
}

/** One entry of the seed's per-minor `files` list. */
function fileEntry(product: Product, release: Release, artifact: Artifact) {
  return {
    filename: artifact.filename,
    version: release.version,
    platform: artifact.platform,
    architecture: artifact.arch,
    size: artifact.size,
    last_modified: release.publishedAt,
    download_url: artifactPath(product, release, artifact),
  };
}

/** Where the binary layout serves an artifact: `/binary/releases/<product>/<major>/<minor>/<file>`. */
export function artifactPath(product: Product, release: Release, artifact: Artifact): string {
  return `/${BINARY_ROOT}/${product.name}/${release.major}/${release.minor}/${artifact.filename}`;
}

function groupByMinor(product: Product, base: string): Map<string, Release[]> {
  const groups = new Map<string, Release[]>();
  for (const release of product.releases) {
    const key = `${base}/${release.major}/${release.minor}`;
    const group = groups.get(key);
    if (group) group.push(release);
    else groups.set(key, [release]);
  }
  return groups;
}

function versionAnchor(release: Release): string {
  return `#v${release.version}`;
}

function releaseView(release: Release) {
  return { version: release.version, publishedAt: release.publishedAt, status: release.status, yanked: release.status === 'yanked', prerelease: release.prerelease, notesUrl: release.notesUrl };
}

export function sumsName(product: Product, release: Release): string {
  return `${product.filePrefix}_${release.version}_SHA256SUMS`;
}

/**
 * A release's SHA256SUMS file, which the publisher's keys sign. Each artifact is named by its file
 * name, or by `nameOf` where file names repeat within a release (the desktop agent's two macOS
 * installers share one).
 */
export function checksumFile(key: string, release: Release, nameOf: (artifact: Artifact) => string = (artifact) => artifact.filename): SiteFile {
  return { key, body: sha256sums(release.artifacts, nameOf), contentType: TEXT_TYPE, cacheControl: CACHE_SHORT, kind: 'checksum', signAt: release.publishedAt };
}

/** The format `sha256sum -c` reads: hash, two spaces, file name. */
export function sha256sums(artifacts: Artifact[], nameOf: (artifact: Artifact) => string = (artifact) => artifact.filename): string {
  return artifacts
    .map((artifact) => ({ name: nameOf(artifact), sha256: artifact.sha256 }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(({ name, sha256 }) => `${sha256}  ${name}\n`)
    .join('');
}
