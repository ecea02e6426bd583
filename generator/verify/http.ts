// The verifier's only way to the mirror: GETs that never follow redirects on their own, a cap on
// requests in flight, and every failure recorded as a problem rather than thrown.
import { createHash } from 'node:crypto';
import pLimit from 'p-limit';
import type { z } from 'zod';
import type { Recorder } from './report.ts';

/** What each layout's checks are given: the way to the mirror and where findings go. */
export interface Crawl {
  http: MirrorHttp;
  record: Recorder;
}

export interface MirrorHttpOptions {
  /** The fetch to use; Node's global one unless a test or the CLI passes another. */
  fetch: typeof fetch;
  /** Requests in flight at most, downloads included. */
  concurrency: number;
  record: Recorder;
}

/** What a download received: its bytes were hashed as they streamed, never held whole. */
export interface Download {
  size: number;
  sha256: string;
  contentType: string | null;
}

export interface MirrorHttp {
  /** A JSON index; undefined (problem recorded) unless a 200 whose body fits the schema. */
  json<T>(url: URL, schema: z.ZodType<T>): Promise<T | undefined>;
  /** Like `json`, but a 404 is an answer, `null`, for the caller to judge. */
  jsonOrNotFound<T>(url: URL, schema: z.ZodType<T>): Promise<T | null | undefined>;
  /** A small text file such as a SHA256SUMS. */
  text(url: URL): Promise<string | undefined>;
  /** A small file's bytes, asked for with `accept`; null for a 404, which the caller judges. */
  bytes(url: URL, accept: string): Promise<Buffer | null | undefined>;
  /** A URL that must answer 302 with a Location; returns the Location resolved against `url`. */
  redirect(url: URL): Promise<URL | undefined>;
  /** A file that must answer 200; checks its X-Checksum-Sha256 (or x-amz-meta-sha256) header when there is one. */
  download(url: URL): Promise<Download | undefined>;
}

const JSON_ACCEPT = 'application/json';
const MAX_ATTEMPTS = 5;
const MAX_RETRY_AFTER_MS = 60_000;

/** `Retry-After` in seconds or as a date; undefined when absent or longer than a crawl should wait. */
function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const ms = /^\d+$/.test(header.trim()) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) && ms <= MAX_RETRY_AFTER_MS ? Math.max(ms, 0) : undefined;
}

