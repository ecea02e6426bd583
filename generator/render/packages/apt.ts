// One apt repository at /apt/ for every product that asks for it, laid out like Debian's archive:
// packages under pool/, served from the blob store without a copy; per suite a Release that
// names every index by hash (signed into Release.gpg and InRelease by the sign step), and per
// component and architecture a Packages index, gzipped too, with by-hash copies so a client never
// mixes an old Release with a new index.
//   deb [signed-by=/usr/share/keyrings/<site>.gpg] <origin>/apt stable main
import type { Artifact, Channel, Product, Release, SiteSettings } from '../../model/catalog.ts';
import { DEBIAN_ARCHITECTURES } from '../../model/platforms.ts';
import { sha256Hex } from '../../stores/hash.ts';
import type { LayoutOutput } from '../binary.ts';
import { blobTarget, type PathTarget } from '../route-table.ts';
import { CACHE_IMMUTABLE, CACHE_SHORT, TEXT_TYPE, type SiteFile } from '../site-file.ts';
import { GZIP_TYPE, gzipIndex } from './gzip.ts';

export const APT_ROOT = 'apt';

/**
 * Suites follow channels: `stable` lists the stable channel's releases, `latest` every active
 * release, prereleases included. Every version stays listed; apt installs the highest.
 */
export const APT_SUITES: { suite: string; channel: Channel }[] = [
  { suite: 'stable', channel: 'stable' },
  { suite: 'latest', channel: 'latest' },
];

/** Fields the repository writes itself; a package's own copy of them is dropped. */
const REPOSITORY_FIELDS = new Set(['Filename', 'Size', 'MD5sum', 'SHA1', 'SHA256', 'SHA512']);


interface Listing {
  release: Release;
  component: string;
  /** Debian's architecture name, or `all`. */
  architecture: string;
  control: Record<string, string>;
  /** Site key of the package in the pool. */
  poolKey: string;
  artifact: Artifact;
}

export function renderAptRepository(products: Product[], site: SiteSettings): LayoutOutput {
  const files: SiteFile[] = [];
  const paths: Record<string, PathTarget> = {};
  if (products.length === 0) return { files, paths };
  // Each index lists its packages by name, then in release order; a paragraph is rendered once for
  // every suite and architecture listing it.
  const listings = products.flatMap(listingsOf).sort((a, b) => (a.control['Package']! < b.control['Package']! ? -1 : a.control['Package']! > b.control['Package']! ? 1 : 0));
  const paragraphs = new Map<Listing, string>();
  const paragraphOf = (listing: Listing) => {
    let text = paragraphs.get(listing);
    if (text === undefined) paragraphs.set(listing, (text = paragraph(listing)));
    return text;
  };

  for (const listing of listings) {
    const path = `/${listing.poolKey}`;
    const existing = paths[path];
    if (existing?.type === 'blob' && existing.sha256 !== listing.artifact.sha256) {
      throw new Error(`Two different packages would be ${path}: ${existing.filename} and ${listing.artifact.filename}; a package's name, version and architecture name one file`);
    }
    // The artifact's own route target: every route to one blob says the same, which the edge function relies on.
    paths[path] = blobTarget(listing.artifact);
  }

  // An `Architecture: all` package is listed in every architecture's index, and names its artifact's.
  const architectures = [...new Set(listings.map((listing) => (listing.architecture === 'all' ? DEBIAN_ARCHITECTURES[listing.artifact.arch] : listing.architecture)))].sort();
  const components = [...new Set(products.map((product) => product.packages.apt.component))].sort();
  // The newest release date: stable for the same store, and it only moves forward as releases are added.
  const date = new Date(Math.max(0, ...products.flatMap((product) => product.releases.map((release) => Date.parse(release.publishedAt))))).toISOString();

  const add = (file: SiteFile) => {
    files.push(file);
    paths[`/${file.key}`] = { type: 'file', key: file.key };
  };
  for (const { suite, channel } of APT_SUITES) {
    const dists = `${APT_ROOT}/dists/${suite}`;
    const listed = listings.filter((listing) => listing.release.status === 'active' && listing.release.channels.includes(channel));
    const indexes: IndexEntry[] = [];
    for (const component of components) {
      for (const arch of architectures) {
        const dir = `${component}/binary-${arch}`;
        const packages = listed
          .filter((listing) => listing.component === component && (listing.architecture === arch || listing.architecture === 'all'))
          .map(paragraphOf)
          .join('\n');
        for (const [name, body, contentType] of [
          ['Packages', packages, TEXT_TYPE],
          ['Packages.gz', gzipIndex(packages), GZIP_TYPE],
        ] as const) {
          const sha256 = sha256Hex(body);
          indexes.push({ name: `${dir}/${name}`, size: Buffer.byteLength(body), sha256 });
          add({ key: `${dists}/${dir}/${name}`, body, sha256, contentType, cacheControl: CACHE_SHORT, kind: 'package-index' });
          add({ key: `${dists}/${dir}/by-hash/SHA256/${sha256}`, body, sha256, contentType, cacheControl: CACHE_IMMUTABLE, kind: 'package-index' });
        }
      }
    }
    add({
      key: `${dists}/Release`,
      body: releaseFile({ site, suite, date, architectures, components, indexes }),
      contentType: TEXT_TYPE,
      cacheControl: CACHE_SHORT,
      kind: 'package-index',
      signAt: date,
      signedInto: { armored: `${dists}/Release.gpg`, clearsigned: `${dists}/InRelease` },
    });
  }
  return { files, paths };
}

