// Builds the bundled sample store into a temporary site and serves it over real HTTP.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from '../../generator/pipeline.ts';
import { createFsBlobStore } from '../../generator/stores/blob-fs.ts';
import { keysDir, loadSigning } from '../../generator/trust/index.ts';
import { createKey } from '../../generator/trust/keyring.ts';
import { createApp } from '../../sidecar/app.ts';
import { listen } from '../../sidecar/server.ts';
import { createSiteSource } from '../../sidecar/site-source.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const SAMPLE_RELEASES = path.join(REPO, 'releases');
export const SAMPLE_BLOBS = path.join(REPO, '.mirror', 'blobs');

export interface SampleSite {
  url: string;
  site: string;
  /** The signing keys' data directory, for a signed site. */
  dataDir: string;
  errors: unknown[];
  close(): Promise<void>;
}

/**
 * Builds `releasesDir` and serves it, with artifact and tarball bytes from `blobsDir`; `signed`
 * makes a key first, so the site carries signatures, keys and a snapshot.
 */
export async function startSampleSite(releasesDir = SAMPLE_RELEASES, blobsDir = SAMPLE_BLOBS, options: { signed?: boolean } = {}): Promise<SampleSite> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mirror-site-'));
  const site = path.join(dir, 'site');
  const dataDir = path.join(dir, 'data');
  if (options.signed) await createKey(keysDir(dataDir), { name: 'Sample releases' });
  await build({ releasesDir, site, ...(options.signed ? { signing: await loadSigning(dataDir, {}) } : {}) });
  const errors: unknown[] = [];
  const app = createApp({ site: createSiteSource({ site }), blobs: createFsBlobStore({ root: blobsDir }), logError: (error) => errors.push(error) });
  const running = await listen({ app, port: 0, host: '127.0.0.1' });
  return {
    url: running.url,
    site,
    dataDir,
    errors,
    async close() {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface SuiteSite {
  /** Fetches a path of the running site without following redirects. */
  get(path: string, init?: RequestInit): Promise<Response>;
  url(): string;
}

/** Serves the sample for the suite that calls it; fails the suite if the server logged an error. */
export function serveSampleForSuite(): SuiteSite {
  let site: SampleSite | undefined;
  before(async () => {
    site = await startSampleSite();
  });
  after(async () => {
    const errors = site?.errors ?? [];
    await site?.close();
    if (errors.length > 0) throw new Error(`The server logged errors: ${errors.map(String).join('; ')}`);
  });
  const url = () => {
    if (!site) throw new Error('The sample site is not running');
    return site.url;
  };
  return { url, get: (path, init = {}) => fetch(url() + path, { redirect: 'manual', ...init }) };
}
