// The yum/dnf repositories, one per channel at /rpm/<channel>/, shared by every product with the
// rpm output: repodata/repomd.xml (signed into repomd.xml.asc), the primary, filelists and other
// indexes named by their hash as createrepo_c names them, and a .repo file per repository id for
// /etc/yum.repos.d. Each package's `location href` climbs from the repository to where the binary
// layout already serves it (`../../binary/releases/...`; dnf resolves it as a browser would), so
// the channels add no route per package. The XML is written
// by hand: three fixed shapes, where a builder library would add a dependency and no safety that
// `xml()` below does not give.
import { CHANNELS, type Artifact, type Channel, type Product, type Release, type SiteSettings } from '../../model/catalog.ts';
import type { RpmMetadata } from '../../packages/rpm.ts';
import { sha256Hex } from '../../stores/hash.ts';
import type { LayoutOutput } from '../binary.ts';
import { artifactPath } from '../binary.ts';
import type { PathTarget } from '../route-table.ts';
import { CACHE_IMMUTABLE, CACHE_SHORT, TEXT_TYPE, type SiteFile } from '../site-file.ts';
import { PGP_KEYS_KEY } from '../../trust/snapshot.ts';
import { GZIP_TYPE, gzipIndex } from './gzip.ts';
import { packageOrigin } from './origin.ts';

export const RPM_ROOT = 'rpm';

const XML_TYPE = 'application/xml';
interface RpmPackage {
  rpm: RpmMetadata;
  artifact: Artifact;
  release: Release;
  /** Relative to the repository's base, as `location href` wants: up to the site's root and down to the binary layout's path. */
  href: string;
}

export function renderRpmRepositories(products: Product[], site: SiteSettings): LayoutOutput {
  const output: LayoutOutput = { files: [], paths: {} };
  if (products.length === 0) return output;
  // A package in several channels is rendered once.
  const rendered = new Map<Artifact, PackageXml>();
  const xmlOf = (entry: RpmPackage) => {
    let xml = rendered.get(entry.artifact);
    if (!xml) rendered.set(entry.artifact, (xml = packageXml(entry)));
    return xml;
  };
  for (const channel of CHANNELS) {
    const base = `${RPM_ROOT}/${channel}`;
    const packages = packagesIn(products, channel);

    // One date for the whole repository, its newest package's, so an unchanged store renders the same
    // bytes; a channel with no package yet is still a valid, empty repository, dated by the products.
    const signAt = newest(packages.map((entry) => entry.release)) ?? newest(products.flatMap((product) => product.releases)) ?? new Date(0).toISOString();
    const timestamp = epochSeconds(signAt);

    const indexes = DOCUMENTS.map((shape) => {
      const open = Buffer.from(document(shape, packages.map(xmlOf)));
      const gz = gzipIndex(open);
      const checksum = sha256Hex(gz);
      const href = `repodata/${checksum}-${shape.type}.xml.gz`;
      return { type: shape.type, href, gz, checksum, openChecksum: sha256Hex(open), size: gz.length, openSize: open.length };
    });
    for (const index of indexes) addFile(output, { key: `${base}/${index.href}`, body: index.gz, sha256: index.checksum, contentType: GZIP_TYPE, cacheControl: CACHE_IMMUTABLE, kind: 'package-index' });

    const repomd = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">',
      `  <revision>${timestamp}</revision>`,
      ...indexes.flatMap((index) => [
        `  <data type="${index.type}">`,
        `    <checksum type="sha256">${index.checksum}</checksum>`,
        `    <open-checksum type="sha256">${index.openChecksum}</open-checksum>`,
        `    <location href="${index.href}"/>`,
        `    <timestamp>${timestamp}</timestamp>`,
        `    <size>${index.size}</size>`,
        `    <open-size>${index.openSize}</open-size>`,
        '  </data>',
      ]),
      '</repomd>',
      '',
    ].join('\n');
    addFile(output, {
      key: `${base}/repodata/repomd.xml`,
      body: repomd,
      contentType: XML_TYPE,
      cacheControl: CACHE_SHORT,
      kind: 'package-index',
      signAt,
      signedInto: { armored: `${base}/repodata/repomd.xml.asc` },
    });

    const origin = packageOrigin(site);
    for (const repository of new Set(products.map((product) => product.packages.rpm.repository))) {
      const repo = [
        `[${repository}]`,
        `name=${site.title} (${channel})`,
        `baseurl=${origin}/${base}/`,
        'enabled=1',
        // The mirror signs the repository, not the packages (their bytes are the publisher's own).
        // repomd.xml's signature covers every package's sha256, so dnf checks each download all the same.
        'repo_gpgcheck=1',
        'gpgcheck=0',
        `gpgkey=${origin}/${PGP_KEYS_KEY}`,
        '',
      ].join('\n');
      addFile(output, { key: `${base}/${repository}.repo`, body: repo, contentType: TEXT_TYPE, cacheControl: CACHE_SHORT, kind: 'package-index' });
    }
  }
  return output;
}

