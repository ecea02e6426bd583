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
  app.on('error', (error: unknown) => {
    if (!isClientGone(error)) (deps.logError ?? defaultLogError)(error);
  });
  app.use(errorBodies());
  app.use(staticSite({ site: deps.site, blobs: deps.blobs }));
  return app;
}

/** A client that hangs up mid-response (curl's Ctrl-C, a closed tab) is not a server error. */
function isClientGone(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
}

function defaultLogError(error: unknown): void {
  console.error(error);
}
