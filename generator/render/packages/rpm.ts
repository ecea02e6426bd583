// The yum/dnf repositories, one per channel at /rpm/<channel>/, shared by every product with the
// rpm output: repodata/repomd.xml (signed into repomd.xml.asc), the primary, filelists and other
// indexes named by their hash as createrepo_c names them, the packages under Packages/ straight
// from the blob store, and a .repo file per repository id for /etc/yum.repos.d. The XML is written
// by hand: three fixed shapes, where a builder library would add a dependency and no safety that
// `xml()` below does not give.
import { gzipSync } from 'node:zlib';
import { CHANNELS, type Artifact, type Channel, type Product, type Release, type SiteSettings } from '../../model/catalog.ts';
import type { RpmMetadata } from '../../packages/rpm.ts';
import { sha256Hex } from '../../stores/hash.ts';
import type { LayoutOutput } from '../binary.ts';
import { blobTarget, type PathTarget } from '../route-table.ts';
import { CACHE_IMMUTABLE, CACHE_SHORT, TEXT_TYPE, type SiteFile } from '../site-file.ts';
import { PGP_KEYS_KEY } from '../../trust/snapshot.ts';
import { packageOrigin } from './origin.ts';

export const RPM_ROOT = 'rpm';

const XML_TYPE = 'application/xml';
const GZIP_TYPE = 'application/gzip';

interface RpmPackage {
  rpm: RpmMetadata;
  artifact: Artifact;
  release: Release;
  /** Relative to the repository's base, as `location href` wants. */
  href: string;
}

export function renderRpmRepositories(products: Product[], site: SiteSettings): LayoutOutput {
  const output: LayoutOutput = { files: [], paths: {} };
  if (products.length === 0) return output;
  for (const channel of CHANNELS) {
    const base = `${RPM_ROOT}/${channel}`;
    const packages = packagesIn(products, channel);
    for (const { artifact, href } of packages) output.paths[`/${base}/${href}`] = blobTarget(artifact);

    // One date for the whole repository, its newest package's, so an unchanged store renders the same
    // bytes; a channel with no package yet is still a valid, empty repository, dated by the products.
    const signAt = newest(packages.map((entry) => entry.release)) ?? newest(products.flatMap((product) => product.releases)) ?? new Date(0).toISOString();
    const timestamp = epochSeconds(signAt);

    const indexes = [
      { type: 'primary', xml: primaryXml(packages) },
      { type: 'filelists', xml: filelistsXml(packages) },
      { type: 'other', xml: otherXml(packages) },
    ].map(({ type, xml }) => {
      const open = Buffer.from(xml);
      // gzip's header carries no file name and a zero mtime here, so equal input gives equal bytes.
      const gz = gzipSync(open, { level: 9 });
      const checksum = sha256Hex(gz);
      const href = `repodata/${checksum}-${type}.xml.gz`;
      return { type, href, gz, checksum, openChecksum: sha256Hex(open), size: gz.length, openSize: open.length };
    });
    for (const index of indexes) addFile(output, { key: `${base}/${index.href}`, body: index.gz, contentType: GZIP_TYPE, cacheControl: CACHE_IMMUTABLE, kind: 'package-index' });

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
          artifact.format === 'rpm' && artifact.rpm ? [{ rpm: artifact.rpm, artifact, release, href: `Packages/${product.name}/${release.version}/${artifact.filename}` }] : [],
        ),
      ),
  );
}

function addFile(output: LayoutOutput, file: SiteFile): void {
  output.files.push(file);
  output.paths[`/${file.key}`] = { type: 'file', key: file.key } satisfies PathTarget;
}

