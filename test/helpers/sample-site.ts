// Builds the bundled sample store into a temporary site and serves it over real HTTP.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from '../../generator/pipeline.ts';
import { createFsBlobStore } from '../../generator/stores/blob-fs.ts';
import { createApp } from '../../sidecar/app.ts';
import { listen } from '../../sidecar/server.ts';
import { createSiteSource } from '../../sidecar/site-source.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const SAMPLE_RELEASES = path.join(REPO, 'releases');
export const SAMPLE_BLOBS = path.join(REPO, '.mirror', 'blobs');

export interface SampleSite {
  url: string;
  site: string;
  errors: unknown[];
  close(): Promise<void>;
}

export async function startSampleSite(releasesDir = SAMPLE_RELEASES): Promise<SampleSite> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mirror-site-'));
  const site = path.join(dir, 'site');
  await build({ releasesDir, site });
  const errors: unknown[] = [];
  const app = createApp({ site: createSiteSource({ site }), blobs: createFsBlobStore({ root: SAMPLE_BLOBS }), logError: (error) => errors.push(error) });
  const running = await listen({ app, port: 0, host: '127.0.0.1' });
  return {
    url: running.url,
    site,
    errors,
    async close() {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
