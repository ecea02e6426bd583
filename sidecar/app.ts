// Builds the Koa app from its parts; server.ts listens and runtime.ts assembles the parts from the
// configuration. No business logic here.
import Koa, { type Middleware } from 'koa';
import compose from 'koa-compose';
import type { BlobStore } from '../generator/stores/blob-store.ts';
import type { Locks } from '../generator/stores/locks.ts';
import { requireBearer } from './auth/bearer.ts';
import type { TokenVerifier } from './auth/jwt.ts';
import { errorBodies } from './middleware/error-bodies.ts';
import type { Publisher } from './publisher.ts';
import { binaryEnvelope } from './routes/binary-envelope.ts';
import { binaryUpload, isUploadPath, type CommittedUpload } from './routes/binary-upload.ts';
import { staticSite } from './routes/static-site.ts';
import type { SiteSource } from './site-source.ts';

export interface AppDeps {
  site: SiteSource;
  blobs: BlobStore;
  /** Where unexpected errors are reported; the client only sees the status text. */
  logError?: (error: unknown) => void;
  /** Run before everything else, in order: request log, metrics, rate limits, health routes. */
  operations?: Middleware[];
  /** The upload API (seed 000); without it an upload is refused like any other write, with 405. */
  uploads?: UploadDeps;
  /** JSON download envelopes (seed 000) up to this many bytes of file; without it artifacts are bytes only. */
  envelopeMaxBytes?: number;
  /** Koa's proxy trust: the number of proxies in front whose X-Forwarded-For is believed. */
  trustedProxies?: number;
  /** APIs of other contracts (the registry), each answering its own paths only, in its own error shape. */
  apis?: Middleware[];
}

export interface UploadDeps {
  verifier: TokenVerifier;
  releasesDir: string;
  publisher: Publisher;
  maxBytes: number;
  /** Limits per authenticated user, run after the token is verified. */
  perUser?: Middleware;
  record?: (upload: CommittedUpload) => Promise<void>;
  /** Where uploads of one version take turns; when absent, the host's lock files for the store, which `mirror release add` takes too. */
  releaseLocks?: Locks;
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.silent = true;
  if (deps.trustedProxies) {
    app.proxy = true;
    app.maxIpsCount = deps.trustedProxies;
  }
  app.on('error', (error: unknown) => {
    if (!isClientGone(error)) (deps.logError ?? defaultLogError)(error);
  });
  for (const middleware of deps.operations ?? []) app.use(middleware);
  for (const api of deps.apis ?? []) app.use(api);
  app.use(errorBodies());
  if (deps.uploads) app.use(uploadRoute(deps.uploads, deps.blobs));
  if (deps.envelopeMaxBytes !== undefined) app.use(binaryEnvelope({ site: deps.site, blobs: deps.blobs, maxBytes: deps.envelopeMaxBytes }));
  app.use(staticSite({ site: deps.site, blobs: deps.blobs }));
  return app;
}

/** POST to an upload path: the bearer token, the per-user limits, then the upload itself. */
function uploadRoute(uploads: UploadDeps, blobs: BlobStore): Middleware {
  const chain = compose([requireBearer({ verifier: uploads.verifier }), ...(uploads.perUser ? [uploads.perUser] : []), binaryUpload({ ...uploads, blobs })]);
  return async function uploadRouteHandler(ctx, next) {
    if (ctx.method !== 'POST' || !isUploadPath(ctx.path)) return next();
    await chain(ctx);
  };
}

/** A client that hangs up mid-response (curl's Ctrl-C, a closed tab) is not a server error. */
function isClientGone(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
}

function defaultLogError(error: unknown): void {
  console.error(error);
}