/** Every .deb of a product with what the indexes need, in release order. */
function listingsOf(product: Product): Listing[] {
  const component = product.packages.apt.component;
  return product.releases.flatMap((release) =>
    release.artifacts.flatMap((artifact) => {
      if (artifact.format !== 'deb' || !artifact.deb) return [];
      const control = artifact.deb.control;
      const name = control['Package']!;
      const architecture = control['Architecture']!;
      if (architecture !== 'all' && architecture !== DEBIAN_ARCHITECTURES[artifact.arch]) {
        throw new Error(`${product.name} ${release.version}: ${artifact.filename} is listed for ${artifact.arch} but its control file says \`Architecture: ${architecture}\``);
      }
      // Pool names drop the epoch, as Debian's do.
      const version = control['Version']!.replace(/^\d+:/, '');
      const poolKey = `${APT_ROOT}/pool/${component}/${poolPrefix(name)}/${name}/${name}_${version}_${architecture}.deb`;
      return [{ release, component, architecture, control, poolKey, artifact }];
    }),
  );
}

/** Debian's pool directory: the first letter, or the first four for `lib*` packages. */
function poolPrefix(name: string): string {
  return name.startsWith('lib') && name.length > 3 ? name.slice(0, 4) : name.slice(0, 1);
}

/** A package's paragraph: its control fields, then where and what the file is. */
function paragraph(listing: Listing): string {
  let text = '';
  for (const [name, value] of Object.entries(listing.control)) {
    if (!REPOSITORY_FIELDS.has(name)) text += `${name}:${value.startsWith('\n') ? '' : ' '}${value}\n`;
  }
  return `${text}Filename: ${listing.poolKey.slice(APT_ROOT.length + 1)}\nSize: ${listing.artifact.size}\nSHA256: ${listing.artifact.sha256}\n`;
}

interface ReleaseInputs {
  site: SiteSettings;
  suite: string;
  date: string;
  architectures: string[];
  components: string[];
  indexes: IndexEntry[];
}

interface IndexEntry {
  name: string;
  size: number;
  sha256: string;
}

function releaseFile({ site, suite, date, architectures, components, indexes }: ReleaseInputs): string {
  const sizes = indexes.map((index) => String(index.size));
  const width = Math.max(...sizes.map((size) => size.length), 1);
  const origin = site.title.replace(/\s*\n\s*/g, ' ');
  return [
    `Origin: ${origin}`,
    `Label: ${origin}`,
    `Suite: ${suite}`,
    `Codename: ${suite}`,
    `Date: ${rfc2822(date)}`,
    `Architectures: ${architectures.join(' ')}`,
    `Components: ${components.join(' ')}`,
    'Acquire-By-Hash: yes',
    'SHA256:',
    ...indexes.map((index, i) => ` ${index.sha256} ${sizes[i]!.padStart(width)} ${index.name}`),
    '',
  ].join('\n');
}

/** `Sat, 06 Dec 2026 00:41:15 UTC`, as Debian's Release files date themselves. */
function rfc2822(iso: string): string {
  return new Date(iso).toUTCString().replace(/GMT$/, 'UTC');
}

