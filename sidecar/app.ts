// Builds the Koa app from its parts; server.ts listens. No business logic here.
import Koa from 'koa';
import type { BlobStore } from '../generator/stores/blob-store.ts';
import { errorBodies } from './middleware/error-bodies.ts';
import { staticSite } from './routes/static-site.ts';
import type { SiteSource } from './site-source.ts';

export interface AppDeps {
  site: SiteSource;
  blobs: BlobStore;
  /** Where unexpected errors are reported; the client only sees the status text. */
  logError?: (error: unknown) => void;
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.silent = true;
  app.on('error', (error: unknown) => (deps.logError ?? defaultLogError)(error));
  app.use(errorBodies());
  app.use(staticSite({ site: deps.site, blobs: deps.blobs }));
  return app;
}

function defaultLogError(error: unknown): void {
  console.error(error);
}
