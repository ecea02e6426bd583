// Answers one request from the RouteTable. Pure, and the one implementation of the routing rules:
// the sidecar runs it, and the nginx adapter bundles it for njs. It is therefore written in the
// JavaScript Debian's njs 0.7.9 parses: no destructuring, for-of, spread, default parameters, `?.`
// or `??`, and no URLSearchParams (esbuild fails the nginx bundle if such syntax slips in).
import { lookupKey, type BlobTarget, type Endpoint, type ErrorShape, type Fallback, type RouteTable } from './route-table.ts';

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

export function resolve(table: RouteTable, request: RouteRequest): Answer {
  const path = decodePath(request.path);
  if (path === undefined) return error(table, 400, fallbackFor(table, request.path), 'invalid_request', 'Invalid path: encoded `/`, `\\`, NUL, `.` or `..` segments are refused');

  const target = own(table.paths, path);
  if (target !== undefined && target.type === 'blob') return { type: 'blob', target: target };
  if (target !== undefined && target.type === 'redirect') return { type: 'redirect', status: 302, location: target.location, cacheControl: table.errorCacheControl };
  if (target !== undefined && target.type === 'file') {
    const html = target.html !== undefined && prefersHtml(request.accept);
    return { type: 'file', key: html ? target.html! : target.key, negotiated: target.html !== undefined };
  }
  if (!path.endsWith('/') && own(table.paths, `${path}/`)) {
    return { type: 'redirect', status: 301, location: request.query ? `${path}/?${request.query}` : `${path}/`, cacheControl: table.errorCacheControl };
  }
  for (let i = 0; i < table.endpoints.length; i++) {
    const endpoint = table.endpoints[i]!;
    const pathParams = matchPattern(endpoint.pattern, path);
    if (pathParams) return answerEndpoint(table, endpoint, path, pathParams, request);
  }
  return notFound(table, path);
}

/** The 404 of the contract that owns the path, e.g. when a routed artifact's bytes are missing. */
export function notFound(table: RouteTable, path: string): ErrorAnswer {
  const fallback = fallbackFor(table, path);
  return error(table, 404, fallback, 'not_found', fallback.message);
}

function answerEndpoint(table: RouteTable, endpoint: Endpoint, path: string, pathParams: Record<string, string>, request: RouteRequest): Answer {
  const parsed = parseQuery(endpoint, request.query);
  if (!Array.isArray(parsed)) return error(table, 400, { shape: 'nested' }, 'invalid_request', parsed.message, { parameter: parsed.parameter, value: parsed.value });
  const key = lookupKey(path, parsed);
  const entry = own(endpoint.entries, key);
  if (entry !== undefined) {
    if (endpoint.answer === 'redirect') return { type: 'redirect', status: 302, location: entry, cacheControl: endpoint.cacheControl };
    const html = endpoint.html ? own(endpoint.html, entry) : undefined;
    return { type: 'file', key: html !== undefined && prefersHtml(request.accept) ? html : entry, negotiated: html !== undefined };
  }
  const details: Record<string, string | null> = {};
  Object.keys(pathParams).forEach((name) => {
    details[name] = pathParams[name]!;
  });
  list(endpoint.params).forEach((param) => {
    details[param.name] = valueOf(parsed, param.name);
  });
  const scoped = endpoint.scopes !== undefined && list(endpoint.scopes).indexOf(path) !== -1 && endpoint.notFound.scopedMessage !== undefined;
  return error(table, 404, { shape: 'nested' }, endpoint.notFound.code, scoped ? endpoint.notFound.scopedMessage! : endpoint.notFound.message, details);
}

interface QueryProblem {
  parameter: string;
  value: string | null;
  message: string;
}

/** Validates the query against the endpoint's parameters; returns them normalised, or the reason for a 400. */
function parseQuery(endpoint: Endpoint, raw: string): Query | QueryProblem {
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

function fallbackFor(table: RouteTable, path: string): Fallback {
  let best: Fallback = { prefix: '/', shape: 'flat', message: 'Not found' };
  list(table.fallbacks).forEach((fallback) => {
    if (path.startsWith(fallback.prefix) && fallback.prefix.length >= best.prefix.length) best = fallback;
  });
  return best;
}

function error(table: RouteTable, status: 400 | 404, fallback: { shape: ErrorShape }, code: string, message: string, details?: Record<string, string | null>): ErrorAnswer {
  const body =
    fallback.shape === 'flat'
      ? { error: status === 400 ? 'Bad Request' : 'Not Found', message: message }
      : { error: { code: code, message: message, details: details === undefined ? {} : details } };
  return { type: 'error', status: status, body: body, cacheControl: table.errorCacheControl };
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

const HEX = /^[0-9A-Fa-f]{2}$/;

function formDecode(text: string): string {
  const bytes = new TextEncoder().encode(text.replace(/\+/g, ' '));
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (byte === 0x25 && i + 2 < bytes.length && HEX.test(String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!))) {
      out.push(parseInt(String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!), 16));
      i += 2;
    } else {
      out.push(byte);
    }
  }
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(new Uint8Array(out));
}