export function createMirrorHttp({ fetch, concurrency, record }: MirrorHttpOptions): MirrorHttp {
  const limit = pLimit(concurrency);

  async function get(url: URL, accept?: string): Promise<Response | undefined> {
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, { redirect: 'manual', headers: accept ? { accept } : {} });
      } catch (error) {
        record.problem(url, `request failed: ${describeError(error)}`);
        return undefined;
      }
      // A rate-limited mirror (the sidecar, a CDN) says when to come back; a crawl waits rather than reporting it broken.
      const wait = response.status === 429 || response.status === 503 ? retryAfterMs(response.headers.get('retry-after')) : undefined;
      if (wait === undefined || attempt === MAX_ATTEMPTS) return response;
      await discard(response);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  async function readText(url: URL, accept: string | undefined, allowNotFound: boolean): Promise<{ text: string; contentType: string } | null | undefined> {
    const response = await get(url, accept);
    if (!response) return undefined;
    if (allowNotFound && response.status === 404) {
      await discard(response);
      return null;
    }
    if (response.status !== 200) {
      await discard(response);
      record.problem(url, `expected status 200, got ${response.status}${locationNote(response)}`);
      return undefined;
    }
    try {
      const text = await response.text();
      record.progress({ type: 'index', url: String(url) });
      return { text, contentType: response.headers.get('content-type') ?? 'no Content-Type' };
    } catch (error) {
      record.problem(url, `reading the body failed: ${describeError(error)}`);
      return undefined;
    }
  }

  async function readJson<T>(url: URL, schema: z.ZodType<T>, allowNotFound: boolean): Promise<T | null | undefined> {
    const body = await limit(() => readText(url, JSON_ACCEPT, allowNotFound));
    if (!body) return body;
    let data: unknown;
    try {
      data = JSON.parse(body.text);
    } catch {
      record.problem(url, `expected a JSON body, got ${body.contentType}: ${preview(body.text)}`);
      return undefined;
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      record.problem(url, `expected the index's JSON shape, got ${parsed.error.issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`).join('; ')}`);
      return undefined;
    }
    return parsed.data;
  }

  return {
    json: (url, schema) => readJson(url, schema, false).then((data) => data ?? undefined),
    jsonOrNotFound: (url, schema) => readJson(url, schema, true),
    text: (url) => limit(() => readText(url, undefined, false)).then((body) => body?.text),

    bytes: (url, accept) =>
      limit(async function readBytes() {
        const response = await get(url, accept);
        if (!response) return undefined;
        if (response.status === 404) {
          await discard(response);
          return null;
        }
        if (response.status !== 200) {
          await discard(response);
          record.problem(url, `expected status 200, got ${response.status}${locationNote(response)}`);
          return undefined;
        }
        try {
          const body = Buffer.from(await response.arrayBuffer());
          record.progress({ type: 'index', url: String(url) });
          return body;
        } catch (error) {
          record.problem(url, `reading the body failed: ${describeError(error)}`);
          return undefined;
        }
      }),

    redirect: (url) =>
      limit(async function checkRedirect() {
        const response = await get(url);
        if (!response) return undefined;
        await discard(response);
        if (response.status !== 302) {
          record.problem(url, `expected status 302, got ${response.status}`);
          return undefined;
        }
        const location = response.headers.get('location');
        if (!location) {
          record.problem(url, 'expected a Location header on the 302, got none');
          return undefined;
        }
        const target = resolveLink(record, url, location, 'Location');
        if (target) record.count('redirectsFollowed');
        return target;
      }),

    download: (url) =>
      limit(async function streamAndHash() {
        const response = await get(url);
        if (!response) return undefined;
        if (response.status !== 200) {
          await discard(response);
          record.problem(url, `expected status 200, got ${response.status}${locationNote(response)}`);
          return undefined;
        }
        record.count('filesDownloaded');
        const hash = createHash('sha256');
        let size = 0;
        try {
          for await (const chunk of response.body ?? []) {
            hash.update(chunk);
            size += chunk.byteLength;
            record.count('bytesDownloaded', chunk.byteLength);
          }
        } catch (error) {
          record.problem(url, `download failed after ${size} bytes: ${describeError(error)}`);
          return undefined;
        }
        const sha256 = hash.digest('hex');
        // The sidecar and nginx send X-Checksum-Sha256; from S3 the deployer's metadata arrives as x-amz-meta-sha256.
        const header = response.headers.has('x-checksum-sha256') ? 'X-Checksum-Sha256' : 'x-amz-meta-sha256';
        const announced = response.headers.get(header);
        if (announced !== null && announced.toLowerCase() !== sha256) record.problem(url, `expected sha256 ${announced} (its ${header} header), got ${sha256}`, 'tampered');
        record.progress({ type: 'download', url: String(url), bytes: size });
        return { size, sha256, contentType: response.headers.get('content-type') };
      }),
  };
}

/** A link an index gave, resolved against the index's URL; a link that is no URL is a problem. */
export function resolveLink(record: Recorder, from: URL, link: string, what: string): URL | undefined {
  if (URL.canParse(link, from)) return new URL(link, from);
  record.problem(from, `expected ${what} to be a URL, got \`${link}\``);
  return undefined;
}

/** Frees the connection of a response whose body is not wanted. */
async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}

function locationNote(response: Response): string {
  const location = response.headers.get('location');
  return location ? ` (Location: ${location})` : '';
}

/** fetch wraps the useful part (ECONNREFUSED, a reset) in `cause`. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

function preview(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat === '' ? '(empty)' : `\`${flat.length > 60 ? `${flat.slice(0, 60)}…` : flat}\``;
}
