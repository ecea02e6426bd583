// Tells reads of the static site from API requests, for the rate limits: a GET or HEAD the route
// table answers (files, artifacts, redirects, conditional and range requests, its 404s) is a read;
// what an API answers is not, even as a GET.
import type { Context, Middleware } from 'koa';

const SITE_READ = Symbol('siteRead');

export interface SiteReadsOptions {
  /** GETs an API answers: the registry's paths, an artifact's JSON envelope. */
  isApi: (ctx: Context) => boolean | Promise<boolean>;
}

/** Marks the request for `isSiteRead`; runs before the limits that ask. */
export function markSiteReads({ isApi }: SiteReadsOptions): Middleware {
  return async function markSiteReadsHandler(ctx, next) {
    (ctx.state as Record<symbol, boolean>)[SITE_READ] = (ctx.method === 'GET' || ctx.method === 'HEAD') && !(await isApi(ctx));
    await next();
  };
}

export function isSiteRead(ctx: Context): boolean {
  return (ctx.state as Record<symbol, boolean>)[SITE_READ] === true;
}
