// The njs module the generated nginx.conf imports: answers every request from the route table as
// sidecar/routes/static-site.ts does. Redirects, errors, 304 and 416 are sent from here; file
// and artifact bytes go through an internal redirect to nginx's static handler, which does
// sendfile, HEAD and single byte ranges.
// Bundled by esbuild for njs 0.7.9. nginx.ts's config gives it the route table preloaded whole
// (`mirrorRoutes`) or its index (`mirrorRouteIndex`, the shards in `$mirror_routes`), and the file
// facts preloaded (`mirrorSite`) or read a shard at a time (from `$mirror_files`).
import fs from 'fs';
import parseRange from 'range-parser';
import type { FileFacts, SiteManifest } from '../local-dir.ts';
import type { RouteTable } from '../../render/route-table.ts';
import { resolve, tableSource, type Answer, type RouteSource } from '../../render/resolve.ts';
import { shardLookup, shardMember, shardSource, type RouteShardIndex } from '../../render/route-shard-source.ts';
import { INTERNAL } from './locations.ts';

declare const mirrorRoutes: RouteTable | undefined;
declare const mirrorRouteIndex: RouteShardIndex;
declare const mirrorSite: SiteManifest | undefined;
/** render/site-file.ts's constant, put in by the bundler: that module's syntax is beyond njs. */
declare const CACHE_IMMUTABLE: string;

