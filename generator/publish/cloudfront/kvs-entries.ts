// The KeyValueStore contents for a route table (kvs-format.ts describes the layout), and
// CloudFront's limits checked before a deploy changes anything. Pure.
import { createHash } from 'node:crypto';
import type { EndpointRule, PathTarget, RouteTable } from '../../render/route-table.ts';
import { META_KEY, decodePathValue, endpointKey, entryKey, filesKey, folderAsk, folderTarget, packFiles, releasesKey, scopeKey, type FolderAsk, type KvsMeta } from './kvs-format.ts';

/** CloudFront KeyValueStore quotas, in UTF-8 bytes. */
export const KVS_LIMITS = { keyBytes: 512, valueBytes: 1024, storeBytes: 5 * 1024 * 1024 };

export class KvsLimitError extends Error {
  constructor(problems: string[]) {
    const shown = problems.slice(0, 5).join('; ');
    super(`The route table does not fit a CloudFront KeyValueStore: ${shown}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`);
    this.name = 'KvsLimitError';
  }
}

export function kvsEntries(table: RouteTable): Map<string, string> {
  const entries = new Map<string, string>();
  const add = (key: string, value: string) => {
    if (entries.has(key)) throw new Error(`Two KeyValueStore entries for \`${key}\``);
    entries.set(line(key), value);
  };
  const meta: KvsMeta = { patterns: table.endpoints.map((endpoint) => endpoint.pattern), fallbacks: table.fallbacks, errorCacheControl: table.errorCacheControl };
  add(META_KEY, JSON.stringify(meta));
  // Enumerated once: the table's paths are a dictionary of up to a million keys at 100,000 releases.
  const paths = Object.keys(table.paths);
  const minors = minorValues(table, paths);
  for (const path of paths) if (!minors.covered.has(path)) add(path, pathValue(path, table.paths[path]!));
  for (const [key, value] of minors.values) add(key, value);
  for (const endpoint of table.endpoints) {
    const { entries: answers, html, scopes, ...rule } = endpoint;
    add(endpointKey(endpoint.pattern), JSON.stringify(rule satisfies EndpointRule));
    for (const [key, value] of Object.entries(answers)) {
      const alternative = html?.[value];
      add(entryKey(key), alternative === undefined ? line(value) : `${line(value)}\n${line(alternative)}`);
    }
    for (const path of scopes ?? []) add(scopeKey(path), '1');
  }
  return entries;
}

/** The store's size as CloudFront counts it: the UTF-8 bytes of every key and value. */
export function kvsBytes(entries: ReadonlyMap<string, string>): number {
  let total = 0;
  for (const [key, value] of entries) total += Buffer.byteLength(key) + Buffer.byteLength(value);
  return total;
}

/** Every key and value within its quota, and the store within its total; the total in bytes. */
export function checkKvsLimits(entries: ReadonlyMap<string, string>): number {
  const problems: string[] = [];
  const total = kvsBytes(entries);
  for (const [key, value] of entries) {
    const keyBytes = Buffer.byteLength(key);
    const valueBytes = Buffer.byteLength(value);
    if (keyBytes > KVS_LIMITS.keyBytes) problems.push(`key \`${key.slice(0, 80)}…\` is ${keyBytes} bytes, over ${KVS_LIMITS.keyBytes}`);
    if (valueBytes > KVS_LIMITS.valueBytes) problems.push(`the value of \`${key.slice(0, 80)}\` is ${valueBytes} bytes, over ${KVS_LIMITS.valueBytes}`);
  }
  if (total > KVS_LIMITS.storeBytes) problems.unshift(`${entries.size} entries take ${total} bytes, over the store's ${KVS_LIMITS.storeBytes}`);
  if (problems.length > 0) throw new KvsLimitError(problems);
  return total;
}

/** A path of a minor's folder, as the edge would ask for it, and its target in the table. */
interface Asked {
  path: string;
  ask: FolderAsk;
  target: PathTarget;
}

/** A release's files in its minor's folder, in the layout's terms (kvs-format.ts). */
interface ReleaseFiles {
  patch: string;
  /** Its page and its files. */
  paths: Asked[];
  /** Template, kind and target of each file, sorted by template: releases with the same share their group's files. */
  files: [name: string, kind: string, target: string][];
}

/**
 * Each binary minor's value and the files its groups share, with the paths those cover, which then
 * need no key of their own. A file is covered when its name holds its release's version once, and
 * the object it is served from is named by the rule of its kind; the others keep their own key.
 * Each minor's value is checked by reading every path it covers back through `folderTarget`, as the
 * edge does; a minor where one reads back otherwise keeps every path. Groups that would take a value
 * past its quota keep theirs too.
 */
