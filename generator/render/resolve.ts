// Answers one request from the routing table. Pure, and the one implementation of the routing
// rules: the sidecar runs it, and the nginx and CloudFront adapters bundle it for njs. It is
// therefore written in the JavaScript Debian's njs 0.7.9 and CloudFront's cloudfront-js-2.0 both
// parse: no destructuring, for-of, spread, default parameters, classes, `?.` or `??`, and no
// URLSearchParams or TextEncoder (esbuild fails those bundles if such syntax slips in).
import { lookupKey, type BlobTarget, type EndpointRule, type ErrorShape, type Fallback, type PathTarget, type RouteTable } from './route-table.ts';

export interface RouteRequest {
  /** The raw path as received, percent-encoded, without the query. */
  path: string;
  /** The raw query string without `?`. */
  query: string;
  accept?: string | undefined;
}

export type Answer =
  | { type: 'file'; key: string; negotiated: boolean }
  | { type: 'blob'; target: BlobTarget }
  | { type: 'redirect'; status: 301 | 302; location: string; cacheControl: string }
  | { type: 'error'; status: 400 | 404; body: unknown; cacheControl: string };

export type ErrorAnswer = Extract<Answer, { type: 'error' }>;

type Query = [string, string][];

/**
 * What `resolve` reads, one lookup at a time: a RouteTable held in memory (`tableSource`), or the
 * CloudFront function's KeyValueStore, which is read key by key.
 */
export interface RouteSource {
  path(path: string): PathTarget | undefined;
  /** Endpoint patterns in the order they are tried. */
  patterns(): string[];
  endpoint(index: number): EndpointRule;
  /** The endpoint's entry under a lookup key: redirect location or site file key, and the file's browser alternative. */
  entry(index: number, key: string): { value: string; html: string | undefined } | undefined;
  /** True when the path is a scope of the endpoint (an existing release, say). */
  inScope(index: number, path: string): boolean;
  fallbacks(): Fallback[];
  errorCacheControl(): string;
}

export function tableSource(table: RouteTable): RouteSource {
  return {
    path: (path) => own(table.paths, path),
    patterns: () => list(table.endpoints).map((endpoint) => endpoint.pattern),
    endpoint: (index) => table.endpoints[index]!,
    entry: (index, key) => {
      const endpoint = table.endpoints[index]!;
      const value = own(endpoint.entries, key);
      if (value === undefined) return undefined;
      return { value: value, html: endpoint.html ? own(endpoint.html, value) : undefined };
    },
    inScope: (index, path) => {
      const scopes = table.endpoints[index]!.scopes;
      return scopes !== undefined && list(scopes).indexOf(path) !== -1;
    },
    fallbacks: () => list(table.fallbacks),
    errorCacheControl: () => table.errorCacheControl,
  };
}

export function resolve(source: RouteSource, request: RouteRequest): Answer {
  const path = decodePath(request.path);
  if (path === undefined) return error(source, 400, fallbackFor(source, request.path), 'invalid_request', 'Invalid path: encoded `/`, `\\`, NUL, `.` or `..` segments are refused');

  const target = source.path(path);
  if (target !== undefined && target.type === 'blob') return { type: 'blob', target: target };
  if (target !== undefined && target.type === 'redirect') return { type: 'redirect', status: 302, location: target.location, cacheControl: source.errorCacheControl() };
  if (target !== undefined && target.type === 'file') {
    const html = target.html !== undefined && prefersHtml(request.accept);
    return { type: 'file', key: html ? target.html! : target.key, negotiated: target.html !== undefined };
  }
  if (!path.endsWith('/') && source.path(`${path}/`) !== undefined) {
    return { type: 'redirect', status: 301, location: request.query ? `${path}/?${request.query}` : `${path}/`, cacheControl: source.errorCacheControl() };
  }
  const patterns = source.patterns();
  for (let i = 0; i < patterns.length; i++) {
    const pathParams = matchPattern(patterns[i]!, path);
    if (pathParams) return answerEndpoint(source, i, path, pathParams, request);
  }
  return notFound(source, path);
}

/** The 404 of the contract that owns the path, e.g. when a routed artifact's bytes are missing. */
export function notFound(source: RouteSource, path: string): ErrorAnswer {
  const fallback = fallbackFor(source, path);
  return error(source, 404, fallback, 'not_found', fallback.message);
}

