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
  let hash = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) hash = Math.imul(hash ^ path.charCodeAt(i), 0x01000193);
  return shardName((hash >>> 0) & (shards - 1));
}

/** Shard `n`'s file name. */
export function shardName(n: number): string {
  return `${n.toString(16).padStart(3, '0')}.json`;
}

/** File name (under ROUTE_SHARDS_DIR) → its JSON text: the index, and every shard, empty ones too. */
export function routeShards(table: RouteTable): Map<string, string> {
  const { paths, ...rest } = table;
  const entries = Object.entries(paths);
  let shards = 1;
  while (shards < MAX_SHARDS && entries.length / shards > PATHS_PER_SHARD) shards *= 2;
  const split = new Map<string, string[]>();
  for (let n = 0; n < shards; n++) split.set(shardName(n), []);
  for (const [path, target] of entries) {
    const member = memberOf(path, target);
    member.shard ??= new Map();
    let shard = member.shard.get(shards);
    if (shard === undefined) member.shard.set(shards, (shard = shardOf(path, shards)));
    split.get(shard)!.push(member.json);
  }
  const files = new Map<string, string>([[ROUTE_SHARD_INDEX, JSON.stringify({ ...rest, shards } satisfies RouteShardIndex)]]);
  for (const [name, members] of split) files.set(name, `{${members.join(',')}}`);
  return files;
}

/** `JSON.stringify(table)`, from the same members as the shards. */
export function routeTableJson(table: RouteTable): string {
  const members = Object.entries(table.paths).map(([path, target]) => memberOf(path, target).json);
  // `paths` is the table's second member, after the numeric version: the first `"paths":{}` is its place.
  return JSON.stringify({ ...table, paths: {} }).replace('"paths":{}', () => `"paths":{${members.join(',')}}`);
}

/** A path's member of the table: `"path":target` as JSON.stringify writes it inside an object, and its shard by shard count. */
interface Member {
  path: string;
  json: string;
  shard?: Map<number, string>;
}

const members = new WeakMap<PathTarget, Member>();

/**
 * Kept per target object: a render memo gives the units it did not render again with the same
 * targets, so a rebuild serializes and hashes only the paths of the units it rendered.
 */
function memberOf(path: string, target: PathTarget): Member {
  const kept = members.get(target);
  if (kept?.path === path) return kept;
  const member: Member = { path, json: `${JSON.stringify(path)}:${JSON.stringify(target)}` };
  members.set(target, member);
  return member;
}
