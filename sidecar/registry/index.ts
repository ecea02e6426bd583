// The registry of agent packages (seed 003) at /api/v1: its routes on @koa/router, each handled
// by the file named for what it does. Errors, caching, auth and rate limits wrap them all.
import Router from '@koa/router';
import type { Middleware } from 'koa';
import compose from 'koa-compose';
import type { BlobStore } from '../../generator/stores/blob-store.ts';
import { jsonBody } from '../middleware/json-body.ts';
import type { Publisher } from '../publisher.ts';
import type { StateDb } from '../store/db.ts';
import { conditionalJson } from './caching.ts';
import { downloadDescriptor } from './downloads.ts';
import { RegistryError, registryErrors } from './errors.ts';
import { listParams, PERIOD_DAYS } from './list-params.ts';
import { oauthRoutes, type GitHubSettings } from './oauth.ts';
import { registryPackages } from './packages.ts';
import { agentRef } from './params.ts';
import { publishAgent } from './publish.ts';
import { registryQueries } from './queries.ts';
import { fullTextFor } from './search.ts';
import { telemetry, TELEMETRY_MAX_BYTES } from './telemetry.ts';
import { authenticate, bearerToken, currentUser, refuseInvalidToken, revokeToken } from './tokens.ts';
import { unpublishVersion } from './unpublish.ts';

export const REGISTRY_PREFIX = '/api/v1';

/** Largest agent.yaml and README a publish may carry. */
export const AGENT_YAML_MAX_BYTES = 64 * 1024;
export const README_MAX_BYTES = 512 * 1024;

export interface RegistryDeps {
  state: StateDb;
  blobs: BlobStore;
  /** The manifest store: published versions are written to its `registry/` folder. */
  releasesDir: string;
  /** Rebuilds the site after a publish or unpublish, so tarballs are served or stop being served. */
  publisher: Publisher;
  github: GitHubSettings;
  /** Origin of the links in responses (MIRROR_PUBLIC_URL); the request's own origin when unset. */
  publicUrl: string | undefined;
  maxTarballBytes: number;
  /** Counts every registry request, after its token is read (per address, or per user when signed in). */
  requestLimit?: Middleware;
  /** Counts publishes per user, after the request limits. */
  publishLimit?: Middleware;
  /** Told each publish's final status (metrics). */
  onPublish?: (status: number) => void;
  onTelemetry?: (stored: boolean) => void;
  now?: () => Date;
}

export function registryApi(deps: RegistryDeps): Middleware {
  const { db } = deps.state;
  const fullText = fullTextFor(deps.state);
  const queries = registryQueries(db, fullText);
  const packages = registryPackages(db, fullText);
  const now = deps.now ?? (() => new Date());
  const oauth = oauthRoutes({ db, github: deps.github, now });
  const router = new Router({ prefix: REGISTRY_PREFIX });

  router.post('/auth/github', jsonBody({ limitBytes: 4 * 1024, refuse }), oauth.start);
  router.get('/auth/callback', oauth.callback);
  router.delete('/auth/token', async function revokeTokenHandler(ctx) {
    currentUser(ctx);
    await revokeToken(db, bearerToken(ctx)!, now());
    ctx.body = { success: true, message: 'Token revoked' };
  });

  router.get('/agents', async function listAgentsHandler(ctx) {
    ctx.body = await queries.list(listParams(ctx, ['q', 'category', 'sort', 'page', 'limit']));
  });
  router.get('/search', async function searchHandler(ctx) {
    const params = listParams(ctx, ['q', 'category', 'page', 'limit']);
    if (params.q === undefined) throw new RegistryError(400, 'Invalid query parameters', ["Expected `q` to be a search query, got nothing"]);
    ctx.body = await queries.list({ ...params, sort: 'relevance' });
  });
  router.get('/trending', async function trendingHandler(ctx) {
    const params = listParams(ctx, ['period', 'category', 'page', 'limit']);
    const since = new Date(now().getTime() - (PERIOD_DAYS[params.period] - 1) * 86_400_000).toISOString().slice(0, 10);
    ctx.body = await queries.list({ ...params, q: undefined, sort: 'trending', since });
  });
  router.get('/categories', async function categoriesHandler(ctx) {
    ctx.body = { categories: await queries.categories() };
  });

  router.get('/agents/:scope/:name', async function agentDetailsHandler(ctx) {
    const { scope, name } = agentRef(ctx);
    const details = await queries.details(scope, name);
    if (!details) throw new RegistryError(404, 'Agent not found');
    ctx.body = details;
  });
  router.get('/agents/:scope/:name/versions', async function agentVersionsHandler(ctx) {
    const { scope, name } = agentRef(ctx);
    const versions = await queries.versions(scope, name);
    if (!versions) throw new RegistryError(404, 'Agent not found');
    ctx.body = { versions };
  });
  router.get('/agents/:scope/:name/download/:version', downloadDescriptor({ db, queries, publicUrl: deps.publicUrl, now }));
  router.put(
    '/agents/:scope/:name',
    async function countPublishHandler(ctx, next) {
      let status = 500;
      try {
        await next();
        status = ctx.status;
      } catch (error) {
        if (error instanceof RegistryError) status = error.status;
        throw error;
      } finally {
        deps.onPublish?.(status);
      }
    },
    ...(deps.publishLimit ? [deps.publishLimit] : []),
    publishAgent({
      packages,
      blobs: deps.blobs,
      releasesDir: deps.releasesDir,
      publisher: deps.publisher,
      limits: { tarballBytes: deps.maxTarballBytes, agentYamlBytes: AGENT_YAML_MAX_BYTES, readmeBytes: README_MAX_BYTES },
      publicUrl: deps.publicUrl,
      now,
    }),
  );
  router.delete('/agents/:scope/:name/:version', unpublishVersion({ queries, packages, releasesDir: deps.releasesDir, publisher: deps.publisher, now }));

  router.get('/users/:username', async function userHandler(ctx) {
    const user = await queries.user(ctx.params.username!.toLowerCase());
    if (!user) throw new RegistryError(404, 'User not found');
    ctx.body = user.profile;
  });
  router.get('/users/:username/agents', async function userAgentsHandler(ctx) {
    const params = listParams(ctx, ['category', 'sort', 'page', 'limit']);
    const user = await queries.user(ctx.params.username!.toLowerCase());
    if (!user) throw new RegistryError(404, 'User not found');
    ctx.body = await queries.list({ ...params, owner: user.id });
  });

  router.post('/telemetry', jsonBody({ limitBytes: TELEMETRY_MAX_BYTES, refuse }), telemetry({ db, queries, ...(deps.onTelemetry ? { onReport: deps.onTelemetry } : {}), now }));

  const chain = compose([
    registryErrors(),
    conditionalJson(),
    authenticate(db),
    ...(deps.requestLimit ? [deps.requestLimit] : []),
    refuseInvalidToken(),
    router.routes() as Middleware,
    router.allowedMethods({ throw: false }) as Middleware,
  ]);
  return async function registryApiHandler(ctx, next) {
    if (!isRegistryPath(ctx.path)) return next();
    await chain(ctx);
  };
}

export function isRegistryPath(path: string): boolean {
  return path === REGISTRY_PREFIX || path.startsWith(`${REGISTRY_PREFIX}/`);
}

function refuse(status: number, message: string): RegistryError {
  return new RegistryError(status, message);
}
