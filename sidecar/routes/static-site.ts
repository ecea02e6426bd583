// Serves the built site through the route table: files, artifact bytes from the blob store,
// redirects and the contracts' error bodies. GET and HEAD, conditional requests, byte ranges.
import type { Context, Middleware } from 'koa';
import type { Readable } from 'node:stream';
import parseRange from 'range-parser';
import { notFound, resolve } from '../../generator/render/resolve.ts';
import { CACHE_IMMUTABLE } from '../../generator/render/site-file.ts';
import type { BlobStore, ByteRange } from '../../generator/stores/blob-store.ts';
import type { SiteSource } from '../site-source.ts';

export interface StaticSiteOptions {
  site: SiteSource;
  blobs: BlobStore;
}

export function staticSite({ site, blobs }: StaticSiteOptions): Middleware {
  return async function staticSiteHandler(ctx, next) {
    const snapshot = await site.current();
    const answer = resolve(snapshot.source, { path: ctx.path, query: ctx.querystring, accept: ctx.get('Accept') || undefined });
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      await next();
      if (ctx.body === undefined && ctx.status === 404 && answer.type !== 'error') {
        ctx.status = 405;
        ctx.set('Allow', 'GET, HEAD');
        ctx.body = { error: 'Method Not Allowed', message: `${ctx.method} is not allowed here; use GET or HEAD` };
      }
      return;
    }
    switch (answer.type) {
      case 'file': {
        const facts = snapshot.facts(answer.key);
        if (!facts) throw new Error(`The route table names ${answer.key}, which the build lacks`);
        if (answer.negotiated) ctx.vary('Accept');
        ctx.set('Cache-Control', facts.cacheControl);
        ctx.type = facts.contentType;
        return sendBytes(ctx, { size: facts.size, etag: `"${facts.sha256}"`, open: (range) => snapshot.body(answer.key, range) });
      }
      case 'blob': {
        const { target } = answer;
        const info = await blobs.stat(target.blob);
        if (!info) {
          ctx.app.emit('error', new Error(`Blob ${target.blob} is missing from the blob store`), ctx);
          const missing = notFound(snapshot.source, ctx.path);
          ctx.status = missing.status;
          ctx.body = missing.body;
          return;
        }
        ctx.set('Cache-Control', CACHE_IMMUTABLE);
        ctx.set('Content-Disposition', `attachment; filename="${target.filename}"`);
        ctx.set('X-Checksum-Sha256', target.sha256);
        ctx.type = target.contentType;
        return sendBytes(ctx, { size: info.size, etag: `"${target.sha256}"`, open: (range) => blobs.open(target.blob, range) });
      }
      case 'redirect':
        ctx.status = answer.status;
        ctx.set('Location', answer.location);
        ctx.set('Cache-Control', answer.cacheControl);
        ctx.type = 'text/plain';
        ctx.body = `Redirecting to ${answer.location}\n`;
        return;
      case 'error':
        ctx.status = answer.status;
        ctx.set('Cache-Control', answer.cacheControl);
        ctx.body = answer.body;
        return;
    }
  };
}

interface Representation {
  size: number;
  etag: string;
  open(range?: ByteRange): Readable | Promise<Buffer | Readable>;
}

/** Conditional GET (If-None-Match → 304), single byte ranges (206/416), HEAD without opening the file. */
async function sendBytes(ctx: Context, representation: Representation): Promise<void> {
  ctx.set('ETag', representation.etag);
  ctx.set('Accept-Ranges', 'bytes');
  if (matchesEtag(ctx.get('If-None-Match'), representation.etag)) {
    ctx.status = 304;
    return;
  }
  let range: ByteRange | undefined;
  const header = ctx.get('Range');
  const ifRange = ctx.get('If-Range');
  if (header && (!ifRange || ifRange === representation.etag)) {
    const ranges = parseRange(representation.size, header, { combine: true });
    if (ranges === -1) {
      ctx.status = 416;
      ctx.set('Content-Range', `bytes */${representation.size}`);
      ctx.body = '';
      return;
    }
    if (Array.isArray(ranges) && ranges.type === 'bytes' && ranges.length === 1) range = ranges[0]!;
  }
  const length = range ? range.end - range.start + 1 : representation.size;
  if (range) {
    ctx.status = 206;
    ctx.set('Content-Range', `bytes ${range.start}-${range.end}/${representation.size}`);
  } else {
    ctx.status = 200;
  }
  if (ctx.method === 'HEAD') {
    ctx.body = Buffer.alloc(0);
    ctx.set('Content-Length', String(length));
    return;
  }
  ctx.body = await representation.open(range);
  ctx.length = length;
}

/** If-None-Match against an entity tag: `*`, or any listed tag, weak or strong (a 304 revalidates, whatever Cache-Control the request carries). */
export function matchesEtag(header: string, etag: string): boolean {
  if (!header) return false;
  return header.trim() === '*' || header.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag);
}