function answerEndpoint(source: RouteSource, index: number, path: string, pathParams: Record<string, string>, request: RouteRequest): Answer {
  const endpoint = source.endpoint(index);
  const parsed = parseQuery(endpoint, request.query);
  if (!Array.isArray(parsed)) return error(source, 400, { shape: 'nested' }, 'invalid_request', parsed.message, { parameter: parsed.parameter, value: parsed.value });
  const entry = source.entry(index, lookupKey(path, parsed));
  if (entry !== undefined) {
    if (endpoint.answer === 'redirect') return { type: 'redirect', status: 302, location: entry.value, cacheControl: endpoint.cacheControl };
    const html = entry.html;
    return { type: 'file', key: html !== undefined && prefersHtml(request.accept) ? html : entry.value, negotiated: html !== undefined };
  }
  const details: Record<string, string | null> = {};
  Object.keys(pathParams).forEach((name) => {
    details[name] = pathParams[name]!;
  });
  list(endpoint.params).forEach((param) => {
    details[param.name] = valueOf(parsed, param.name);
  });
  const scoped = endpoint.notFound.scopedMessage !== undefined && source.inScope(index, path);
  return error(source, 404, { shape: 'nested' }, endpoint.notFound.code, scoped ? endpoint.notFound.scopedMessage! : endpoint.notFound.message, details);
}

interface QueryProblem {
  parameter: string;
  value: string | null;
  message: string;
}

/** Validates the query against the endpoint's parameters; returns them normalised, or the reason for a 400. */
function parseQuery(endpoint: EndpointRule, raw: string): Query | QueryProblem {
  const params = list(endpoint.params);
  const names = params.map((param) => param.name);
  const given: Record<string, string> = {};
  const pairs = parseFormUrlEncoded(raw);
  for (let i = 0; i < pairs.length; i++) {
    const name = pairs[i]![0];
    const value = pairs[i]![1];
    if (names.indexOf(name) === -1) {
      const expected = names.length ? `expected ${names.map((n) => `\`${n}\``).join(', ')}` : 'this path takes none';
      return { parameter: name, value: value, message: `Unknown query parameter \`${name}\`; ${expected}` };
    }
    if (Object.prototype.hasOwnProperty.call(given, name)) return { parameter: name, value: value, message: `Query parameter \`${name}\` is given more than once` };
    given[name] = value;
  }
  const normalised: Query = [];
  for (let i = 0; i < params.length; i++) {
    const param = params[i]!;
    const value = Object.prototype.hasOwnProperty.call(given, param.name) ? given[param.name] : undefined;
    const condition = param.onlyWith;
    const conditionHolds = condition !== undefined && normalised.some((pair) => pair[0] === condition.param && pair[1] === condition.value);
    if (value === undefined) {
      if (param.required || conditionHolds) {
        const message = condition ? `Query parameter \`${param.name}\` is required when ${condition.param}=${condition.value}` : `Missing required query parameter \`${param.name}\``;
        return { parameter: param.name, value: null, message: message };
      }
      if (param.default !== undefined) normalised.push([param.name, param.default]);
      continue;
    }
    if (condition && !conditionHolds) return { parameter: param.name, value: value, message: `Query parameter \`${param.name}\` is only valid with ${condition.param}=${condition.value}` };
    const values = param.values ? list(param.values) : undefined;
    if (values ? values.indexOf(value) === -1 : !/^[1-9][0-9]{0,8}$/.test(value)) {
      const expected = values ? `one of ${values.join(', ')}` : 'a positive integer';
      return { parameter: param.name, value: value, message: `Expected \`${param.name}\` to be ${expected}, got \`${value}\`` };
    }
    normalised.push([param.name, value]);
  }
  return normalised;
}

function valueOf(query: Query, name: string): string | null {
  for (let i = 0; i < query.length; i++) if (query[i]![0] === name) return query[i]![1];
  return null;
}

function matchPattern(pattern: string, path: string): Record<string, string> | undefined {
  const patternSegments = pattern.split('/');
  const pathSegments = path.split('/');
  if (patternSegments.length !== pathSegments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < patternSegments.length; i++) {
    const expected = patternSegments[i]!;
    const actual = pathSegments[i]!;
    if (expected.startsWith(':')) {
      if (actual === '') return undefined;
      params[expected.slice(1)] = actual;
    } else if (expected !== actual) return undefined;
  }
  return params;
}

/** Percent-decodes a path; undefined when it tries to leave its folder or hides a separator. */
export function decodePath(raw: string): string | undefined {
  if (!raw.startsWith('/') || raw.indexOf('\\') !== -1) return undefined;
  const segments = raw.split('/');
  const decoded: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    let value: string;
    try {
      value = decodeURIComponent(segments[i]!);
    } catch {
      return undefined;
    }
    if (value === '.' || value === '..' || /[/\\\0]/.test(value)) return undefined;
    decoded.push(value);
  }
  return decoded.join('/');
}