function minorValues(table: RouteTable, paths: string[]): { values: Map<string, string>; covered: Set<string> } {
  const folders = new Map<string, { files: Asked[]; pages: Asked[] }>();
  for (const path of paths) {
    const ask = folderAsk(path);
    if (ask === undefined) continue;
    let folder = folders.get(ask.folder);
    if (!folder) folders.set(ask.folder, (folder = { files: [], pages: [] }));
    if (ask.name) folder.files.push({ path, ask, target: table.paths[path]! });
    else if (ask.patch !== undefined) folder.pages.push({ path, ask, target: table.paths[path]! });
  }
  const values = new Map<string, string>();
  const covered = new Set<string>();
  for (const [folder, { files, pages }] of folders) {
    // The value stands for the folder's own listing too: only where that is a `d` folder.
    const listing = table.paths[folder];
    if (!listing || !readsBack(listing, decodePathValue(folder, 'd'))) continue;
    const groups = new Map<string, { patches: string[]; releases: ReleaseFiles[] }>();
    for (const release of folderReleases(files, pages)) {
      const shared = [release.files.map((file) => file[1]).join(''), packFiles(release.files.map((file) => file[0])), ...release.files.filter((file) => file[1] === 'o').map((file) => file[2])].join('\n');
      const group = groups.get(shared);
      if (group) {
        group.patches.push(release.patch);
        group.releases.push(release);
      } else groups.set(shared, { patches: [release.patch], releases: [release] });
    }
    // The largest groups first, while the value fits.
    const parts: string[] = [];
    const kept: ReleaseFiles[] = [];
    const sharing = new Map<string, string>();
    for (const [shared, group] of [...groups].sort(([, a], [, b]) => b.patches.length - a.patches.length)) {
      const key = filesKey(createHash('sha256').update(shared).digest('base64url').slice(0, HASH_CHARS));
      const part = `${group.patches.join(',')}:${key.slice(2)}`;
      if ((values.get(key) ?? shared) !== shared || Buffer.byteLength(shared) > KVS_LIMITS.valueBytes || Buffer.byteLength([...parts, part].join(';')) > KVS_LIMITS.valueBytes) continue;
      parts.push(part);
      kept.push(...group.releases);
      sharing.set(key, shared);
    }
    if (parts.length === 0) continue;
    const value = parts.join(';');
    const read = (key: string) => sharing.get(key) ?? null;
    const asked = [{ path: folder, ask: folderAsk(folder)!, target: listing }, ...kept.flatMap((release) => release.paths)];
    if (!asked.every(({ path, ask, target }) => readsBack(target, folderTarget(path, ask, value, read)))) continue;
    values.set(releasesKey(folder), value);
    for (const [key, shared] of sharing) values.set(key, shared);
    for (const { path } of asked) covered.add(path);
  }
  return { values, covered };
}

/** Base64url characters of a group's hash: 48 bits, and two groups' colliding only costs them their keys. */
const HASH_CHARS = 8;

/** The releases of a minor whose pages redirect where the layout says, each with the files it can list. */
function folderReleases(files: Asked[], pages: Asked[]): ReleaseFiles[] {
  const releases = new Map<string, ReleaseFiles>();
  for (const page of pages) {
    const { ask, target } = page;
    if (target.type !== 'redirect' || target.location !== (decodePathValue(page.path, 'v') as { location: string }).location) continue;
    releases.set(`${ask.major}.${ask.minor}.${ask.patch}`, { patch: ask.patch!, paths: [page], files: [] });
  }
  // The version in a name is the longest of the minor's that it holds (`1.2.10` rather than `1.2.1`): tried longest first.
  const versions = [...releases.keys()].sort((a, b) => b.length - a.length);
  for (const file of files) {
    const name = file.ask.name!;
    const version = versions.find((each) => name.includes(each));
    if (version === undefined || name.includes('*') || !holdsOnce(name, version)) continue;
    const release = releases.get(version)!;
    const kind = kindOf(file, `releases/${file.ask.major}/${file.ask.minor}/${release.patch}/`, version);
    if (kind[0] === '') continue;
    release.files.push([name.replace(version, '*'), ...kind]);
    release.paths.push(file);
  }
  for (const release of releases.values()) release.files.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return [...releases.values()];
}

/** A file's kind and target in its minor's value, or an empty kind when it needs its own key; `blobs` is where the release's artifacts are, `releases/<M>/<m>/<patch>/`. */
function kindOf({ path, ask, target }: Asked, blobs: string, version: string): [kind: string, target: string] {
  const folder = ask.folder;
  if (target.type === 'blob') return target.blob === blobs + ask.name ? ['a', ''] : ['', ''];
  if (target.type !== 'file' || target.html !== undefined) return ['', ''];
  if (target.key === path.slice(1)) return ['f', ''];
  const name = target.key.slice(folder.length - 1);
  if (target.key.slice(0, folder.length - 1) !== folder.slice(1) || name.includes('/') || name.includes('*') || !holdsOnce(name, version)) return ['', ''];
  return ['o', name.replace(version, '*')];
}

/** Whether `name` holds `version` once (not again after it): a name the minor's value lists with `*` in its place. */
function holdsOnce(name: string, version: string): boolean {
  const at = name.indexOf(version);
  return at !== -1 && name.indexOf(version, at + version.length) === -1;
}

/** The edge's answer for a path, as the table's target is served from the bucket. */
function readsBack(target: PathTarget, read: PathTarget | undefined): boolean {
  if (target.type === 'redirect') return read?.type === 'redirect' && read.location === target.location;
  const key = target.type === 'blob' ? target.blob : target.key;
  const html = target.type === 'file' ? target.html : undefined;
  return read?.type === 'file' && read.key === key && read.html === html;
}

function pathValue(path: string, target: PathTarget): string {
  const own = path.slice(1);
  switch (target.type) {
    case 'redirect':
      return `r${line(target.location)}`;
    case 'blob':
      return `o${line(target.blob)}`;
    case 'file':
      if (target.html === undefined) return target.key === own ? 'f' : `o${line(target.key)}`;
      if (path.endsWith('/') && target.key === `${own}index.json` && target.html === `${own}index.html`) return 'd';
      return `h${line(target.key)}\n${line(target.html)}`;
  }
}

/** A line break would split a value in two (see the layout in kvs-format.ts). */
function line(text: string): string {
  if (text.includes('\n')) throw new Error(`Expected a route key or value without a line break, got \`${JSON.stringify(text)}\``);
  return text;
}
