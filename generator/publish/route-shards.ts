// The route table as the sidecar and a large site's nginx read it: its paths split into shards by
// a hash of the path, and the rest (endpoints, fallbacks) in an index, written beside routes.json in
// each build folder. A server swapping in a new build reads the small index, and a shard the first
// time a request needs it (render/route-shard-source.ts), instead of parsing the whole table (21 MB
// at 10,000 releases). Pure: what is kept from one call to the next (serialized parts, the shards
// last made) only saves work.
import type { PathTarget, RouteRules, RouteTable } from '../render/route-table.ts';
import { ROUTE_SHARD_INDEX, shardName, shardNumber, shardOf, type RouteShardIndex } from '../render/route-shard-source.ts';
import { sha256Hex } from '../stores/hash.ts';

export { ROUTE_SHARDS_DIR, ROUTE_SHARD_INDEX, pathHash, shardName, shardOf, type RouteShardIndex } from '../render/route-shard-source.ts';
/** Paths per shard, about: 80 KB of JSON, under a millisecond to parse. One shard for a small site. */
const PATHS_PER_SHARD = 320;
export const MAX_SHARDS = 4096;
/**
 * The most paths a table has for routes.json to be written beside its shards: about 8 MB of JSON,
 * 4,000 releases of six artifacts. Past that, nothing that serves the site reads the table whole
 * (nginx preloading 217 MB took 17 s and 1.5 GB at 100,000 releases), and the shards alone are the table.
 */
export const WHOLE_TABLE_MAX_PATHS = 32_768;

/** A table's rules, without its paths if it has them. */
function routeRules(table: RouteRules & { paths?: unknown }): RouteRules {
  const { paths: _paths, ...rules } = table;
  return rules;
}

/** How many paths a table's parts have. */
export function pathCount(parts: readonly Record<string, PathTarget>[]): number {
  return parts.reduce((count, part) => count + Object.keys(part).length, 0);
}

/** How many shards hold `paths` paths: a power of two. */
export function shardCount(paths: number): number {
  let shards = 1;
  while (shards < MAX_SHARDS && paths / shards > PATHS_PER_SHARD) shards *= 2;
  return shards;
}

/**
 * File name (under ROUTE_SHARDS_DIR) → its JSON text and hash: the index, and every shard, empty ones too.
 * `parts` are the table's paths unit by unit, in order (RenderedSite.routeParts); each part's
 * members are serialized and hashed once, so a rebuild whose memo gave back most units serializes
 * only the new ones.
 */
export function routeShards(table: RouteTable, parts: Record<string, PathTarget>[] = [table.paths]): Map<string, ShardFile> {
  const rest = routeRules(table);
  const shards = shardCount(parts.reduce((sum, part) => sum + serialized(part).count, 0));
  // A shard is known by the parts that fill it: made of the same part objects, it is the same text,
  // joined and hashed last time. A rebuild whose memo gave back most units joins only the others'.
  const split = new Map<string, Serialized[]>();
  for (let n = 0; n < shards; n++) split.set(shardName(n), []);
  for (const part of parts) {
    const kept = serialized(part);
    for (const name of shardsOf(part, kept, shards).keys()) split.get(name)!.push(kept);
  }
  const files = new Map<string, ShardFile>([[ROUTE_SHARD_INDEX, shardFile(() => JSON.stringify({ ...rest, shards } satisfies RouteShardIndex))]]);
  const made = new Map<string, { filling: Serialized[]; file: ShardFile }>();
  for (const [name, filling] of split) {
    const last = madeShards.get(`${shards} ${name}`);
    const file = last && sameParts(last.filling, filling) ? last.file : shardFile(() => `{${filling.map((kept) => shardMembers(kept, shards, name)).join(',')}}`);
    made.set(`${shards} ${name}`, { filling, file });
    files.set(name, file);
  }
  madeShards = made;
  return files;
}

function sameParts(a: Serialized[], b: Serialized[]): boolean {
  return a.length === b.length && a.every((part, i) => part === b[i]);
}

/**
 * A shard file's text and its SHA-256 (hex), which the build's manifest keeps. The text is joined
 * from its parts' members each time it is read (a shard is read to be written, which most shards
 * kept from one build to the next are not: the build before holds them), so it is not kept.
 */
export interface ShardFile {
  readonly body: string;
  sha256: string;
}

function shardFile(join: () => string): ShardFile {
  return {
    sha256: sha256Hex(join()),
    get body() {
      return join();
    },
  };
}

/** The shards the last routeShards made, by shard count and name, with the parts that filled them. */
let madeShards = new Map<string, { filling: Serialized[]; file: ShardFile }>();

/** `JSON.stringify(table)`, from the same serialized parts as the shards. */
export function routeTableJson(table: RouteTable, parts: Record<string, PathTarget>[] = [table.paths]): string {
  return [...routeTablePieces(table, parts)].join('');
}

/**
 * routeTableJson in pieces, for a writer: no string of the whole table is made. With `once` (parts
 * that will not be seen again), no part's serialization is kept either.
 */
export function* routeTablePieces(table: RouteTable, parts: Record<string, PathTarget>[] = [table.paths], { once = false } = {}): Generator<string> {
  const [head, tail] = routeTableEnds(table);
  yield head;
  let first = true;
  for (const part of parts) {
    const joined = once ? Object.keys(part).map((path) => member(path, part[path]!)).join(',') : joinedOf(part);
    if (joined === '') continue;
    yield first ? joined : `,${joined}`;
    first = false;
  }
  yield tail;
}

