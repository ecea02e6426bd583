// Where the CLI finds the manifest store and keeps its data, from flags, then the environment.
import path from 'node:path';

export interface Paths {
  releasesDir: string;
  /** Blobs, the built site and the sidecar's state live here. */
  dataDir: string;
  blobsDir: string;
  site: string;
}

export function resolvePaths(flags: { releases?: string | undefined; out?: string | undefined; site?: string | undefined }, env: NodeJS.ProcessEnv = process.env): Paths {
  const dataDir = path.resolve(env.MIRROR_DATA_DIR || '.mirror');
  return {
    releasesDir: path.resolve(flags.releases ?? (env.MIRROR_RELEASES || 'releases')),
    dataDir,
    blobsDir: path.join(dataDir, 'blobs'),
    site: path.resolve(flags.out ?? flags.site ?? path.join(dataDir, 'site')),
  };
}
