// How the route table is laid out in a CloudFront KeyValueStore, and read back at the edge. The
// CloudFront function bundles this file, so it keeps to the JavaScript subset resolve.ts describes.
//
// Keys: a path (`/…`) holds its target; `?` + lookup key an endpoint's entry; `!` + path marks an
// endpoint scope; `:routes` the patterns, fallbacks and error cache policy; `:endpoint:` + pattern
// one endpoint's rule. At the edge every target is an object of the bucket, so an artifact is a
// file whose key is its blob key. Values are short, because the store holds at most 5 MB:
//   `d`            a folder: `<path>index.json`, or `<path>index.html` for browsers
//   `f`            the object whose key is the path without its leading `/`
//   `o<key>`       the object `<key>`
//   `h<key>\n<html>` the object `<key>`, or `<html>` for browsers
//   `r<location>`  a 302 to `<location>`
// Binary artifacts whose blob key `derivedBlob` computes from the path are left out: the function
// rewrites them by that rule, and the bucket answers for the ones that do not exist.
import type { EndpointRule, Fallback, PathTarget } from '../../render/route-table.ts';
import type { RouteSource } from '../../render/resolve.ts';

export const META_KEY = ':routes';

export interface KvsMeta {
  patterns: string[];
  fallbacks: Fallback[];
  errorCacheControl: string;
}

export function endpointKey(pattern: string): string {
  return `:endpoint:${pattern}`;
}

export function entryKey(lookupKey: string): string {
  return `?${lookupKey}`;
}

export function scopeKey(path: string): string {
  return `!${path}`;
}

/** `/binary/releases/<product>/<M>/<m>/<file>` → `releases/<M>/<m>/<patch>/<file>`, the patch read from the file name. */
export function derivedBlob(path: string): string | undefined {
  const match = /^\/binary\/releases\/[^/]+\/(0|[1-9][0-9]*)\/(0|[1-9][0-9]*)\/([^/]+)$/.exec(path);
  if (!match) return undefined;
  const file = match[3]!;
  const version = new RegExp(`(?:^|[_-])${match[1]}\\.${match[2]}\\.((?:0|[1-9][0-9]*)(?:-[0-9A-Za-z.-]+?)?)(?=[_.][a-z]|$)`).exec(file);
  return version ? `releases/${match[1]}/${match[2]}/${version[1]}/${file}` : undefined;
}

export function decodePathValue(path: string, value: string): PathTarget {
  const kind = value.charAt(0);
  const rest = value.slice(1);
  if (kind === 'd') return { type: 'file', key: `${path.slice(1)}index.json`, html: `${path.slice(1)}index.html` };
  if (kind === 'f') return { type: 'file', key: path.slice(1) };
  if (kind === 'o') return { type: 'file', key: rest };
  if (kind === 'h') {
    const split = rest.indexOf('\n');
    return { type: 'file', key: rest.slice(0, split), html: rest.slice(split + 1) };
  }
  if (kind === 'r') return { type: 'redirect', location: rest };
  throw new Error(`Unknown route value \`${value}\` for ${path}`);
}

/** An entry's value: the location or file key, and after a newline the file's browser alternative. */
export function decodeEntryValue(value: string): { value: string; html: string | undefined } {
  const split = value.indexOf('\n');
  return split === -1 ? { value: value, html: undefined } : { value: value.slice(0, split), html: value.slice(split + 1) };
}

/**
 * A RouteSource over the store, read through `read`: the value of a key, null when the store
 * lacks it. `read` throws for a key not fetched yet; the function fetches it and resolves again.
 */
export function kvsSource(read: (key: string) => string | null): RouteSource {
  let meta: KvsMeta | undefined;
  const rules: Record<string, EndpointRule> = {};
  const routes = (): KvsMeta => {
    if (meta === undefined) {
      const value = read(META_KEY);
      if (value === null) throw new Error(`The store lacks ${META_KEY}: no deploy has filled it yet`);
      meta = JSON.parse(value) as KvsMeta;
    }
    return meta;
  };
  const rule = (index: number): EndpointRule => {
    const pattern = routes().patterns[index]!;
    if (!Object.prototype.hasOwnProperty.call(rules, pattern)) {
      const value = read(endpointKey(pattern));
      if (value === null) throw new Error(`The store lacks the rule of endpoint ${pattern}`);
      rules[pattern] = JSON.parse(value) as EndpointRule;
    }
    return rules[pattern]!;
  };
  return {
    path: (path) => {
      const value = read(path);
      return value === null ? undefined : decodePathValue(path, value);
    },
    patterns: () => routes().patterns,
    endpoint: rule,
    entry: (_index, key) => {
      const value = read(entryKey(key));
      return value === null ? undefined : decodeEntryValue(value);
    },
    inScope: (_index, path) => read(scopeKey(path)) !== null,
    fallbacks: () => routes().fallbacks,
    errorCacheControl: () => routes().errorCacheControl,
  };
}
