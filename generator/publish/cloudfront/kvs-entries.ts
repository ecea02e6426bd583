// The KeyValueStore contents for a route table (kvs-format.ts describes the layout), and
// CloudFront's limits checked before a deploy changes anything. Pure.
import { createHash } from 'node:crypto';
import type { EndpointRule, PathTarget, RouteRules, RouteTable } from '../../render/route-table.ts';
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
  for (const [key, value] of kvsEntryStream(table, [table.paths])) {
    if (entries.has(key)) throw new Error(`Two KeyValueStore entries for \`${key}\``);
    entries.set(key, value);
  }
  return entries;
}

/**
 * kvsEntries of a table whose paths come a part at a time, each let go of once read (a build's
 * units, read back from its route spill), so the table is never held whole. A part holds every
 * path of the binary minors' folders it has paths in, as a render's units do. Each entry once, in
 * no particular order.
 */
export function* kvsEntryStream(table: RouteRules, parts: Iterable<Record<string, PathTarget>>): Generator<[key: string, value: string]> {
  yield metaEntry(table);
  const shared = new Map<string, string>();
  const done = new Set<string>();
  for (const part of parts) for (const [key, value] of partEntries(part, shared, done)) yield [key, value];
  yield* endpointEntries(table);
}

/**
 * A part's entries as kvsEntryStream makes them, made without the parts before it, so that a
 * build can keep them with the part (in its render memo) and replay them (kvsEntriesOfParts)
 * instead of reading the part again. An entry of the files a minor's groups share is marked: the
 * stream makes it only for the first part that names it.
 */
export interface KvsPart {
  /** The binary minors' folders the part holds: no other part may hold paths in them. */
  folders: string[];
  entries: [key: string, value: string, shared?: 1][];
}

export function kvsPart(part: Record<string, PathTarget>): KvsPart {
  const folders = new Set<string>();
  return { entries: [...partEntries(part, new Map(), folders)], folders: [...folders] };
}

/** Two parts' groups whose files hash alike: only reading the parts again tells what kvsEntryStream makes then. */
export class KvsReplayError extends Error {
  constructor(key: string) {
    super(`Two parts share the files key ${key} for different files`);
    this.name = 'KvsReplayError';
  }
}

/**
 * kvsEntryStream's entries from each part's KvsPart, in the same order. A shared entry another part
 * made first is left out; one another part made with other files (a collision of the groups'
 * hashes, which changes what the stream makes) throws KvsReplayError.
 */
export function* kvsEntriesOfParts(table: RouteRules, parts: Iterable<KvsPart>): Generator<[key: string, value: string]> {
  yield metaEntry(table);
  const shared = new Map<string, string>();
  const done = new Set<string>();
  for (const part of parts) {
    for (const folder of part.folders) claimFolder(folder, done);
    for (const [key, value, isShared] of part.entries) {
      if (isShared) {
        const known = shared.get(key);
        if (known === value) continue;
        if (known !== undefined) throw new KvsReplayError(key);
        shared.set(key, value);
      }
      yield [key, value];
    }
  }
  yield* endpointEntries(table);
}

function metaEntry(table: RouteRules): [string, string] {
  const meta: KvsMeta = { patterns: table.endpoints.map((endpoint) => endpoint.pattern), fallbacks: table.fallbacks, errorCacheControl: table.errorCacheControl };
  return [META_KEY, JSON.stringify(meta)];
}

/** A part's entries, given the shared files and the folders of the parts before it; shared files' entries marked. */
function* partEntries(part: Record<string, PathTarget>, shared: Map<string, string>, done: Set<string>): Generator<[key: string, value: string, shared?: 1]> {
  const folders = new Map<string, Folder>();
  yield* ownEntries(part, folders);
  for (const [name, folder] of folders) {
    claimFolder(name, done);
    yield* folderEntries(name, folder, shared);
  }
}

function claimFolder(name: string, done: Set<string>): void {
  if (done.has(name)) throw new Error(`The paths of ${name} come from two parts of the route table`);
  done.add(name);
}

function* endpointEntries(table: RouteRules): Generator<[string, string]> {
  for (const endpoint of table.endpoints) {
    const { entries: answers, html, scopes, ...rule } = endpoint;
    yield [line(endpointKey(endpoint.pattern)), JSON.stringify(rule satisfies EndpointRule)];
    for (const [key, value] of Object.entries(answers)) {
      const alternative = html?.[value];
      yield [line(entryKey(key)), alternative === undefined ? line(value) : `${line(value)}\n${line(alternative)}`];
    }
    for (const path of scopes ?? []) yield [line(scopeKey(path)), '1'];
  }
}

/** The store's size as CloudFront counts it: the UTF-8 bytes of every key and value. */
export function kvsBytes(entries: Iterable<readonly [string, string]>): number {
  let total = 0;
  for (const [key, value] of entries) total += Buffer.byteLength(key) + Buffer.byteLength(value);
  return total;
}

/**
 * Every key and value within its quota, and the store within its total; the total in bytes. The
 * entries are read once, so they may come from kvsEntryStream.
 */
