// How the route table is laid out in a CloudFront KeyValueStore, and read back at the edge. The
// CloudFront function bundles this file, so it keeps to the JavaScript subset resolve.ts describes.
//
// Keys: a path (`/…`) holds its target; `~<p>/<M>/<m>` the releases of a binary minor and
// `~#<hash>` the files they share (below); `?` + lookup key an endpoint's entry; `!` + path marks an
// endpoint scope; `:routes` the patterns, fallbacks and error cache policy; `:endpoint:` + pattern
// one endpoint's rule. At the edge every target is an object of the bucket, so an artifact is a
// file whose key is its blob key. Values are short, because the store holds at most 5 MB:
//   `d`               a folder: `<path>index.json`, or `<path>index.html` for browsers
//   `f`               the object whose key is the path without its leading `/`
//   `o<key>`          the object `<key>`
//   `h<key>\n<html>`  the object `<key>`, or `<html>` for browsers
//   `r<location>`     a 302 to `<location>`
//   `v<files>`        a binary release's page, a 302 to its section of the minor page (written by
//                     earlier versions; read until the deploy that replaces them ends)
// A binary minor's folder, `/binary/releases/<p>/<M>/<m>/`, and what is in it have no key of their
// own: 100,000 releases would not fit otherwise. `~<p>/<M>/<m>` lists the minor's releases in
// groups, `<patches>:<hash>` joined by `;`, the patches (`<patch>` of `<M>.<m>.<patch>`)
// comma-separated; the releases of a group have the same files but for the version, listed once for
// the whole store under `~#<hash>`, in lines:
//   kinds    a letter a file: `a` an artifact, the object `releases/<M>/<m>/<patch>/<name>`;
//            `f` the object whose key is the path; `o` the object named by the next target line
//   names    the files' names, `*` where the version goes, packed by `packFiles`
//   targets  one line an `o` file: the object's name in the folder, `*` where the version goes
// The folder itself is a `d` folder, and a release listed has its page,
// `/binary/releases/<p>/<M>.<m>.<patch>/`, a 302 to its section of the minor page. A minor costs a
// key and a few bytes a group, a release the digits of its patch.
import type { EndpointRule, Fallback, PathTarget } from '../../render/route-table.ts';
import type { RouteSource } from '../../render/resolve.ts';

export const META_KEY = ':routes';

export interface KvsMeta {
  patterns: string[];
  fallbacks: Fallback[];
  errorCacheControl: string;
}

export function endpointKey(pattern: string): string {
  return `:endpoint:${pattern}`;
}

export function entryKey(lookupKey: string): string {
  return `?${lookupKey}`;
}

export function scopeKey(path: string): string {
  return `!${path}`;
}

const BINARY_RELEASES = '/binary/releases/';

/** The key of a minor's releases, from its folder. */
export function releasesKey(folder: string): string {
  return `~${folder.slice(BINARY_RELEASES.length, -1)}`;
}

export function isReleasesKey(key: string): boolean {
  return key.charAt(0) === '~' && key.charAt(1) !== '#';
}

/**
 * A minor's value `desired`, then the groups of `current` for the releases it no longer lists with
 * the same files: the edge, which takes the first group that names a file, then finds the old
 * files as well as the new. Just `desired` when the union would not fit a value.
 */
export function keepingRemoved(current: string, desired: string): string {
  const listed: Record<string, true> = {};
  const groups = desired.split(';');
  for (let g = 0; g < groups.length; g++) {
    const split = groups[g]!.lastIndexOf(':');
    const patches = groups[g]!.slice(0, split).split(',');
    for (let p = 0; p < patches.length; p++) listed[`${patches[p]}:${groups[g]!.slice(split + 1)}`] = true;
  }
  const kept = current.split(';').map((group) => {
    const split = group.lastIndexOf(':');
    const hash = group.slice(split + 1);
    const gone = group.slice(0, split).split(',').filter((patch) => !listed[`${patch}:${hash}`]);
    return gone.length === 0 ? '' : `${gone.join(',')}:${hash}`;
  });
  const union = [desired].concat(kept.filter((group) => group !== '')).join(';');
  return union.length > VALUE_CHARS ? desired : union;
}

/** A minor's value is ASCII (patches and hashes): CloudFront's 1,024 bytes a value. */
const VALUE_CHARS = 1024;

/** The key of the files a group of releases shares. */
export function filesKey(hash: string): string {
  return `~#${hash}`;
}

/** A path a minor's value may answer: the minor's folder or a file in it, or a release's page. */
export interface FolderAsk {
  /** The minor's folder, `/binary/releases/<p>/<M>/<m>/`. */
  folder: string;
  major: string;
  minor: string;
  /** A file of the folder asked for, by name; empty for the folder itself. */
  name: string | undefined;
  /** A release's page asked for, by the patch of its version. */
  patch: string | undefined;
}

export function folderAsk(path: string): FolderAsk | undefined {
  const match = /^(\/binary\/releases\/[^/]+\/)(0|[1-9][0-9]*)(?:\/(0|[1-9][0-9]*)\/([^/]*)|\.(0|[1-9][0-9]*)\.([^/]+)\/)$/.exec(path);
  if (!match) return undefined;
  const minor = match[3] === undefined ? match[5]! : match[3];
  return { folder: `${match[1]}${match[2]}/${minor}/`, major: match[2]!, minor: minor, name: match[4], patch: match[6] };
}

/**
 * What a minor's value (`releases`, under `releasesKey`) says `path` is, or undefined when it does
 * not list it; `read` gives a group's shared files.
 */
