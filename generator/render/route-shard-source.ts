// The route table read from its shards (publish/route-shards.ts writes them into each build
// folder): the paths split by a hash of the path, one file a shard, and the rest of the table in an
// index. `shardSource` reads a shard the first time a lookup needs it: the sidecar parses it and
// keeps it for as long as the build is current; nginx's njs module, which keeps nothing from one
// request to the next, reads the one or two shards a request needs as bytes and finds the path's
// member in them (`shardMember`) instead of holding the whole table. The file facts
// (publish/file-shards.ts) are sharded and read the same way (`shardLookup`).
// Written in the JavaScript njs parses (see resolve.ts).
import { tableSource, type RouteSource } from './resolve.ts';
import type { PathTarget, RouteRules } from './route-table.ts';

export const ROUTE_SHARDS_DIR = 'routes';
export const ROUTE_SHARD_INDEX = 'index.json';

/** The table without its paths, and how many shards (a power of two) hold those. */
export type RouteShardIndex = RouteRules & { shards: number };

/** The shard file a path's target is in, of `shards`: the low bits of its FNV-1a hash. */
export function shardOf(path: string, shards: number): string {
  return shardName(shardNumber(path, shards));
}

export function shardNumber(path: string, shards: number): number {
  return pathHash(path) & (shards - 1);
}

/** A path's FNV-1a hash, whose low bits pick its shard. */
export function pathHash(path: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) hash = Math.imul(hash ^ path.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

/** Shard `n`'s file name. */
export function shardName(n: number): string {
  return `${n.toString(16).padStart(3, '0')}.json`;
}

/**
 * A RouteSource over a sharded table: `read` gives a shard by its file name, once each, and `find`
 * a path's target in it.
 */
export function shardSource<Shard>(index: RouteShardIndex, read: (name: string) => Shard, find: (shard: Shard, path: string) => PathTarget | undefined): RouteSource {
  const source = tableSource({ version: index.version, paths: {}, endpoints: index.endpoints, fallbacks: index.fallbacks, errorCacheControl: index.errorCacheControl });
  source.path = shardLookup(index.shards, read, find);
  return source;
}

/**
 * A key's value in a table split into `shards` by a hash of the key (the route table's paths, the
 * file facts): `read` gives a shard by its file name, once each, and `find` the key's value in it.
 */
export function shardLookup<Shard, Value>(shards: number, read: (name: string) => Shard, find: (shard: Shard, key: string) => Value | undefined): (key: string) => Value | undefined {
  const held: Record<string, Shard> = {};
  return (key) => {
    const name = shardOf(key, shards);
    if (!Object.prototype.hasOwnProperty.call(held, name)) held[name] = read(name);
    return find(held[name]!, key);
  };
}

/** A parsed shard's value for `key`. */
export function ownMember<Value>(shard: Record<string, Value>, key: string): Value | undefined {
  return Object.prototype.hasOwnProperty.call(shard, key) ? shard[key] : undefined;
}

/**
 * A shard's value for `path` (a route's target, a file's facts) found in its bytes, without parsing
 * the rest (a tenth of the time in njs): the last member named `path`, as JSON.parse keeps the
 * last of a name given twice, its value the object that follows, found by its braces outside
 * strings. A member's name is the path as JSON.stringify writes it, then `:`, which in JSON follows
 * a name and never a value.
 */
export function shardMember<Value = PathTarget>(shard: Buffer, path: string): Value | undefined {
  const name = `${JSON.stringify(path)}:`;
  let at = shard.lastIndexOf(name);
  // Not a quote escaped inside another name (a path holding `"`).
  while (at > 0 && escaped(shard, at)) at = shard.lastIndexOf(name, at - 1);
  if (at === -1) return undefined;
  const start = at + Buffer.byteLength(name);
  let depth = 0;
  let quoted = false;
  for (let i = start; i < shard.length; i++) {
    const byte = shard[i];
    if (quoted) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) quoted = false;
    } else if (byte === QUOTE) quoted = true;
    else if (byte === OPEN) depth++;
    else if (byte === CLOSE && --depth === 0) return JSON.parse(shard.subarray(start, i + 1).toString()) as Value;
  }
  throw new Error(`A shard's member for ${path} does not end`);
}

/** Whether the byte at `at` follows an odd run of backslashes. */
function escaped(shard: Buffer, at: number): boolean {
  let backslashes = 0;
  while (at - backslashes > 0 && shard[at - backslashes - 1] === BACKSLASH) backslashes++;
  return backslashes % 2 === 1;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
