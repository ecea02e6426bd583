// The CloudFront viewer-request function (cloudfront-js-2.0): answers every request from the route
// table kept in the distribution's KeyValueStore, as sidecar/routes/static-site.ts does. Files and
// artifacts become a rewrite of the URI to their object key; redirects and the contracts' errors
// are answered here. Bundled by `cloudFrontFunctionCode`; the code never changes with the catalog.
import cf from 'cloudfront';
import { resolve, type Answer, type RouteRequest } from '../../render/resolve.ts';
import { kvsSource } from './kvs-format.ts';

/** The parts of CloudFront's event this function reads and returns. */
interface CfValue {
  value: string;
  multiValue?: CfValue[];
}
interface CfRequest {
  method: string;
  uri: string;
  querystring: Record<string, CfValue>;
  headers: Record<string, CfValue>;
}
interface CfResponse {
  statusCode: number;
  statusDescription: string;
  headers: Record<string, CfValue>;
  body?: { encoding: 'text'; data: string };
}

const store = cf.kvs();
const JSON_TYPE = 'application/json; charset=utf-8';
const STATUS_TEXT: Record<number, string> = { 301: 'Moved Permanently', 302: 'Found', 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed' };
/** Keys a request reads at most: path, `path/`, routes, endpoint rule, entry, scope. */
const MAX_READS = 8;

/** Thrown by the store reader for a key it has not fetched; the handler fetches it and resolves again. */
interface Unfetched {
  unfetched: string;
}

export async function handler(event: { request: CfRequest }): Promise<CfRequest | CfResponse> {
  const request = event.request;
  const routed: RouteRequest = { path: request.uri, query: rawQuery(request.querystring), accept: header(request, 'accept') };
  const fetched: Record<string, string | null> = {};
  for (let reads = 0; reads <= MAX_READS; reads++) {
    const attempt = resolveWith(fetched, routed);
    if (attempt.unfetched === undefined) return respond(request, attempt.answer!);
    fetched[attempt.unfetched] = await read(attempt.unfetched);
  }
  throw new Error(`Routing ${request.uri} read more than ${MAX_READS} keys`);
}

/** Resolves with the keys fetched so far; names the next key it needs when one is missing. */
function resolveWith(fetched: Record<string, string | null>, request: RouteRequest): { answer?: Answer; unfetched?: string } {
  const source = kvsSource((key) => {
    if (!Object.prototype.hasOwnProperty.call(fetched, key)) throw { unfetched: key } as Unfetched;
    return fetched[key]!;
  });
  try {
    return { answer: resolve(source, request) };
  } catch (error) {
    if (error !== null && typeof error === 'object' && typeof (error as Unfetched).unfetched === 'string') return { unfetched: (error as Unfetched).unfetched };
    throw error;
  }
}

/** The store's value, or null: `get` rejects for a key the store lacks. (njs refuses `await` in call arguments.) */
async function read(key: string): Promise<string | null> {
  try {
    return await store.get(key);
  } catch (error) {
    const exists = await store.exists(key);
    if (exists) throw error;
    return null;
  }
}

function respond(request: CfRequest, answer: Answer): CfRequest | CfResponse {
  const method = request.method;
  if (method !== 'GET' && method !== 'HEAD') {
    // As the sidecar: 405 where GET would answer, its plain 404 elsewhere.
    if (answer.type === 'error') return json(404, { error: 'Not Found', message: 'Not found' });
    const refused = json(405, { error: 'Method Not Allowed', message: `${method} is not allowed here; use GET or HEAD` });
    refused.headers.allow = { value: 'GET, HEAD' };
    return refused;
  }
  switch (answer.type) {
    case 'file':
      return rewrite(request, answer.key);
    case 'blob':
      return rewrite(request, answer.target.blob);
    case 'redirect':
      return {
        statusCode: answer.status,
        statusDescription: STATUS_TEXT[answer.status]!,
        headers: { location: { value: answer.location }, 'cache-control': { value: answer.cacheControl }, 'content-type': { value: 'text/plain; charset=utf-8' } },
        body: { encoding: 'text', data: `Redirecting to ${answer.location}\n` },
      };
    case 'error': {
      const response = json(answer.status, answer.body);
      response.headers['cache-control'] = { value: answer.cacheControl };
      return response;
    }
  }
}

function rewrite(request: CfRequest, key: string): CfRequest {
  request.uri = `/${key.split('/').map(encodeURIComponent).join('/')}`;
  request.querystring = {};
  return request;
}

function json(status: number, body: unknown): CfResponse {
  return { statusCode: status, statusDescription: STATUS_TEXT[status]!, headers: { 'content-type': { value: JSON_TYPE } }, body: { encoding: 'text', data: JSON.stringify(body) } };
}

function header(request: CfRequest, name: string): string | undefined {
  const entry = request.headers[name];
  return entry === undefined ? undefined : entry.value;
}

/** The query as the viewer sent it: CloudFront passes names and values undecoded. */
function rawQuery(querystring: Record<string, CfValue>): string {
  const pairs: string[] = [];
  for (const name in querystring) {
    const entry = querystring[name]!;
    const values = entry.multiValue ? entry.multiValue : [entry];
    for (let i = 0; i < values.length; i++) pairs.push(values[i]!.value === '' ? name : `${name}=${values[i]!.value}`);
  }
  return pairs.join('&');
}