/** True when the client ranks `text/html` above JSON: browsers do, `curl` and API clients do not. */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  let html = 0;
  let json = 0;
  const parts = accept.split(',');
  for (let i = 0; i < parts.length; i++) {
    const pieces = parts[i]!.trim().toLowerCase().split(';');
    const type = pieces[0]!;
    let q = '1';
    for (let j = 1; j < pieces.length; j++) {
      const piece = pieces[j]!.trim();
      if (piece.startsWith('q=')) {
        q = piece.slice(2);
        break;
      }
    }
    const quality = Number.isFinite(Number(q)) ? Number(q) : 0;
    if (type === 'text/html') html = Math.max(html, quality);
    if (type === 'application/json' || type === 'application/*' || type === '*/*') json = Math.max(json, type === 'application/json' ? quality : quality * 0.999);
  }
  return html > 0 && html > json;
}

function fallbackFor(source: RouteSource, path: string): Fallback {
  let best: Fallback = { prefix: '/', shape: 'flat', message: 'Not found' };
  source.fallbacks().forEach((fallback) => {
    if (path.startsWith(fallback.prefix) && fallback.prefix.length >= best.prefix.length) best = fallback;
  });
  return best;
}

function error(source: RouteSource, status: 400 | 404, fallback: { shape: ErrorShape }, code: string, message: string, details?: Record<string, string | null>): ErrorAnswer {
  const body =
    fallback.shape === 'flat'
      ? { error: status === 400 ? 'Bad Request' : 'Not Found', message: message }
      : { error: { code: code, message: message, details: details === undefined ? {} : details } };
  return { type: 'error', status: status, body: body, cacheControl: source.errorCacheControl() };
}

/** A real array: njs 0.7.9 gives the arrays of a `js_preload_object` no prototype, so no methods. */
function list<T>(items: T[]): T[] {
  return Array.prototype.slice.call(items) as T[];
}

/** Own properties only: a path such as `/constructor` must not find `Object.prototype`'s. */
function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

/**
 * `new URLSearchParams(raw)` as the WHATWG URL standard parses it: `&`-separated pairs, `+` is a
 * space, `%XX` bytes decoded as UTF-8 with U+FFFD for invalid sequences, malformed escapes kept.
 */
export function parseFormUrlEncoded(raw: string): [string, string][] {
  const input = raw.charAt(0) === '?' ? raw.slice(1) : raw;
  const pairs: [string, string][] = [];
  const sequences = input.split('&');
  for (let i = 0; i < sequences.length; i++) {
    const sequence = sequences[i]!;
    if (sequence === '') continue;
    const equals = sequence.indexOf('=');
    const name = equals === -1 ? sequence : sequence.slice(0, equals);
    const value = equals === -1 ? '' : sequence.slice(equals + 1);
    pairs.push([formDecode(name), formDecode(value)]);
  }
  return pairs;
}

/** Percent-decodes each run of `%XX` escapes as UTF-8; literal characters are already text. */
function formDecode(text: string): string {
  return text.replace(/\+/g, ' ').replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    const bytes: number[] = [];
    for (let i = 0; i < run.length; i += 3) bytes.push(parseInt(run.slice(i + 1, i + 3), 16));
    return decodeUtf8(bytes);
  });
}

/** UTF-8 decoding as the Encoding standard does it: one U+FFFD per maximal invalid subsequence. */
function decodeUtf8(bytes: number[]): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i]!;
    let need = 0;
    let point = 0;
    let lower = 0x80;
    let upper = 0xbf;
    if (lead < 0x80) need = 0;
    else if (lead >= 0xc2 && lead <= 0xdf) need = 1;
    else if (lead >= 0xe0 && lead <= 0xef) need = 2;
    else if (lead >= 0xf0 && lead <= 0xf4) need = 3;
    else {
      out += '\ufffd';
      i++;
      continue;
    }
    if (lead === 0xe0) lower = 0xa0;
    if (lead === 0xed) upper = 0x9f;
    if (lead === 0xf0) lower = 0x90;
    if (lead === 0xf4) upper = 0x8f;
    point = need === 0 ? lead : lead & (0x3f >> need);
    let seen = 1;
    while (seen <= need) {
      const next = bytes[i + seen];
      if (next === undefined || next < lower || next > upper) break;
      point = (point << 6) | (next & 0x3f);
      lower = 0x80;
      upper = 0xbf;
      seen++;
    }
    if (seen <= need) {
      out += '\ufffd';
      i += seen;
      continue;
    }
    out += String.fromCodePoint(point);
    i += seen;
  }
  return out;
}