/** What routes.json holds before its paths' members (`{"version":1,"paths":{`) and after them. */
export function routeTableEnds(rules: RouteRules): [head: string, tail: string] {
  const { version, ...rest } = routeRules(rules);
  // `paths` is the table's second member, after the numeric version, as render makes it: `"paths":{}` is its place.
  const [head, tail] = JSON.stringify({ version, paths: {}, ...rest }).split('"paths":{}') as [string, string];
  return [`${head}"paths":{`, `}${tail}`];
}

/**
 * routeShards for parts that will not be seen again (a build without a memory): each shard file's
 * name and text, a batch of shards at a time, keeping no part's serialization, so a large table is
 * never held as JSON whole.
 */
export function* routeShardsOnce(table: RouteTable, parts: Record<string, PathTarget>[] = [table.paths], batchShards = BATCH_SHARDS): Generator<[name: string, body: string]> {
  const shards = shardCount(pathCount(parts));
  // Each path's shard once; then every part walked once per batch of shards.
  const numbers = parts.map((part) => Uint16Array.from(Object.keys(part), (path) => shardNumber(path, shards)));
  yield* shardFiles(table, shards, batchShards, (batch) =>
    parts.forEach((part, p) => {
      let i = 0;
      for (const path in part) batch[numbers[p]![i++]!]?.push(member(path, part[path]!));
    }),
  ) as Generator<[name: string, body: string]>;
}

/**
 * The index, then the shard files in order, those `made` says to make `batchShards` at a time:
 * `fill(batch)` puts the members of each shard `n` the batch has (`batch[n]`, the others
 * undefined) into it, in the table's order. A shard not made comes with no body.
 */
export function* shardFiles(
  rules: RouteRules,
  shards: number,
  batchShards: number,
  fill: (batch: (string[] | undefined)[]) => void,
  made: (n: number) => boolean = () => true,
): Generator<[name: string, body: string | undefined]> {
  yield [ROUTE_SHARD_INDEX, JSON.stringify({ ...routeRules(rules), shards } satisfies RouteShardIndex)];
  let batch: (string[] | undefined)[] = [];
  for (let n = 0; n < shards; n++) {
    if (!made(n)) {
      yield [shardName(n), undefined];
      continue;
    }
    if (batch[n] === undefined) {
      batch = new Array<string[] | undefined>(shards);
      for (let m = n, size = 0; m < shards && size < batchShards; m++) {
        if (made(m)) {
          batch[m] = [];
          size++;
        }
      }
      fill(batch);
    }
    yield [shardName(n), `{${batch[n]!.join(',')}}`];
    // Let go of the members of a shard once made.
    batch[n] = undefined;
  }
}

/**
 * What a build knows of the route shards of the build the site serves, from its render memo: their
 * count and hashes by name, and which shards the paths of the units it did not give back were in
 * (`pathHash(path) % MAX_SHARDS` of each: the shard under any count). A shard none of those paths
 * nor any path rendered again is in holds what it held then.
 */
export interface PreviousShards {
  count: number;
  hashes: Record<string, string>;
  replaced: ReadonlySet<number>;
}

/** Where a build's route shards are remembered for the next (a render memo in a file): what it knows of the served build's, and the new build's hashes once made. */
export interface ShardMemory {
  /** Known once the render has finished; undefined when not known. */
  readonly previous: PreviousShards | undefined;
  made(hashes: Record<string, string>): void;
}

/** Shards serialized per pass of routeShardsOnce: about a quarter of a 100,000-release table's. */
export const BATCH_SHARDS = 1024;

/**
 * What is kept of a part's serialization (`"path":target` members, as JSON.stringify writes them
 * inside an object): its members joined per shard, for the last shard count asked, and joined whole
 * once routes.json asked (only a table small enough to be written whole is). One copy of the members
 * each way: a 100,000-release table's is 217 MB.
 */
interface Serialized {
  /** The part's paths. */
  count: number;
  joined?: string;
  shards?: { count: number; members: Map<string, string> };
}

const parts = new WeakMap<Record<string, PathTarget>, Serialized>();

function serialized(part: Record<string, PathTarget>): Serialized {
  let kept = parts.get(part);
  if (!kept) {
    kept = { count: Object.keys(part).length };
    parts.set(part, kept);
  }
  return kept;
}

function joinedOf(part: Record<string, PathTarget>): string {
  const kept = serialized(part);
  return (kept.joined ??= Object.keys(part)
    .map((path) => member(path, part[path]!))
    .join(','));
}

/** A path and its target as a member of a JSON object. */
export function member(path: string, target: PathTarget): string {
  return `${JSON.stringify(path)}:${JSON.stringify(target)}`;
}

/** What shardsOf kept of the part for shard `name` of `count`. */
function shardMembers(kept: Serialized, count: number, name: string): string {
  if (kept.shards?.count !== count) throw new Error(`A route shard of ${count} was asked for after its parts were split into ${kept.shards?.count}`);
  return kept.shards.members.get(name)!;
}

/** The part's members joined per shard they fall in, of `count` shards, in the part's order. */
function shardsOf(part: Record<string, PathTarget>, kept: Serialized, count: number): Map<string, string> {
  if (kept.shards?.count !== count) {
    const split = new Map<string, string[]>();
    for (const path in part) {
      const name = shardOf(path, count);
      const json = member(path, part[path]!);
      const members = split.get(name);
      if (members) members.push(json);
      else split.set(name, [json]);
    }
    kept.shards = { count, members: new Map([...split].map(([name, members]) => [name, members.join(',')])) };
  }
  return kept.shards.members;
}
