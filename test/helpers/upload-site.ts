// A sidecar with the upload API over a private copy of the sample store: its own releases, blobs,
// site and local token issuer, served over real HTTP.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { build } from '../../generator/pipeline.ts';
import { createFsBlobStore } from '../../generator/stores/blob-fs.ts';
import { openLocks } from '../../generator/stores/locks.ts';
import { createApp, type AppDeps } from '../../sidecar/app.ts';
import { localIssuer } from '../../sidecar/auth/jwt.ts';
import type { CommittedUpload } from '../../sidecar/routes/binary-upload.ts';
import { createPublisher, type Publisher } from '../../sidecar/publisher.ts';
import { listen } from '../../sidecar/server.ts';
import { createSiteSource } from '../../sidecar/site-source.ts';
import { SAMPLE_BLOBS } from './sample-site.ts';
import { copySampleStore } from './store.ts';

export interface UploadSite {
  url: string;
  dir: string;
  releasesDir: string;
  blobsDir: string;
  site: string;
  publisher: Publisher;
  /** A bearer token from the site's local issuer. */
  token(sub?: string, ttlSeconds?: number): Promise<string>;
  errors: unknown[];
  close(): Promise<void>;
}

export interface UploadSiteOptions {
  maxBytes?: number;
  envelopeMaxBytes?: number;
  record?: (upload: CommittedUpload) => Promise<void>;
  /** A publisher whose rebuilds fail, for the path after a commit. */
  failingPublisher?: boolean;
  extra?: Partial<AppDeps>;
  /** Writes the manifest store in place of the sample's (which comes with its blobs). */
  store?: (releasesDir: string) => Promise<void>;
}

export async function startUploadSite(options: UploadSiteOptions = {}): Promise<UploadSite> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mirror-upload-'));
  const releasesDir = path.join(dir, 'releases');
  const blobsDir = path.join(dir, 'blobs');
  const site = path.join(dir, 'site');
  if (options.store) {
    await options.store(releasesDir);
  } else {
    await copySampleStore(releasesDir, { releases: true });
    await cp(SAMPLE_BLOBS, blobsDir, { recursive: true });
  }
  await build({ releasesDir, site });
  const issuer = await localIssuer({ dir: path.join(dir, 'auth') });
  const blobs = createFsBlobStore({ root: blobsDir });
  const publisher: Publisher = options.failingPublisher
    ? { publish: () => Promise.reject(new Error('injected: the build failed at /srv/secret')), syncRemote: () => {}, settle: async () => {}, close: async () => {} }
    : createPublisher({ releasesDir, site, locks: await openLocks({ dir: path.join(dir, 'locks') }) });
  const errors: unknown[] = [];
  const app = createApp({
    site: createSiteSource({ site }),
    blobs,
    logError: (error) => errors.push(error),
    uploads: { verifier: issuer, releasesDir, publisher, maxBytes: options.maxBytes ?? 1024 * 1024, ...(options.record ? { record: options.record } : {}) },
    envelopeMaxBytes: options.envelopeMaxBytes ?? 1024 * 1024,
    ...options.extra,
  });
  const running = await listen({ app, port: 0, host: '127.0.0.1' });
  return {
    url: running.url,
    dir,
    releasesDir,
    blobsDir,
    site,
    publisher,
    token: (sub = 'release-bot', ttlSeconds = 3600) => issuer.mint(sub, ttlSeconds),
    errors,
    async close() {
      await running.close();
      await publisher.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
