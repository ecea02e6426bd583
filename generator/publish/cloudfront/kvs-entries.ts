// The KeyValueStore contents for a route table (kvs-format.ts describes the layout), and
// CloudFront's limits checked before a deploy changes anything. Pure.
import type { EndpointRule, PathTarget, RouteTable } from '../../render/route-table.ts';
import { META_KEY, artifactRule, decodePathValue, endpointKey, entryKey, packFiles, scopeKey, type KvsMeta } from './kvs-format.ts';

/** CloudFront KeyValueStore quotas, in UTF-8 bytes. */
export const KVS_LIMITS = { keyBytes: 512, valueBytes: 1024, storeBytes: 5 * 1024 * 1024 };

export class KvsLimitError extends Error {
  constructor(problems: string[]) {
    const shown = problems.slice(0, 5).join('; ');
    super(`The route table does not fit a CloudFront KeyValueStore: ${shown}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`);
    this.name = 'KvsLimitError';
  }
}

export function kvsEntries(table: RouteTable): Map<string, string> {
  const entries = new Map<string, string>();
  const add = (key: string, value: string) => {
    if (entries.has(key)) throw new Error(`Two KeyValueStore entries for \`${key}\``);
    entries.set(line(key), value);
  };
  const meta: KvsMeta = { patterns: table.endpoints.map((endpoint) => endpoint.pattern), fallbacks: table.fallbacks, errorCacheControl: table.errorCacheControl };
  add(META_KEY, JSON.stringify(meta));
  const listed = releaseLists(table);
  for (const [path, target] of Object.entries(table.paths)) {
    if (target.type === 'blob' && listed.files.has(path)) continue;
    const files = listed.releases.get(path);
    add(path, files ? `v${packFiles(files)}` : pathValue(path, target));
  }
  for (const endpoint of table.endpoints) {
    const { entries: answers, html, scopes, ...rule } = endpoint;
    add(endpointKey(endpoint.pattern), JSON.stringify(rule satisfies EndpointRule));
    for (const [key, value] of Object.entries(answers)) {
      const alternative = html?.[value];
      add(entryKey(key), alternative === undefined ? line(value) : `${line(value)}\n${line(alternative)}`);
    }
    for (const path of scopes ?? []) add(scopeKey(path), '1');
  }
  return entries;
}

/** Every key and value within its quota, and the store within its total; the total in bytes. */
export function checkKvsLimits(entries: ReadonlyMap<string, string>): number {
  const problems: string[] = [];
  let total = 0;
  for (const [key, value] of entries) {
    const keyBytes = Buffer.byteLength(key);
    const valueBytes = Buffer.byteLength(value);
    total += keyBytes + valueBytes;
    if (keyBytes > KVS_LIMITS.keyBytes) problems.push(`key \`${key.slice(0, 80)}…\` is ${keyBytes} bytes, over ${KVS_LIMITS.keyBytes}`);
    if (valueBytes > KVS_LIMITS.valueBytes) problems.push(`the value of \`${key.slice(0, 80)}\` is ${valueBytes} bytes, over ${KVS_LIMITS.valueBytes}`);
  }
  if (total > KVS_LIMITS.storeBytes) problems.unshift(`${entries.size} entries take ${total} bytes, over the store's ${KVS_LIMITS.storeBytes}`);
  if (problems.length > 0) throw new KvsLimitError(problems);
  return total;
}

/**
 * The binary artifacts the edge finds by `artifactRule`, listed in their release's `v` value: those
 * whose blob key the rule derives and whose release page redirects where `v` says, in lists that fit a value.
 */
function releaseLists(table: RouteTable): { releases: Map<string, string[]>; files: Set<string> } {
  const releases = new Map<string, string[]>();
  const paths = new Map<string, string[]>();
  for (const [path, target] of Object.entries(table.paths)) {
    const rule = target.type === 'blob' ? artifactRule(path) : undefined;
    if (rule === undefined || target.type !== 'blob' || rule.blob !== target.blob) continue;
    const page = table.paths[rule.release];
    const listed = decodePathValue(rule.release, 'v');
    if (page?.type !== 'redirect' || listed.type !== 'redirect' || listed.location !== page.location) continue;
    const names = releases.get(rule.release);
    if (names) {
      names.push(rule.file);
      paths.get(rule.release)!.push(path);
    } else {
      releases.set(rule.release, [rule.file]);
      paths.set(rule.release, [path]);
    }
  }
  const files = new Set<string>();
  for (const [release, names] of releases) {
    // Sorted, so the value does not depend on the order of the table and shares the longest prefix.
    names.sort();
    if (Buffer.byteLength(`v${packFiles(names)}`) > KVS_LIMITS.valueBytes) releases.delete(release);
    else for (const path of paths.get(release)!) files.add(path);
  }
  return { releases, files };
}

function pathValue(path: string, target: PathTarget): string {
  const own = path.slice(1);
  switch (target.type) {
    case 'redirect':
      return `r${line(target.location)}`;
    case 'blob':
      return `o${line(target.blob)}`;
    case 'file':
      if (target.html === undefined) return target.key === own ? 'f' : `o${line(target.key)}`;
      if (path.endsWith('/') && target.key === `${own}index.json` && target.html === `${own}index.html`) return 'd';
      return `h${line(target.key)}\n${line(target.html)}`;
  }
}

/** A line break would split a value in two (see the layout in kvs-format.ts). */
function line(text: string): string {
  if (text.includes('\n')) throw new Error(`Expected a route key or value without a line break, got \`${JSON.stringify(text)}\``);
  return text;
}
