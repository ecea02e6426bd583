// The built site the sidecar serves: the route table and file facts of the current build,
// reloaded when a publish swaps the site symlink.
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { PUBLIC_DIR, currentBuild, readManifest, readRoutes, type SiteManifest } from '../generator/publish/local-dir.ts';
import type { RouteTable } from '../generator/render/route-table.ts';
import type { ByteRange } from '../generator/stores/blob-store.ts';

export interface SiteSnapshot {
  build: string;
  routes: RouteTable;
  manifest: SiteManifest;
  open(key: string, range?: ByteRange): Readable;
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
      const build = await currentBuild(site);
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

async function loadSnapshot(build: string): Promise<SiteSnapshot> {
  const [routes, manifest] = await Promise.all([readRoutes(build), readManifest(build)]);
  const publicDir = path.join(build, PUBLIC_DIR);
  return {
    build,
    routes,
    manifest,
    open: (key, range) => createReadStream(path.join(publicDir, key), range ? { start: range.start, end: range.end } : {}),
  };
}