export function checkKvsLimits(entries: Iterable<readonly [string, string]>): number {
  const problems: string[] = [];
  let total = 0;
  let count = 0;
  for (const [key, value] of entries) {
    const keyBytes = Buffer.byteLength(key);
    const valueBytes = Buffer.byteLength(value);
    total += keyBytes + valueBytes;
    count++;
    if (keyBytes > KVS_LIMITS.keyBytes) problems.push(`key \`${key.slice(0, 80)}…\` is ${keyBytes} bytes, over ${KVS_LIMITS.keyBytes}`);
    if (valueBytes > KVS_LIMITS.valueBytes) problems.push(`the value of \`${key.slice(0, 80)}\` is ${valueBytes} bytes, over ${KVS_LIMITS.valueBytes}`);
  }
  if (total > KVS_LIMITS.storeBytes) problems.unshift(`${count} entries take ${total} bytes, over the store's ${KVS_LIMITS.storeBytes}`);
  if (problems.length > 0) throw new KvsLimitError(problems);
  return total;
}

/** A path of a minor's folder, as the edge would ask for it, and its target in the table. */
interface Asked {
  path: string;
  ask: FolderAsk;
  target: PathTarget;
}

/** A minor folder's paths: its listing, its files and its releases' pages. */
interface Folder {
  listing?: PathTarget | undefined;
  files: Asked[];
  pages: Asked[];
}

/** A release's files in its minor's folder, in the layout's terms (kvs-format.ts). */
interface ReleaseFiles {
  patch: string;
  /** Its page and its files. */
  paths: Asked[];
  /** Template, kind and target of each file, sorted by template: releases with the same share their group's files. */
  files: [name: string, kind: string, target: string][];
}

/** The entries of the paths outside binary minors' folders; the others go to their folder in `folders`. */
function* ownEntries(part: Record<string, PathTarget>, folders: Map<string, Folder>): Generator<[string, string]> {
  for (const path in part) {
    const target = part[path]!;
    const ask = folderAsk(path);
    if (ask === undefined) {
      yield [line(path), pathValue(path, target)];
      continue;
    }
    let folder = folders.get(ask.folder);
    if (!folder) folders.set(ask.folder, (folder = { files: [], pages: [] }));
    if (ask.name) folder.files.push({ path, ask, target });
    else if (ask.patch !== undefined) folder.pages.push({ path, ask, target });
    // Neither a file nor a page: the folder itself.
    else folder.listing = target;
  }
}

/**
 * A binary minor's entries: its value and the files its groups share (`shared`, across folders:
 * each key once), and their own entries for the paths the value does not cover. A file is covered
 * when its name holds its release's version once, and the object it is served from is named by the
 * rule of its kind. The value is checked by reading every path it covers back through
 * `folderTarget`, as the edge does; a minor where one reads back otherwise keeps every path. Groups
 * that would take a value past its quota keep theirs too.
 */
function* folderEntries(name: string, folder: Folder, shared: Map<string, string>): Generator<[key: string, value: string, shared?: 1]> {
  const { listing, files, pages } = folder;
  const covered = listing && readsBack(listing, decodePathValue(name, 'd')) ? minorValue(name, listing, files, pages, shared) : undefined;
  if (covered) yield* covered.entries;
  if (listing && !covered) yield [line(name), pathValue(name, listing)];
  for (const { path, target } of [...files, ...pages]) if (!covered?.paths.has(path)) yield [line(path), pathValue(path, target)];
}

/** The value of a minor whose listing reads back, the new shared files it names, and the paths it covers; undefined when it covers none. */
function minorValue(name: string, listing: PathTarget, files: Asked[], pages: Asked[], shared: Map<string, string>): { entries: [key: string, value: string, shared?: 1][]; paths: Set<string> } | undefined {
  const groups = new Map<string, { patches: string[]; releases: ReleaseFiles[] }>();
  for (const release of folderReleases(files, pages)) {
    const files = [release.files.map((file) => file[1]).join(''), packFiles(release.files.map((file) => file[0])), ...release.files.filter((file) => file[1] === 'o').map((file) => file[2])].join('\n');
    const group = groups.get(files);
    if (group) {
      group.patches.push(release.patch);
      group.releases.push(release);
    } else groups.set(files, { patches: [release.patch], releases: [release] });
  }
  // The largest groups first, while the value fits.
  const parts: string[] = [];
  const kept: ReleaseFiles[] = [];
  const sharing = new Map<string, string>();
  for (const [files, group] of [...groups].sort(([, a], [, b]) => b.patches.length - a.patches.length)) {
    const key = filesKey(createHash('sha256').update(files).digest('base64url').slice(0, HASH_CHARS));
    const part = `${group.patches.join(',')}:${key.slice(2)}`;
    if ((shared.get(key) ?? files) !== files || Buffer.byteLength(files) > KVS_LIMITS.valueBytes || Buffer.byteLength([...parts, part].join(';')) > KVS_LIMITS.valueBytes) continue;
    parts.push(part);
    kept.push(...group.releases);
    sharing.set(key, files);
  }
  if (parts.length === 0) return undefined;
  const value = parts.join(';');
  const read = (key: string) => sharing.get(key) ?? null;
  const asked = [{ path: name, ask: folderAsk(name)!, target: listing }, ...kept.flatMap((release) => release.paths)];
  if (!asked.every(({ path, ask, target }) => readsBack(target, folderTarget(path, ask, value, read)))) return undefined;
  const entries: [key: string, value: string, shared?: 1][] = [[releasesKey(name), value]];
  for (const [key, files] of sharing) {
    if (shared.has(key)) continue;
    shared.set(key, files);
    entries.push([key, files, 1]);
  }
  return { entries, paths: new Set(asked.map(({ path }) => path)) };
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
