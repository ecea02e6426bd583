// Read responses a CDN can absorb: a JSON body gets a strong ETag of its bytes and, unless its
// handler chose otherwise, a short public Cache-Control; a matching If-None-Match answers 304.
import { createHash } from 'node:crypto';
import type { Middleware } from 'koa';
import { matchesEtag } from '../routes/static-site.ts';

export const REGISTRY_CACHE_CONTROL = 'public, max-age=60';

export function conditionalJson(): Middleware {
  return async function conditionalJsonHandler(ctx, next) {
    await next();
    if ((ctx.method !== 'GET' && ctx.method !== 'HEAD') || ctx.status !== 200 || ctx.body === null || typeof ctx.body !== 'object' || Buffer.isBuffer(ctx.body)) return;
    const body = JSON.stringify(ctx.body);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    ctx.set('ETag', etag);
    if (!ctx.response.get('Cache-Control')) ctx.set('Cache-Control', REGISTRY_CACHE_CONTROL);
    ctx.type = 'application/json';
    ctx.body = body;
    if (matchesEtag(ctx.get('If-None-Match'), etag)) ctx.status = 304;
  };
}