/** The part of njs's request object this module uses. */
interface NjsRequest {
  method: string;
  status: number;
  headersIn: Record<string, string | undefined>;
  headersOut: Record<string, string | undefined>;
  variables: Record<string, string | undefined>;
  return(status: number, body?: string): void;
  sendHeader(): void;
  send(body: string): void;
  finish(): void;
  internalRedirect(uri: string): void;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** The route table: preloaded whole, or its index preloaded and the shards a request needs read from `$mirror_routes`. */
function routeSource(r: NjsRequest): RouteSource {
  if (typeof mirrorRoutes !== 'undefined') return tableSource(mirrorRoutes);
  const dir = r.variables.mirror_routes;
  return shardSource(mirrorRouteIndex, (name) => fs.readFileSync(`${dir}/${name}`), shardMember);
}

/** A site file's facts: from the preloaded manifest, or from the shard of them its key hashes to. */
function fileFacts(r: NjsRequest, key: string): FileFacts | undefined {
  if (typeof mirrorSite !== 'undefined') return Object.prototype.hasOwnProperty.call(mirrorSite.files, key) ? mirrorSite.files[key] : undefined;
  const dir = r.variables.mirror_files;
  return shardLookup(Number(r.variables.mirror_file_shards), (name) => fs.readFileSync(`${dir}/${name}`), shardMember<FileFacts>)(key);
}

function serve(r: NjsRequest): void {
  const raw = splitRequestTarget(r.variables.request_uri || '');
  respond(r, r.method, resolve(routeSource(r), { path: raw.path, query: raw.query, accept: r.headersIn.Accept || undefined }));
}

/** nginx refused the request line (a `..` above the root, `%00`, an encoded `/` it decodes): answer as resolve does. */
function badRequest(r: NjsRequest): void {
  const request = original(r);
  const answer = resolve(routeSource(r), request);
  if (answer.type === 'error' && answer.status === 400) return respond(r, request.method, answer);
  sendJson(r, 400, { error: 'Bad Request', message: 'Bad Request' });
}

/** nginx refused the method itself (TRACE). */
function notAllowed(r: NjsRequest): void {
  const request = original(r);
  refuseMethod(r, request.method, resolve(routeSource(r), request));
}

/** The static handler found no file: an artifact missing from the blob store, or a request for an internal location. */
function notFound(r: NjsRequest): void {
  const request = original(r);
  const answer = resolve(routeSource(r), { path: request.path, query: request.query, accept: r.headersIn.Accept || undefined });
  ['Cache-Control', 'Content-Disposition', 'X-Checksum-Sha256', 'Vary', 'ETag'].forEach((name) => {
    delete r.headersOut[name];
  });
  if (answer.type === 'blob') return sendJson(r, 404, { error: 'Not Found', message: 'Binary not found' });
  if (answer.type === 'file') return sendJson(r, 500, { error: 'Internal Server Error', message: 'The server could not complete the request' });
  respond(r, request.method, answer);
}

/** The request as the client sent it: an error page runs as GET, and after nginx's own 400 `$request_uri` is empty. */
function original(r: NjsRequest): { method: string; path: string; query: string } {
  const line = /^(\S+) (\S*)/.exec(r.variables.request || '');
  const target = splitRequestTarget(line ? line[2]! : '');
  return { method: line ? line[1]! : r.method, path: target.path, query: target.query };
}

function respond(r: NjsRequest, method: string, answer: Answer): void {
  if (method !== 'GET' && method !== 'HEAD') return refuseMethod(r, method, answer);
  switch (answer.type) {
    case 'file': {
      const facts = fileFacts(r, answer.key);
      if (!facts) return sendJson(r, 500, { error: 'Internal Server Error', message: 'The server could not complete the request' });
      if (answer.negotiated) r.headersOut.Vary = 'Accept';
      r.headersOut['Cache-Control'] = facts.cacheControl;
      return sendBytes(r, { location: 'site', file: answer.key, contentType: koaContentType(facts.contentType), size: facts.size, etag: `"${facts.sha256}"` });
    }
    case 'blob': {
      const target = answer.target;
      r.headersOut['Cache-Control'] = CACHE_IMMUTABLE;
      r.headersOut['Content-Disposition'] = `attachment; filename="${target.filename}"`;
      r.headersOut['X-Checksum-Sha256'] = target.sha256;
      return sendBytes(r, { location: 'blob', file: target.blob, contentType: koaContentType(target.contentType), size: target.size, etag: `"${target.sha256}"` });
    }
    case 'redirect': {
      const body = `Redirecting to ${answer.location}\n`;
      r.status = answer.status;
      r.headersOut.Location = answer.location;
      r.headersOut['Cache-Control'] = answer.cacheControl;
      r.headersOut['Content-Type'] = 'text/plain; charset=utf-8';
      r.headersOut['Content-Length'] = String(new TextEncoder().encode(body).length);
      r.sendHeader();
      if (method !== 'HEAD') r.send(body);
      return r.finish();
    }
    case 'error':
      return sendJson(r, answer.status, answer.body, answer.cacheControl);
  }
}

/** Other methods belong to no route: 405 where GET would answer, the sidecar's plain 404 elsewhere. */
function refuseMethod(r: NjsRequest, method: string, answer: Answer): void {
  if (answer.type === 'error') return sendJson(r, 404, { error: 'Not Found', message: 'Not found' });
  r.headersOut.Allow = 'GET, HEAD';
  sendJson(r, 405, { error: 'Method Not Allowed', message: `${method} is not allowed here; use GET or HEAD` });
}

interface Representation {
  location: 'site' | 'blob';
  /** Site key or blob key: the internal location's `alias` appends it. */
  file: string;
  contentType: string;
  size: number;
  etag: string;
}

/** If-None-Match → 304 and unsatisfiable ranges → 416 here; everything else by nginx's static handler. */
function sendBytes(r: NjsRequest, representation: Representation): void {
  if (matchesEtag(r.headersIn['If-None-Match'], representation.etag)) {
    r.headersOut.ETag = representation.etag;
    r.headersOut['Accept-Ranges'] = 'bytes';
    r.status = 304;
    r.sendHeader();
    return r.finish();
  }
  r.headersOut['Content-Type'] = representation.contentType;
  const header = r.headersIn.Range;
  const ifRange = r.headersIn['If-Range'];
  let ranged = false;
  if (header && (!ifRange || ifRange === representation.etag)) {
    const ranges = parseRange(representation.size, header, { combine: true });
    if (ranges === -1) {
      r.headersOut.ETag = representation.etag;
      r.headersOut['Accept-Ranges'] = 'bytes';
      r.headersOut['Content-Range'] = `bytes */${representation.size}`;
      r.headersOut['Content-Length'] = '0';
      r.status = 416;
      r.sendHeader();
      return r.finish();
    }
    // nginx applies the Range header itself: only where the sidecar sends that one range.
    ranged = Array.isArray(ranges) && ranges.type === 'bytes' && ranges.length === 1;
  }
  r.variables.mirror_file = representation.file;
  r.variables.mirror_etag = representation.etag;
  r.internalRedirect(INTERNAL[representation.location][ranged ? 'ranged' : 'whole']);
}

function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.trim() === '*' || header.split(',').some((candidate) => candidate.trim().replace(/^W\//, '') === etag);
}

function sendJson(r: NjsRequest, status: number, body: unknown, cacheControl?: string): void {
  if (cacheControl !== undefined) r.headersOut['Cache-Control'] = cacheControl;
  r.headersOut['Content-Type'] = JSON_TYPE;
  r.return(status, JSON.stringify(body));
}

/** Koa's `ctx.type = ...` adds `charset=utf-8` to the types mime-db calls UTF-8 (JSON and text/*). */
function koaContentType(type: string): string {
  if (/;\s*charset=/i.test(type)) return type;
  return /^text\//i.test(type) || /^application\/json$/i.test(type) ? `${type}; charset=utf-8` : type;
}

/** Path and query as Koa's `ctx.path` and `ctx.querystring` see them: raw, a fragment dropped. */
function splitRequestTarget(target: string): { path: string; query: string } {
  const hash = target.indexOf('#');
  const withoutFragment = hash === -1 ? target : target.slice(0, hash);
  const question = withoutFragment.indexOf('?');
  return question === -1 ? { path: withoutFragment, query: '' } : { path: withoutFragment.slice(0, question), query: withoutFragment.slice(question + 1) };
}

export default { serve, badRequest, notFound, notAllowed };