export function folderTarget(path: string, ask: FolderAsk, releases: string, read: (key: string) => string | null): PathTarget | undefined {
  if (ask.name === '') return decodePathValue(path, 'd');
  const groups = releases.split(';');
  const release = `${ask.major}.${ask.minor}.`;
  for (let g = 0; g < groups.length; g++) {
    const split = groups[g]!.lastIndexOf(':');
    const patches = groups[g]!.slice(0, split).split(',');
    if (ask.patch !== undefined) {
      if (patches.indexOf(ask.patch) !== -1) return { type: 'redirect', location: releaseSection(path) };
      continue;
    }
    const shared = read(filesKey(groups[g]!.slice(split + 1)));
    if (shared === null) continue;
    const lines = shared.split('\n');
    const kinds = lines[0]!;
    const names = unpackFiles(lines[1]!);
    const name = ask.name!;
    let targets = 2;
    for (let i = 0; i < names.length; i++) {
      const kind = kinds.charAt(i);
      const target = kind === 'o' ? lines[targets++]! : '';
      const star = names[i]!.indexOf('*');
      const before = names[i]!.slice(0, star);
      const after = names[i]!.slice(star + 1);
      if (name.length <= before.length + after.length || name.slice(0, before.length) !== before || name.slice(name.length - after.length) !== after) continue;
      const version = name.slice(before.length, name.length - after.length);
      const patch = version.slice(release.length);
      if (version.slice(0, release.length) !== release || patches.indexOf(patch) === -1) continue;
      if (kind === 'a') return { type: 'file', key: `releases/${ask.major}/${ask.minor}/${patch}/${name}` };
      if (kind === 'f') return { type: 'file', key: path.slice(1) };
      return { type: 'file', key: ask.folder.slice(1) + target.split('*').join(version) };
    }
  }
  return undefined;
}

/** File names as `<common prefix>/<rest>/<rest>…`: a file name holds no `/`. */
export function packFiles(files: string[]): string {
  let prefix = files.length > 0 ? files[0]! : '';
  for (let i = 1; i < files.length; i++) while (files[i]!.indexOf(prefix) !== 0) prefix = prefix.slice(0, -1);
  return [prefix].concat(files.map((file) => file.slice(prefix.length))).join('/');
}

export function unpackFiles(packed: string): string[] {
  const parts = packed.split('/');
  return parts.slice(1).map((rest) => parts[0] + rest);
}

/** Where a binary release's page redirects: its section of the minor page. */
function releaseSection(path: string): string {
  const match = /^(\/binary\/releases\/[^/]+\/)(([0-9]+)\.([0-9]+)\.[^/]+)\/$/.exec(path);
  if (!match) throw new Error(`${path} is not a binary release's page`);
  return `${match[1]}${match[3]}/${match[4]}/#v${match[2]}`;
}

export function decodePathValue(path: string, value: string): PathTarget {
  const kind = value.charAt(0);
  const rest = value.slice(1);
  if (kind === 'd') return { type: 'file', key: `${path.slice(1)}index.json`, html: `${path.slice(1)}index.html` };
  if (kind === 'f') return { type: 'file', key: path.slice(1) };
  if (kind === 'o') return { type: 'file', key: rest };
  if (kind === 'h') {
    const split = rest.indexOf('\n');
    return { type: 'file', key: rest.slice(0, split), html: rest.slice(split + 1) };
  }
  if (kind === 'r') return { type: 'redirect', location: rest };
  if (kind === 'v') return { type: 'redirect', location: releaseSection(path) };
  throw new Error(`Unknown route value \`${value}\` for ${path}`);
}

/** An entry's value: the location or file key, and after a newline the file's browser alternative. */
export function decodeEntryValue(value: string): { value: string; html: string | undefined } {
  const split = value.indexOf('\n');
  return split === -1 ? { value: value, html: undefined } : { value: value.slice(0, split), html: value.slice(split + 1) };
}

/**
 * A RouteSource over the store, read through `read`: the value of a key, null when the store
 * lacks it. `read` throws for a key not fetched yet; the function fetches it and resolves again.
 */
export function kvsSource(read: (key: string) => string | null): RouteSource {
  let meta: KvsMeta | undefined;
  const rules: Record<string, EndpointRule> = {};
  const routes = (): KvsMeta => {
    if (meta === undefined) {
      const value = read(META_KEY);
      if (value === null) throw new Error(`The store lacks ${META_KEY}: no deploy has filled it yet`);
      meta = JSON.parse(value) as KvsMeta;
    }
    return meta;
  };
  const rule = (index: number): EndpointRule => {
    const pattern = routes().patterns[index]!;
    if (!Object.prototype.hasOwnProperty.call(rules, pattern)) {
      const value = read(endpointKey(pattern));
      if (value === null) throw new Error(`The store lacks the rule of endpoint ${pattern}`);
      rules[pattern] = JSON.parse(value) as EndpointRule;
    }
    return rules[pattern]!;
  };
  return {
    path: (path) => {
      const value = read(path);
      if (value !== null) return decodePathValue(path, value);
      const ask = folderAsk(path);
      const releases = ask === undefined ? null : read(releasesKey(ask.folder));
      return ask === undefined || releases === null ? undefined : folderTarget(path, ask, releases, read);
    },
    patterns: () => routes().patterns,
    endpoint: rule,
    entry: (_index, key) => {
      const value = read(entryKey(key));
      return value === null ? undefined : decodeEntryValue(value);
    },
    inScope: (_index, path) => read(scopeKey(path)) !== null,
    fallbacks: () => routes().fallbacks,
    errorCacheControl: () => routes().errorCacheControl,
  };
}