/**
 * Every active release's .rpm in the channel, by product, then version, then file order. Each sits
 * under its product and version, as agent-layout file names need not carry either; dnf saves it
 * under its own name.
 */
function packagesIn(products: Product[], channel: Channel): RpmPackage[] {
  return products.flatMap((product) =>
    product.releases
      .filter((release) => release.status === 'active' && release.channels.includes(channel))
      .flatMap((release) =>
        release.artifacts.flatMap((artifact) =>
          artifact.format === 'rpm' && artifact.rpm ? [{ rpm: artifact.rpm, artifact, release, href: `../..${artifactPath(product, release, artifact)}` }] : [],
        ),
      ),
  );
}

function addFile(output: LayoutOutput, file: SiteFile): void {
  output.files.push(file);
  output.paths[`/${file.key}`] = { type: 'file', key: file.key } satisfies PathTarget;
}

/** One package's entries in primary.xml, filelists.xml and other.xml, rendered once for every channel listing it. */
interface PackageXml {
  primary: string;
  filelists: string;
  other: string;
}

function packageXml({ rpm, artifact, release, href }: RpmPackage): PackageXml {
  const version = versionElement(rpm);
  const opening = `<package pkgid="${artifact.sha256}" name="${xml(rpm.name)}" arch="${xml(rpm.arch)}">\n  ${version}\n`;
  const primary =
    '<package type="rpm">\n' +
    `  <name>${xml(rpm.name)}</name>\n` +
    `  <arch>${xml(rpm.arch)}</arch>\n` +
    `  ${version}\n` +
    `  <checksum type="sha256" pkgid="YES">${artifact.sha256}</checksum>\n` +
    `  <summary>${xml(rpm.summary)}</summary>\n` +
    `  <description>${xml(rpm.description)}</description>\n` +
    `  <packager>${xml(rpm.packager)}</packager>\n` +
    `  <url>${xml(rpm.url)}</url>\n` +
    `  <time file="${epochSeconds(release.publishedAt)}" build="${rpm.buildtime}"/>\n` +
    `  <size package="${artifact.size}" installed="${rpm.installed_size}" archive="${rpm.archive_size}"/>\n` +
    `  <location href="${xml(href)}"/>\n` +
    '  <format>\n' +
    `    <rpm:license>${xml(rpm.license)}</rpm:license>\n` +
    `    <rpm:vendor>${xml(rpm.vendor)}</rpm:vendor>\n` +
    `    <rpm:group>${xml(rpm.group)}</rpm:group>\n` +
    `    <rpm:buildhost>${xml(rpm.buildhost)}</rpm:buildhost>\n` +
    `    <rpm:sourcerpm>${xml(rpm.sourcerpm)}</rpm:sourcerpm>\n` +
    `    <rpm:header-range start="${rpm.header_range.start}" end="${rpm.header_range.end}"/>\n` +
    dependencyList('provides', rpm.provides) +
    dependencyList('requires', [...rpm.requires_pre.map((text) => ({ text, pre: true })), ...rpm.requires]) +
    dependencyList('conflicts', rpm.conflicts) +
    dependencyList('obsoletes', rpm.obsoletes) +
    // primary.xml lists the files dependencies most often name; filelists.xml has the rest.
    fileElements(rpm, '    ', isPrimaryFile) +
    '  </format>\n' +
    '</package>\n';
  const filelists = `${opening}${fileElements(rpm, '  ', () => true)}</package>\n`;
  // The package keeps its changelog newest first; yum lists it oldest first.
  const changelog = [...rpm.changelog].reverse().map((entry) => `  <changelog author="${xml(entry.author)}" date="${entry.date}">${xml(entry.text)}</changelog>\n`);
  const other = `${opening}${changelog.join('')}</package>\n`;
  return { primary, filelists, other };
}

