// The one routing table every serving adapter (sidecar, CloudFront function, nginx) follows.
// It is plain JSON so it can be shipped to the edge and into key-value stores unchanged.
import type { Artifact } from '../model/catalog.ts';

/** A file of the rendered site, addressed by its key (path without the leading slash). */
export interface FileTarget {
  type: 'file';
  key: string;
  /** Alternative for clients that prefer `text/html` (browsers); same URL, chosen by `Accept`. */
  html?: string;
}

/** Artifact bytes kept in the blob store, served under a public path without being copied. */
export interface BlobTarget {
  type: 'blob';
  blob: string;
  filename: string;
  contentType: string;
  size: number;
  sha256: string;
}

/** A path answered by a temporary redirect, e.g. a version's page to its section of the minor page. */
export interface RedirectTarget {
  type: 'redirect';
  location: string;
}

export type PathTarget = FileTarget | BlobTarget | RedirectTarget;

/** `{"error": "Not Found", "message": ...}` (seed 000) or `{"error": {"code", "message", "details"}}` (seeds 001/002). */
export type ErrorShape = 'flat' | 'nested';

export interface QueryParam {
  name: string;
  /** Allowed values; absent means any positive integer. */
  values?: string[];
  default?: string;
  required?: boolean;
  /** Required when another parameter has this value, refused otherwise. */
  onlyWith?: { param: string; value: string };
}

/** How an endpoint answers: a path pattern (`:name` matches one segment) and its query parameters. */
export interface EndpointRule {
  pattern: string;
  params: QueryParam[];
  answer: 'redirect' | 'file';
  notFound: { code: string; message: string; scopedMessage?: string };
  cacheControl: string;
}

/** A path pattern answered from its query parameters, with every answer it can give. */
export interface Endpoint extends EndpointRule {
  /** Lookup key (see `lookupKey`) → redirect location, or site file key. */
  entries: Record<string, string>;
  /** Browser alternatives of file entries: site file key → HTML key. */
  html?: Record<string, string>;
  /** Matched paths that exist: a miss under one of them is "artifact not found", otherwise the message of `notFound`. */
  scopes?: string[];
}

/** Answer for unknown paths under a prefix. */
export interface Fallback {
  prefix: string;
  shape: ErrorShape;
  message: string;
}

export interface RouteTable {
  version: 1;
  paths: Record<string, PathTarget>;
  /** Tried in order after `paths`. */
  endpoints: Endpoint[];
  /** Longest matching prefix wins; `/` always matches. */
  fallbacks: Fallback[];
  errorCacheControl: string;
}

/** The table without its paths: what a server reads first, and what a build that spills the paths keeps (publish/route-spill.ts). */
export type RouteRules = Omit<RouteTable, 'paths'>;

/** The key an endpoint's entries are stored under: path, then the query in parameter order, defaults applied. */
export function lookupKey(path: string, query: [string, string][]): string {
  return query.length === 0 ? path : `${path}?${query.map((pair) => `${pair[0]}=${pair[1]}`).join('&')}`;
}

/** The route that serves an artifact's bytes from the blob store. */
export function blobTarget(artifact: Artifact): BlobTarget {
  return { type: 'blob', blob: artifact.blob, filename: artifact.filename, contentType: artifact.contentType, size: artifact.size, sha256: artifact.sha256 };
}
