// Answers one request from the RouteTable. Pure: every adapter that cannot run this code
// (the CloudFront function, nginx) is tested against it.
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

export function resolve(table: RouteTable, request: RouteRequest): Answer {
  const path = decodePath(request.path);
  if (path === undefined) return error(table, 400, fallbackFor(table, request.path), 'invalid_request', 'Invalid path: encoded `/`, `\\`, NUL, `.` or `..` segments are refused');

  const target = table.paths[path];
  if (target?.type === 'blob') return { type: 'blob', target };
  if (target?.type === 'redirect') return { type: 'redirect', status: 302, location: target.location, cacheControl: table.errorCacheControl };
  if (target?.type === 'file') {
    const html = target.html !== undefined && prefersHtml(request.accept);
    return { type: 'file', key: html ? target.html! : target.key, negotiated: target.html !== undefined };
  }
  if (!path.endsWith('/') && table.paths[`${path}/`]) {
    return { type: 'redirect', status: 301, location: request.query ? `${path}/?${request.query}` : `${path}/`, cacheControl: table.errorCacheControl };
  }
  for (const endpoint of table.endpoints) {
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
  const entry = endpoint.entries[key];
  if (entry !== undefined) {
    if (endpoint.answer === 'redirect') return { type: 'redirect', status: 302, location: entry, cacheControl: endpoint.cacheControl };
    const html = endpoint.html?.[entry];
    return { type: 'file', key: html !== undefined && prefersHtml(request.accept) ? html : entry, negotiated: html !== undefined };
  }
  const details: Record<string, string | null> = { ...pathParams };
  for (const param of endpoint.params) details[param.name] = parsed.find(([name]) => name === param.name)?.[1] ?? null;
  const scoped = endpoint.scopes?.includes(path) && endpoint.notFound.scopedMessage !== undefined;
  return error(table, 404, { shape: 'nested' }, endpoint.notFound.code, scoped ? endpoint.notFound.scopedMessage! : endpoint.notFound.message, details);
}

interface QueryProblem {
  parameter: string;
  value: string | null;
  message: string;
}

/** Validates the query against the endpoint's parameters; returns them normalised, or the reason for a 400. */
function parseQuery(endpoint: Endpoint, raw: string): [string, string][] | QueryProblem {
  const given = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(raw)) {
    if (!endpoint.params.some((param) => param.name === name)) {
      const expected = endpoint.params.length ? `expected ${endpoint.params.map((param) => `\`${param.name}\``).join(', ')}` : 'this path takes none';
      return { parameter: name, value, message: `Unknown query parameter \`${name}\`; ${expected}` };
    }
    if (given.has(name)) return { parameter: name, value, message: `Query parameter \`${name}\` is given more than once` };
    given.set(name, value);
  }
  const normalised: [string, string][] = [];
  for (const param of endpoint.params) {
    const value = given.get(param.name);
    const condition = param.onlyWith;
    const conditionHolds = condition !== undefined && normalised.some(([name, v]) => name === condition.param && v === condition.value);
    if (value === undefined) {
      if (param.required || conditionHolds) {
        const message = condition ? `Query parameter \`${param.name}\` is required when ${condition.param}=${condition.value}` : `Missing required query parameter \`${param.name}\``;
        return { parameter: param.name, value: null, message };
      }
      if (param.default !== undefined) normalised.push([param.name, param.default]);
      continue;
    }
    if (condition && !conditionHolds) return { parameter: param.name, value, message: `Query parameter \`${param.name}\` is only valid with ${condition.param}=${condition.value}` };
    if (param.values ? !param.values.includes(value) : !/^[1-9][0-9]{0,8}$/.test(value)) {
      const expected = param.values ? `one of ${param.values.join(', ')}` : 'a positive integer';
      return { parameter: param.name, value, message: `Expected \`${param.name}\` to be ${expected}, got \`${value}\`` };
    }
    normalised.push([param.name, value]);
  }
  return normalised;
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
  if (!raw.startsWith('/') || raw.includes('\\')) return undefined;
  const segments = raw.split('/');
  const decoded: string[] = [];
  for (const segment of segments) {
    let value: string;
    try {
      value = decodeURIComponent(segment);
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
  for (const part of accept.split(',')) {
    const [type = '', ...parameters] = part.trim().toLowerCase().split(';');
    const q = Number(parameters.map((p) => p.trim()).find((p) => p.startsWith('q='))?.slice(2) ?? '1');
    const quality = Number.isFinite(q) ? q : 0;
    if (type === 'text/html') html = Math.max(html, quality);
    if (type === 'application/json' || type === 'application/*' || type === '*/*') json = Math.max(json, type === 'application/json' ? quality : quality * 0.999);
  }
  return html > 0 && html > json;
}

function fallbackFor(table: RouteTable, path: string): Fallback {
  let best: Fallback = { prefix: '/', shape: 'flat', message: 'Not found' };
  for (const fallback of table.fallbacks) {
    if (path.startsWith(fallback.prefix) && fallback.prefix.length >= best.prefix.length) best = fallback;
  }
  return best;
}

function error(table: RouteTable, status: 400 | 404, fallback: { shape: ErrorShape }, code: string, message: string, details?: Record<string, string | null>): ErrorAnswer {
  const body =
    fallback.shape === 'flat'
      ? { error: status === 400 ? 'Bad Request' : 'Not Found', message }
      : { error: { code, message, details: details ?? {} } };
  return { type: 'error', status, body, cacheControl: table.errorCacheControl };
}