const DOCUMENTS: { type: keyof PackageXml; opening: string; element: string }[] = [
  { type: 'primary', opening: '<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm"', element: 'metadata' },
  { type: 'filelists', opening: '<filelists xmlns="http://linux.duke.edu/metadata/filelists"', element: 'filelists' },
  { type: 'other', opening: '<otherdata xmlns="http://linux.duke.edu/metadata/other"', element: 'otherdata' },
];

function document({ opening, element, type }: (typeof DOCUMENTS)[number], packages: PackageXml[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${opening} packages="${packages.length}">\n${packages.map((entry) => entry[type]).join('')}</${element}>\n`;
}

function versionElement(rpm: RpmMetadata): string {
  return `<version epoch="${rpm.epoch}" ver="${xml(rpm.version)}" rel="${xml(rpm.release)}"/>`;
}

const FLAGS: Record<string, string> = { '<': 'LT', '<=': 'LE', '=': 'EQ', '>=': 'GE', '>': 'GT' };

/** `name [OP [epoch:]version[-release]]` as an `rpm:entry`, split the way createrepo splits it (epoch 0 when absent). */
function dependencyList(kind: string, entries: (string | { text: string; pre: boolean })[]): string {
  if (entries.length === 0) return '';
  const entry = (item: string | { text: string; pre: boolean }) => {
    const { text, pre } = typeof item === 'string' ? { text: item, pre: false } : item;
    const [name = '', operator, evr] = text.split(' ');
    const attributes = [`name="${xml(name)}"`];
    if (operator && evr) {
      const [, epoch = '0', rest = evr] = /^(\d+):(.*)$/.exec(evr) ?? [];
      const dash = rest.lastIndexOf('-');
      attributes.push(`flags="${FLAGS[operator]}"`, `epoch="${epoch}"`, `ver="${xml(dash > 0 ? rest.slice(0, dash) : rest)}"`);
      if (dash > 0) attributes.push(`rel="${xml(rest.slice(dash + 1))}"`);
    }
    if (pre) attributes.push('pre="1"');
    return `      <rpm:entry ${attributes.join(' ')}/>\n`;
  };
  return `    <rpm:${kind}>\n${entries.map(entry).join('')}    </rpm:${kind}>\n`;
}

function fileElements(rpm: RpmMetadata, indent: string, include: (path: string) => boolean): string {
  const lines = (paths: string[], type: string) => paths.filter(include).map((path) => `${indent}<file${type}>${xml(path)}</file>\n`).join('');
  return lines(rpm.files, '') + lines(rpm.dirs, ' type="dir"') + lines(rpm.ghosts, ' type="ghost"');
}

/** createrepo's rule for the files primary.xml carries. */
function isPrimaryFile(path: string): boolean {
  return path.startsWith('/etc/') || path.includes('bin/') || path === '/usr/lib/sendmail';
}

const XML_SPECIAL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff&<>"]/;

/** Text and attribute values; characters XML 1.0 cannot carry at all are dropped. */
function xml(text: string): string {
  if (!XML_SPECIAL.test(text)) return text;
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function newest(releases: Release[]): string | undefined {
  return releases.map((release) => release.publishedAt).sort((a, b) => Date.parse(a) - Date.parse(b)).at(-1);
}

function epochSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}