function primaryXml(packages: RpmPackage[]): string {
  const body = packages.flatMap(({ rpm, artifact, release, href }) => [
    '<package type="rpm">',
    `  <name>${xml(rpm.name)}</name>`,
    `  <arch>${xml(rpm.arch)}</arch>`,
    `  ${versionElement(rpm)}`,
    `  <checksum type="sha256" pkgid="YES">${artifact.sha256}</checksum>`,
    `  <summary>${xml(rpm.summary)}</summary>`,
    `  <description>${xml(rpm.description)}</description>`,
    `  <packager>${xml(rpm.packager)}</packager>`,
    `  <url>${xml(rpm.url)}</url>`,
    `  <time file="${epochSeconds(release.publishedAt)}" build="${rpm.buildtime}"/>`,
    `  <size package="${artifact.size}" installed="${rpm.installed_size}" archive="${rpm.archive_size}"/>`,
    `  <location href="${xml(href)}"/>`,
    '  <format>',
    `    <rpm:license>${xml(rpm.license)}</rpm:license>`,
    `    <rpm:vendor>${xml(rpm.vendor)}</rpm:vendor>`,
    `    <rpm:group>${xml(rpm.group)}</rpm:group>`,
    `    <rpm:buildhost>${xml(rpm.buildhost)}</rpm:buildhost>`,
    `    <rpm:sourcerpm>${xml(rpm.sourcerpm)}</rpm:sourcerpm>`,
    `    <rpm:header-range start="${rpm.header_range.start}" end="${rpm.header_range.end}"/>`,
    ...dependencyList('provides', rpm.provides),
    ...dependencyList('requires', [...rpm.requires_pre.map((text) => ({ text, pre: true })), ...rpm.requires]),
    ...dependencyList('conflicts', rpm.conflicts),
    ...dependencyList('obsoletes', rpm.obsoletes),
    // primary.xml lists the files dependencies most often name; filelists.xml has the rest.
    ...fileElements(rpm, isPrimaryFile).map((line) => `    ${line}`),
    '  </format>',
    '</package>',
  ]);
  return document('<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm"', 'metadata', packages.length, body);
}

function filelistsXml(packages: RpmPackage[]): string {
  const body = packages.flatMap(({ rpm, artifact }) => [packageOpening(rpm, artifact), `  ${versionElement(rpm)}`, ...fileElements(rpm, () => true).map((line) => `  ${line}`), '</package>']);
  return document('<filelists xmlns="http://linux.duke.edu/metadata/filelists"', 'filelists', packages.length, body);
}

function otherXml(packages: RpmPackage[]): string {
  const body = packages.flatMap(({ rpm, artifact }) => [
    packageOpening(rpm, artifact),
    `  ${versionElement(rpm)}`,
    // The package keeps its changelog newest first; yum lists it oldest first.
    ...[...rpm.changelog].reverse().map((entry) => `  <changelog author="${xml(entry.author)}" date="${entry.date}">${xml(entry.text)}</changelog>`),
    '</package>',
  ]);
  return document('<otherdata xmlns="http://linux.duke.edu/metadata/other"', 'otherdata', packages.length, body);
}

function document(opening: string, element: string, count: number, body: string[]): string {
  return ['<?xml version="1.0" encoding="UTF-8"?>', `${opening} packages="${count}">`, ...body, `</${element}>`, ''].join('\n');
}

function packageOpening(rpm: RpmMetadata, artifact: Artifact): string {
  return `<package pkgid="${artifact.sha256}" name="${xml(rpm.name)}" arch="${xml(rpm.arch)}">`;
}

function versionElement(rpm: RpmMetadata): string {
  return `<version epoch="${rpm.epoch}" ver="${xml(rpm.version)}" rel="${xml(rpm.release)}"/>`;
}

const FLAGS: Record<string, string> = { '<': 'LT', '<=': 'LE', '=': 'EQ', '>=': 'GE', '>': 'GT' };

/** `name [OP [epoch:]version[-release]]` as an `rpm:entry`, split the way createrepo splits it (epoch 0 when absent). */
function dependencyList(kind: string, entries: (string | { text: string; pre: boolean })[]): string[] {
  if (entries.length === 0) return [];
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
    return `      <rpm:entry ${attributes.join(' ')}/>`;
  };
  return [`    <rpm:${kind}>`, ...entries.map(entry), `    </rpm:${kind}>`];
}

function fileElements(rpm: RpmMetadata, include: (path: string) => boolean): string[] {
  return [
    ...rpm.files.filter(include).map((path) => `<file>${xml(path)}</file>`),
    ...rpm.dirs.filter(include).map((path) => `<file type="dir">${xml(path)}</file>`),
    ...rpm.ghosts.filter(include).map((path) => `<file type="ghost">${xml(path)}</file>`),
  ];
}

/** createrepo's rule for the files primary.xml carries. */
function isPrimaryFile(path: string): boolean {
  return path.startsWith('/etc/') || path.includes('bin/') || path === '/usr/lib/sendmail';
}

/** Text and attribute values; characters XML 1.0 cannot carry at all are dropped. */
function xml(text: string): string {
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
