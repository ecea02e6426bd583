// The route table read from its shards (publish/route-shards.ts writes them into each build
// folder): the paths split by a hash of the path, one file a shard, and the rest of the table in an
// index. `shardSource` reads a shard the first time a lookup needs it: the sidecar keeps what it
// read for as long as the build is current; nginx's njs module, which keeps nothing from one request
// to the next, reads the one or two shards a request needs instead of holding the whole table.
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

/** A RouteSource over a sharded table: `read` gives a shard's paths by its file name, once each. */
export function shardSource(index: RouteShardIndex, read: (name: string) => Record<string, PathTarget>): RouteSource {
  const source = tableSource({ version: index.version, paths: {}, endpoints: index.endpoints, fallbacks: index.fallbacks, errorCacheControl: index.errorCacheControl });
  const shards: Record<string, Record<string, PathTarget>> = {};
  source.path = (wanted) => {
    const name = shardOf(wanted, index.shards);
    if (!Object.prototype.hasOwnProperty.call(shards, name)) shards[name] = read(name);
    const paths = shards[name]!;
    return Object.prototype.hasOwnProperty.call(paths, wanted) ? paths[wanted] : undefined;
  };
  return source;
}
