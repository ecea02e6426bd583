// The site's file facts (SiteManifest.files: size, hash, content type, cache control) split into
// shards by a hash of the key, as the route table's paths are (route-shards.ts), and written beside
// site.json in each build folder: nginx (with a large route table) and the sidecar read the facts
// of a file they serve from its shard instead of holding site.json (30 MB at 100,000 releases) in
// every worker, or parsing it on the event loop whenever a build is swapped in. site.json lists
// the files shard by shard, so each member is serialized once for both. Pure.
import { shardName, shardNumber } from '../render/route-shard-source.ts';
import { shardCount } from './route-shards.ts';

export const FILE_SHARDS_DIR = 'files';
/** Shards made in one pass over the keys: at 100,000 releases (512 shards), an eighth of the facts held at once. */
const BATCH = 64;

/** How many shards hold `files`' facts: a power of two. */
export function fileShardCount(files: Record<string, unknown>): number {
  return shardCount(Object.keys(files).length);
}

/**
 * Each shard's name and members (`"key":{…}`, joined by commas, as its JSON object holds them),
 * in shard order, every shard (an empty one too); a batch of shards a pass over `files`' keys.
 */
export function* fileShardMembers<Facts>(files: Record<string, Facts>): Generator<[name: string, members: string]> {
  const keys = Object.keys(files);
  const shards = shardCount(keys.length);
  const numbers = Uint16Array.from(keys, (key) => shardNumber(key, shards));
  for (let first = 0; first < shards; first += BATCH) {
    const batch: string[][] = Array.from({ length: Math.min(BATCH, shards - first) }, () => []);
    for (let i = 0; i < keys.length; i++) {
      const n = numbers[i]! - first;
      if (n >= 0 && n < batch.length) batch[n]!.push(`${JSON.stringify(keys[i])}:${JSON.stringify(files[keys[i]!])}`);
    }
    for (let n = 0; n < batch.length; n++) yield [shardName(first + n), batch[n]!.join(',')];
  }
}
