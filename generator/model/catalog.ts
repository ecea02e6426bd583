// The typed model every later step works from. Built by load/, read by render/; no I/O here.
import semver from 'semver';
import type { Arch, Platform } from './platforms.ts';
import type { DebMetadata } from '../packages/deb.ts';
import type { RpmMetadata } from '../packages/rpm.ts';
import type { RegistryPackage } from './registry.ts';

export const CHANNELS = ['stable', 'latest'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Which API shape a product is published under. */
export type Layout = 'binary' | 'agent';

export interface SiteSettings {
  title: string;
  /** Absolute origin put in front of redirect targets; empty keeps them relative to the site. */
  baseUrl: string;
}

/** What an artifact is, from its file name: what package managers pick from a release. */
export type ArtifactFormat = 'archive' | 'deb' | 'rpm' | 'file';

export interface Artifact {
  platform: Platform;
  arch: Arch;
  format: ArtifactFormat;
  filename: string;
  size: number;
  sha256: string;
  contentType: string;
  /** Key of the bytes in the blob store. */
  blob: string;
  /** A .deb's control fields, an .rpm's header fields: what apt and yum indexes list. */
  deb?: DebMetadata;
  rpm?: RpmMetadata;
}

export interface Release {
  version: string;
  major: number;
  minor: number;
  patch: number;
  prerelease: boolean;
  publishedAt: string;
  channels: Channel[];
  notesUrl: string | null;
  status: 'active' | 'yanked';
  artifacts: Artifact[];
}

export interface Product {
  name: string;
  title: string;
  description: string;
  homepage: string | null;
  layout: Layout;
  /** Binary layout: artifact names are `<filePrefix>_<version>_<platform>_<arch>.<ext>`. */
  filePrefix: string;
  /** Package-manager outputs and their settings; `outputs` empty for none. */
  packages: PackageSettings;
  /** Ascending semver precedence. */
  releases: Release[];
}

export type PackageOutput = 'install-script' | 'homebrew' | 'scoop' | 'apt' | 'rpm';

export interface PackageSettings {
  outputs: PackageOutput[];
  /** The package's name in every package manager; the product's name by default. */
  name: string;
  /** The executable inside each archive; the product's name by default. */
  binary: string;
  /** The executable inside Windows archives; `<binary>.exe` by default. */
  windowsBinary: string;
  license: string | null;
  apt: { component: string };
  /** The rpm repository's id; the package name by default. */
  rpm: { repository: string };
}

/** An artifact's format, from its file name. */
export function formatOf(filename: string): ArtifactFormat {
  if (filename.endsWith('.deb')) return 'deb';
  if (filename.endsWith('.rpm')) return 'rpm';
  if (/\.(zip|tar\.gz|tgz|tar\.xz|tar\.zst)$/.test(filename)) return 'archive';
  return 'file';
}

export interface Catalog {
  site: SiteSettings;
  /** Sorted by name. */
  products: Product[];
  /** Agent packages (seed 003), sorted by scope, then name. */
  registry: RegistryPackage[];
}

/** The channels a release belongs to when its file lists none. */
export function defaultChannels(version: string): Channel[] {
  return semver.prerelease(version) ? ['latest'] : ['stable', 'latest'];
}

/** The newest active release in a channel, or undefined; yanked releases never resolve. */
export function resolveChannel(product: Product, channel: Channel, usable: (release: Release) => boolean = () => true): Release | undefined {
  for (let i = product.releases.length - 1; i >= 0; i--) {
    const release = product.releases[i]!;
    if (release.status === 'active' && release.channels.includes(channel) && usable(release)) return release;
  }
  return undefined;
}

/** The channel a release is presented under: its most conservative one. */
export function primaryChannel(release: Release): Channel {
  return release.channels.includes('stable') ? 'stable' : 'latest';
}

/** Sorts by semver precedence, ascending; parses each version once. */
export function sortBySemver<T extends { version: string }>(items: T[]): T[] {
  return items
    .map((item) => ({ item, parsed: new semver.SemVer(item.version) }))
    .sort((a, b) => a.parsed.compare(b.parsed))
    .map(({ item }) => item);
}
