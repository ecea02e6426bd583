// The route table as the sidecar reads it: its paths split into shards by a hash of the path, and
// the rest (endpoints, fallbacks) in an index, written beside routes.json in each build folder. A
// server swapping in a new build reads the small index, and a shard the first time a request
// needs it, instead of parsing the whole table (21 MB at 10,000 releases) on its event loop. Pure.
import type { PathTarget, RouteTable } from '../render/route-table.ts';

export const ROUTE_SHARDS_DIR = 'routes';
export const ROUTE_SHARD_INDEX = 'index.json';
/** Paths per shard, about: 80 KB of JSON, under a millisecond to parse. One shard for a small site. */
const PATHS_PER_SHARD = 320;
const MAX_SHARDS = 4096;

/** The table without its paths, and how many shards (a power of two) hold those. */
export type RouteShardIndex = Omit<RouteTable, 'paths'> & { shards: number };

/** The shard file a path's target is in, of `shards`: the low bits of its FNV-1a hash. */
export function shardOf(path: string, shards: number): string {
  return shardName(shardNumber(path, shards));
}

function shardNumber(path: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) hash = Math.imul(hash ^ path.charCodeAt(i), 0x01000193);
  return (hash >>> 0) & (shards - 1);
}

/** Shard `n`'s file name. */
export function shardName(n: number): string {
  return `${n.toString(16).padStart(3, '0')}.json`;
}

/**
 * File name (under ROUTE_SHARDS_DIR) → its JSON text: the index, and every shard, empty ones too.
 * `parts` are the table's paths unit by unit, in order (RenderedSite.routeParts); each part's
 * members are serialized and hashed once, so a rebuild whose memo gave back most units serializes
 * only the new ones.
 */
export function routeShards(table: RouteTable, parts: Record<string, PathTarget>[] = [table.paths]): Map<string, string> {
  const { paths: _paths, ...rest } = table;
  const count = parts.reduce((sum, part) => sum + serialized(part).members.length, 0);
  let shards = 1;
  while (shards < MAX_SHARDS && count / shards > PATHS_PER_SHARD) shards *= 2;
  const split = new Map<string, string[]>();
  for (let n = 0; n < shards; n++) split.set(shardName(n), []);
  for (const part of parts) {
    for (const [name, members] of shardsOf(part, shards)) split.get(name)!.push(members);
  }
  const files = new Map<string, string>([[ROUTE_SHARD_INDEX, JSON.stringify({ ...rest, shards } satisfies RouteShardIndex)]]);
  for (const [name, members] of split) files.set(name, `{${members.join(',')}}`);
  return files;
}

/** `JSON.stringify(table)`, from the same serialized parts as the shards. */
export function routeTableJson(table: RouteTable, parts: Record<string, PathTarget>[] = [table.paths]): string {
  const members = parts.map((part) => serialized(part).joined).filter((joined) => joined !== '');
  // `paths` is the table's second member, after the numeric version: the first `"paths":{}` is its place.
  return JSON.stringify({ ...table, paths: {} }).replace('"paths":{}', () => `"paths":{${members.join(',')}}`);
}

/**
 * routeShards and routeTableJson for parts that will not be seen again (a build without a memory):
 * yields routes.json in pieces, then each shard file, a batch of shards at a time, keeping no
 * part's serialization, so a large table is never held as JSON whole.
 */
export function* routeFilesOnce(table: RouteTable, parts: Record<string, PathTarget>[] = [table.paths], batchShards = BATCH_SHARDS): Generator<{ routes: string } | { shard: string; body: string }> {
  const { paths: _paths, ...rest } = table;
  const [head, tail] = JSON.stringify({ ...table, paths: {} }).split('"paths":{}') as [string, string];
  yield { routes: `${head}"paths":{` };
  let first = true;
  let count = 0;
  for (const part of parts) {
    const members = Object.entries(part).map(([path, target]) => `${JSON.stringify(path)}:${JSON.stringify(target)}`);
    count += members.length;
    if (members.length === 0) continue;
    yield { routes: `${first ? '' : ','}${members.join(',')}` };
    first = false;
  }
  yield { routes: `}${tail}\n` };
  let shards = 1;
  while (shards < MAX_SHARDS && count / shards > PATHS_PER_SHARD) shards *= 2;
  yield { shard: ROUTE_SHARD_INDEX, body: JSON.stringify({ ...rest, shards } satisfies RouteShardIndex) };
  // Each path's shard once; then every part walked once per batch of shards.
  const numbers = parts.map((part) => Uint16Array.from(Object.keys(part), (path) => shardNumber(path, shards)));
  for (let low = 0; low < shards; low += batchShards) {
    const batch: string[][] = Array.from({ length: Math.min(batchShards, shards - low) }, () => []);
    parts.forEach((part, p) => {
      let i = 0;
      for (const path in part) {
        const n = numbers[p]![i++]! - low;
        if (n >= 0 && n < batch.length) batch[n]!.push(`${JSON.stringify(path)}:${JSON.stringify(part[path])}`);
      }
    });
    for (let n = 0; n < batch.length; n++) yield { shard: shardName(low + n), body: `{${batch[n]!.join(',')}}` };
  }
}

/** Shards serialized per pass of routeFilesOnce: about a quarter of a 100,000-release table's. */
const BATCH_SHARDS = 1024;

/** A part's members (`"path":target` as JSON.stringify writes them inside an object), and by shard for the last shard count asked. */
interface Serialized {
  members: { path: string; json: string }[];
  joined: string;
  shards?: { count: number; members: Map<string, string> };
}

const parts = new WeakMap<Record<string, PathTarget>, Serialized>();

function serialized(part: Record<string, PathTarget>): Serialized {
  let kept = parts.get(part);
  if (!kept) {
    const members = Object.entries(part).map(([path, target]) => ({ path, json: `${JSON.stringify(path)}:${JSON.stringify(target)}` }));
    kept = { members, joined: members.map((member) => member.json).join(',') };
    parts.set(part, kept);
  }
  return kept;
}

/** The part's members joined per shard they fall in, of `count` shards, in the part's order. */
function shardsOf(part: Record<string, PathTarget>, count: number): Map<string, string> {
  const kept = serialized(part);
  if (kept.shards?.count !== count) {
    const split = new Map<string, string[]>();
    for (const { path, json } of kept.members) {
      const name = shardOf(path, count);
      const members = split.get(name);
      if (members) members.push(json);
      else split.set(name, [json]);
    }
    kept.shards = { count, members: new Map([...split].map(([name, members]) => [name, members.join(',')])) };
  }
  return kept.shards.members;
}
