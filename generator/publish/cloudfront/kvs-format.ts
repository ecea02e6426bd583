// How the route table is laid out in a CloudFront KeyValueStore, and read back at the edge. The
// CloudFront function bundles this file, so it keeps to the JavaScript subset resolve.ts describes.
//
// Keys: a path (`/…`) holds its target; `?` + lookup key an endpoint's entry; `!` + path marks an
// endpoint scope; `:routes` the patterns, fallbacks and error cache policy; `:endpoint:` + pattern
// one endpoint's rule. At the edge every target is an object of the bucket, so an artifact is a
// file whose key is its blob key. Values are short, because the store holds at most 5 MB:
//   `d`               a folder: `<path>index.json`, or `<path>index.html` for browsers
//   `f`               the object whose key is the path without its leading `/`
//   `o<key>`          the object `<key>`
//   `h<key>\n<html>`  the object `<key>`, or `<html>` for browsers
//   `r<location>`     a 302 to `<location>`
//   `v<files>`        a binary release's page, `/binary/releases/<p>/<M.m.patch>/`: a 302 to its
//                     section of the minor page, and the names of its artifacts (`packFiles`)
// A binary artifact `artifactRule` understands has no key of its own: it exists when its release's
// `v` value names it, and its blob key comes from the rule. 60,000 artifacts would not fit otherwise.
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

/** A binary artifact's path, read by the rule: the release page that lists it and its blob key. */
export interface ArtifactRule {
  release: string;
  file: string;
  blob: string;
}

/** `/binary/releases/<p>/<M>/<m>/<file>` → release `/binary/releases/<p>/<M.m.patch>/`, blob `releases/<M>/<m>/<patch>/<file>`, the patch read from the file name. */
export function artifactRule(path: string): ArtifactRule | undefined {
  const match = /^\/binary\/releases\/([^/]+)\/(0|[1-9][0-9]*)\/(0|[1-9][0-9]*)\/([^/]+)$/.exec(path);
  if (!match) return undefined;
  const file = match[4]!;
  const version = new RegExp(`(?:^|[_-])${match[2]}\\.${match[3]}\\.((?:0|[1-9][0-9]*)(?:-[0-9A-Za-z.-]+?)?)(?=[_.][a-z]|$)`).exec(file);
  if (!version) return undefined;
  const patch = version[1]!;
  return { release: `/binary/releases/${match[1]}/${match[2]}.${match[3]}.${patch}/`, file: file, blob: `releases/${match[2]}/${match[3]}/${patch}/${file}` };
}

/** File names as `<common prefix>/<rest>/<rest>…`: a file name holds no `/`. */
export function packFiles(files: string[]): string {
  let prefix = files.length > 0 ? files[0]! : '';
  for (let i = 1; i < files.length; i++) while (files[i]!.indexOf(prefix) !== 0) prefix = prefix.slice(0, -1);
  return [prefix].concat(files.map((file) => file.slice(prefix.length))).join('/');
}

export function unpackFiles(packed: string): string[] {
  const parts = packed.split('/');
  return parts.slice(1).map((rest) => parts[0] + rest);
}

/** Where a binary release's page redirects: its section of the minor page. */
function releaseSection(path: string): string {
  const match = /^(\/binary\/releases\/[^/]+\/)(([0-9]+)\.([0-9]+)\.[^/]+)\/$/.exec(path);
  if (!match) throw new Error(`${path} is not a binary release's page`);
  return `${match[1]}${match[3]}/${match[4]}/#v${match[2]}`;
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
  if (kind === 'v') return { type: 'redirect', location: releaseSection(path) };
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
      if (value !== null) return decodePathValue(path, value);
      const rule = artifactRule(path);
      const release = rule === undefined ? null : read(rule.release);
      if (rule === undefined || release === null || release.charAt(0) !== 'v') return undefined;
      return unpackFiles(release.slice(1)).indexOf(rule.file) === -1 ? undefined : { type: 'file', key: rule.blob };
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
