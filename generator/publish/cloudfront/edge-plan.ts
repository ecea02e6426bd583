// What a deploy changes at the edge, computed before anything is sent: the KeyValueStore diff in
// batches CloudFront accepts, and the paths to invalidate. Pure.
import { isReleasesKey, keepingRemoved } from './kvs-format.ts';

/** `UpdateKeys` takes at most 50 puts and deletes together. */
export const KVS_BATCH = 50;

export interface KvsChanges {
  /** New or changed keys, ordered so that a key is put after the keys it points at. */
  puts: [string, string][];
  /**
   * Minor values put with the releases and files they lose still listed (`keepingRemoved`), and
   * these, their final values, put with the deletions.
   */
  settles: [string, string][];
  /** Keys the routes no longer have, removed after every put. */
  deletes: string[];
}

export interface KvsBatch {
  puts: { Key: string; Value: string }[];
  deletes: { Key: string }[];
}

/**
 * What to put and delete to take the store from `current` to `desired`. Like an object clients may
 * still find named in a cached listing, a release or file a minor's value no longer lists stays
 * listed until the deletions, which follow the invalidation.
 */
export function diffKvs(current: ReadonlyMap<string, string>, desired: ReadonlyMap<string, string>): KvsChanges {
  const puts: [string, string][] = [];
  const settles: [string, string][] = [];
  for (const [key, value] of desired) {
    const was = current.get(key);
    if (was === value) continue;
    const meanwhile = was !== undefined && isReleasesKey(key) ? keepingRemoved(was, value) : value;
    if (meanwhile !== was) puts.push([key, meanwhile]);
    if (meanwhile !== value) settles.push([key, value]);
  }
  // Shared files first, then paths and entries, then endpoint rules, then the pattern list that makes them reachable.
  puts.sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  const deletes = [...current.keys()].filter((key) => !desired.has(key)).sort();
  return { puts, settles, deletes };
}

export function kvsBatches(changes: Pick<KvsChanges, 'puts' | 'deletes'>, size = KVS_BATCH): KvsBatch[] {
  const batches: KvsBatch[] = [];
  for (let i = 0; i < changes.puts.length; i += size) batches.push({ puts: changes.puts.slice(i, i + size).map(([Key, Value]) => ({ Key, Value })), deletes: [] });
  for (let i = 0; i < changes.deletes.length; i += size) batches.push({ puts: [], deletes: changes.deletes.slice(i, i + size).map((Key) => ({ Key })) });
  return batches;
}

function rank(key: string): number {
  if (key.startsWith('~#')) return -1;
  if (key === ':routes') return 2;
  return key.startsWith(':endpoint:') ? 1 : 0;
}

/** CloudFront's limits on one distribution's invalidations in flight. */
const MAX_PATHS = 3000;
const MAX_WILDCARDS = 15;

/** Paths as given when within CloudFront's limits; past them, one wildcard for everything. */
export function withinInvalidationLimits(paths: string[]): string[] {
  const wildcards = paths.filter((p) => p.endsWith('*')).length;
  return paths.length > MAX_PATHS || wildcards > MAX_WILDCARDS ? ['/*'] : paths;
}

export interface InvalidationOptions {
  /** A folder becomes one wildcard path when at least this many of its files changed, and at least half of them. */
  collapseAt?: number;
  /** Wildcard paths CloudFront allows in flight per distribution. */
  maxWildcards?: number;
  /** File paths CloudFront allows in flight per distribution. */
  maxPaths?: number;
}

/**
 * The invalidation paths for changed object keys: one path per key, except that a folder where at
 * least `collapseAt` files changed, and at least half of all its files, becomes `/<folder>/*`
 * (shallowest first, at most `maxWildcards`). `all` is every key of the site, for that half.
 */
export function invalidationPaths(changed: string[], all: string[], { collapseAt = 10, maxWildcards = MAX_WILDCARDS, maxPaths = MAX_PATHS }: InvalidationOptions = {}): string[] {
  const unique = [...new Set(changed)].sort();
  const changedIn = countByFolder(unique);
  const totalIn = countByFolder([...new Set([...all, ...unique])]);
  const folders = [...changedIn.keys()].filter((folder) => changedIn.get(folder)! >= collapseAt && changedIn.get(folder)! * 2 >= totalIn.get(folder)!);
  folders.sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : 1));
  const wildcards: string[] = [];
  for (const folder of folders) {
    if (wildcards.length === maxWildcards) break;
    if (!wildcards.some((chosen) => folder.startsWith(chosen))) wildcards.push(folder);
  }
  const exact = unique.filter((key) => !wildcards.some((folder) => key.startsWith(folder)));
  // Past CloudFront's limit for file paths in flight, one wildcard for everything.
  if (exact.length + wildcards.length > maxPaths) return ['/*'];
  return [...wildcards.map((folder) => `/${folder}*`), ...exact.map((key) => `/${key}`)];
}

/** Changed files per folder prefix (`a/`, `a/b/`), every ancestor counted. */
function countByFolder(keys: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) {
    const parts = key.split('/');
    for (let i = 1; i < parts.length; i++) {
      const folder = `${parts.slice(0, i).join('/')}/`;
      counts.set(folder, (counts.get(folder) ?? 0) + 1);
    }
  }
  return counts;
}

function depth(folder: string): number {
  return folder.split('/').length;
}
