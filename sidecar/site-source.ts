// The built site the sidecar serves: the route table and file facts of the current build,
// reloaded when a publish swaps the site symlink.
import { createReadStream, readFileSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FILE_SHARDS_DIR } from '../generator/publish/file-shards.ts';
import { PUBLIC_DIR, currentBuild, fileShardsIn, readManifest, readRoutes, type FileFacts } from '../generator/publish/local-dir.ts';
import { tableSource, type RouteSource } from '../generator/render/resolve.ts';
import { ROUTE_SHARD_INDEX, ROUTE_SHARDS_DIR, ownMember, shardLookup, shardSource, type RouteShardIndex } from '../generator/render/route-shard-source.ts';
import type { PathTarget } from '../generator/render/route-table.ts';
import type { ByteRange } from '../generator/stores/blob-store.ts';

/** Files up to this size are answered from memory once read: indexes, listings, checksums, signatures. */
const SMALL_FILE_BYTES = 64 * 1024;
/** What one build may hold in memory; files read after that stream from disk. */
const MEMORY_BUDGET_BYTES = 32 * 1024 * 1024;

export interface SiteSnapshot {
  build: string;
  /** The route table as `resolve` reads it: its shards read as requests need them (routeSourceOf). */
  source: RouteSource;
  /** A site file's facts (size, hash, headers): its shard read when a request first needs it (factsOf). */
  facts(key: string): FileFacts | undefined;
  open(key: string, range?: ByteRange): Readable;
  /** A response body: a small file's bytes from memory (read once per build), a stream for the rest. */
  body(key: string, range?: ByteRange): Promise<Buffer | Readable>;
}

export interface SiteSource {
  current(): Promise<SiteSnapshot>;
}

export interface SiteSourceOptions {
  /** The published site path (the symlink `mirror build --out` maintains). */
  site: string;
}

export function createSiteSource({ site }: SiteSourceOptions): SiteSource {
  let snapshot: Promise<SiteSnapshot> | undefined;
  let loadedBuild: string | undefined;
  return {
    async current() {
      const build = linkedBuild(site) ?? (await currentBuild(site));
      if (!build) throw new Error(`No site has been built at ${site}; run \`mirror build\` first`);
      if (build !== loadedBuild || !snapshot) {
        loadedBuild = build;
        snapshot = loadSnapshot(build);
        snapshot.catch(() => {
          loadedBuild = undefined;
        });
      }
      return snapshot;
    },
  };
}

/**
 * The build the site link names, read on the event loop: every request reads it, and a readlink
 * takes microseconds where a trip through libuv's four-thread pool cost more than the rest of the
 * request. Undefined on any error, which `currentBuild` then reports.
 */
function linkedBuild(site: string): string | undefined {
  try {
    return path.resolve(path.dirname(site), readlinkSync(site));
  } catch {
    return undefined;
  }
}

async function loadSnapshot(build: string): Promise<SiteSnapshot> {
  const [source, facts] = await Promise.all([routeSourceOf(build), factsOf(build)]);
  const publicDir = path.join(build, PUBLIC_DIR);
  const open = (key: string, range?: ByteRange) => createReadStream(path.join(publicDir, key), range ? { start: range.start, end: range.end } : {});
  // A build folder does not change while it is current or the one before (local-dir.ts), so what was read from it stays true.
  const inMemory = new Map<string, Promise<Buffer>>();
  let budget = MEMORY_BUDGET_BYTES;
  return {
    build,
    source,
    facts,
    open,
    async body(key, range) {
      let bytes = inMemory.get(key);
      if (!bytes) {
        const size = facts(key)?.size;
        if (size === undefined || size > SMALL_FILE_BYTES || size > budget) return open(key, range);
        budget -= size;
        bytes = readFile(path.join(publicDir, key));
        inMemory.set(key, bytes);
        bytes.catch(() => {
          inMemory.delete(key);
          budget += size;
        });
      }
      const whole = await bytes;
      return range ? whole.subarray(range.start, range.end + 1) : whole;
    },
  };
}

/**
 * The build's route table from its shards (route-shards.ts): the index now, and each shard of paths
 * the first time a request looks a path up in it (a synchronous read of at most about 80 KB, under
 * a millisecond), so no request waits for a whole table to parse, and a build swapped in after an
 * upload costs the server only the shards its requests need. A build without shards is read whole.
 */
/**
 * The build's file facts from their shards (local-dir.ts), as the route table's paths: a shard of
 * about 60 KB read the first time a request needs a file in it, so a build swapped in costs no
 * parse of the whole `site.json` (30 MB at 100,000 releases) on the event loop. A build without
 * shards has its `site.json` read whole.
 */
async function factsOf(build: string): Promise<(key: string) => FileFacts | undefined> {
  const shards = await fileShardsIn(build);
  if (shards === undefined) {
    const { files } = await readManifest(build);
    return (key) => ownMember(files, key);
  }
  const dir = path.join(build, FILE_SHARDS_DIR);
  return shardLookup(shards, (name) => JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as Record<string, FileFacts>, ownMember);
}

async function routeSourceOf(build: string): Promise<RouteSource> {
  const dir = path.join(build, ROUTE_SHARDS_DIR);
  let index: RouteShardIndex;
  try {
    index = JSON.parse(await readFile(path.join(dir, ROUTE_SHARD_INDEX), 'utf8')) as RouteShardIndex;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return tableSource(await readRoutes(build));
    throw error;
  }
  return shardSource(index, (name) => JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as Record<string, PathTarget>, ownMember);
}
