// GET of a binary artifact with `Accept: application/json` (seed 000): the file in a JSON
// envelope, base64 in `file_data`. Streamed: the JSON is written around a base64 encoding of the
// blob store's stream, so memory stays bounded whatever the file's size; above a limit the
// envelope is refused and the client told to fetch the bytes themselves.
import type { Context, Middleware } from 'koa';
import { Readable } from 'node:stream';
import { decodePath, resolve } from '../../generator/render/resolve.ts';
import type { BlobTarget } from '../../generator/render/route-table.ts';
import type { BlobStore } from '../../generator/stores/blob-store.ts';
import type { SiteSnapshot, SiteSource } from '../site-source.ts';

export interface BinaryEnvelopeOptions {
  site: SiteSource;
  blobs: BlobStore;
  /** Largest file served in an envelope, in bytes (MAX_ENVELOPE_BYTES). */
  maxBytes: number;
}

/** A row of a minor listing (`<major>/<minor>/index.json`), where a file's version and platform are. */
interface ListedFile {
  filename: string;
  version: string;
  platform: string;
  architecture: string;
  last_modified: string;
}

export function binaryEnvelope({ site, blobs, maxBytes }: BinaryEnvelopeOptions): Middleware {
  return async function binaryEnvelopeHandler(ctx, next) {
    if (!mayAskForEnvelope(ctx)) return next();
    const snapshot = await site.current();
    const target = envelopeTarget(ctx, snapshot);
    if (!target) return next();
    const listed = await listing(snapshot, decodePath(ctx.path)!, target.filename);
    const info = await blobs.stat(target.blob);
    if (!listed || !info) return next();
    ctx.vary('Accept');
    if (info.size > maxBytes) {
      ctx.status = 406;
      ctx.body = { error: 'Not Acceptable', message: `${target.filename} is ${info.size} bytes, over the ${maxBytes} a JSON envelope carries (MAX_ENVELOPE_BYTES); request it without Accept: application/json` };
      return;
    }
    sendEnvelope(ctx, target, listed, info.size, blobs);
  };
}

/** A request for an artifact's JSON envelope, which the sidecar builds: an API request, not a read of the site. */
export async function asksForEnvelope(ctx: Context, site: SiteSource): Promise<boolean> {
  return mayAskForEnvelope(ctx) && envelopeTarget(ctx, await site.current()) !== undefined;
}

/** Only a client that names JSON can want an envelope; everyone else goes straight to the site. */
function mayAskForEnvelope(ctx: Context): boolean {
  return (ctx.method === 'GET' || ctx.method === 'HEAD') && ctx.path.startsWith('/binary/releases/') && /json/i.test(ctx.get('Accept'));
}

/** The artifact whose envelope is asked for: the path names a blob and JSON is preferred to its own type. */
function envelopeTarget(ctx: Context, snapshot: SiteSnapshot): BlobTarget | undefined {
  const answer = resolve(snapshot.source, { path: ctx.path, query: ctx.querystring, accept: ctx.get('Accept') || undefined });
  if (answer.type !== 'blob' || ctx.accepts(answer.target.contentType, 'application/json') !== 'application/json') return undefined;
  return answer.target;
}

function sendEnvelope(ctx: Context, target: BlobTarget, listed: ListedFile, size: number, blobs: BlobStore): void {
  const head = JSON.stringify({
    success: true,
    filename: target.filename,
    content_type: target.contentType,
    content_length: size,
    metadata: { version: listed.version, platform: listed.platform, architecture: listed.architecture, checksum: `sha256:${target.sha256}`, uploaded_at: listed.last_modified },
  });
  const opening = `${head.slice(0, -1)},"file_data":"`;
  const closing = `","checksum":"${target.sha256}"}`;
  ctx.status = 200;
  ctx.type = 'application/json';
  ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
  ctx.set('ETag', `"${target.sha256}-json"`);
  ctx.length = Buffer.byteLength(opening) + 4 * Math.ceil(size / 3) + Buffer.byteLength(closing);
  if (ctx.method === 'HEAD') return;
  ctx.body = Readable.from(envelopeChunks(opening, closing, () => blobs.open(target.blob)));
}

/** The envelope's bytes: the opening, the file as base64 three bytes at a time across chunk borders, the closing. */
async function* envelopeChunks(opening: string, closing: string, open: () => Promise<AsyncIterable<Buffer>>): AsyncGenerator<Buffer> {
  yield Buffer.from(opening);
  let carry = Buffer.alloc(0);
  for await (const chunk of await open()) {
    const bytes = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    const whole = bytes.length - (bytes.length % 3);
    if (whole > 0) yield Buffer.from(bytes.subarray(0, whole).toString('base64'));
    carry = Buffer.from(bytes.subarray(whole));
  }
  yield Buffer.from(`${carry.toString('base64')}${closing}`);
}

/** The file's row in its minor listing, which the site already holds. */
async function listing(snapshot: SiteSnapshot, path: string, filename: string): Promise<ListedFile | undefined> {
  const key = `${path.slice(1, path.lastIndexOf('/') + 1)}index.json`;
  if (!snapshot.facts(key)) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of snapshot.open(key) as AsyncIterable<Buffer>) chunks.push(chunk);
  const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { files?: ListedFile[] };
  return body.files?.find((file) => file.filename === filename);
}
