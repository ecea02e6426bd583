// The generated CloudFront function run in Node the way CloudFront runs it: an event built from
// the request as the viewer sent it, and a stand-in for the `cloudfront` module over a KeyValueStore.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Sent } from './route-requests.ts';

export interface CfValue {
  value: string;
  multiValue?: CfValue[];
}
export interface CfEvent {
  version: '1.0';
  context: { eventType: 'viewer-request' };
  viewer: { ip: string };
  request: { method: string; uri: string; querystring: Record<string, CfValue>; headers: Record<string, CfValue>; cookies: Record<string, CfValue> };
}
export type CfResult = CfEvent['request'] | { statusCode: number; statusDescription: string; headers: Record<string, CfValue>; body?: { encoding: string; data: string } };

/** The event CloudFront builds: the URI and query names and values exactly as the viewer sent them. */
export function eventFor({ method = 'GET', path: target, headers = {} }: Sent): CfEvent {
  const withoutFragment = target.split('#')[0]!;
  const question = withoutFragment.indexOf('?');
  const uri = question === -1 ? withoutFragment : withoutFragment.slice(0, question);
  const querystring: Record<string, CfValue> = {};
  for (const pair of question === -1 ? [] : withoutFragment.slice(question + 1).split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const name = equals === -1 ? pair : pair.slice(0, equals);
    const value = { value: equals === -1 ? '' : pair.slice(equals + 1) };
    const existing = querystring[name];
    if (!existing) querystring[name] = value;
    else existing.multiValue = [...(existing.multiValue ?? [{ value: existing.value }]), value];
  }
  const lowered = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), { value }]));
  return { version: '1.0', context: { eventType: 'viewer-request' }, viewer: { ip: '192.0.2.1' }, request: { method, uri, querystring, headers: lowered, cookies: {} } };
}

export interface LoadedFunction {
  handler(event: CfEvent): Promise<CfResult>;
  /** KeyValueStore calls since the last call of this. */
  takeReads(): number;
}

/** The generated code as an ES module beside a stand-in `cloudfront` package reading `entries`. */
export async function loadFunction(dir: string, code: string, entries: ReadonlyMap<string, string>): Promise<LoadedFunction> {
  const pkg = path.join(dir, 'node_modules', 'cloudfront');
  await mkdir(pkg, { recursive: true });
  await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: 'cloudfront', type: 'module', exports: './index.js' }));
  await writeFile(path.join(pkg, 'index.js'), 'export default { kvs: () => globalThis.mirrorTestKvs };\n');
  await writeFile(path.join(dir, 'function.mjs'), `${code}\nexport { handler };\n`);
  let reads = 0;
  (globalThis as Record<string, unknown>).mirrorTestKvs = {
    async get(key: string) {
      reads++;
      const value = entries.get(key);
      if (value === undefined) throw new Error(`The key ${key} was not found`);
      return value;
    },
    async exists(key: string) {
      reads++;
      return entries.has(key);
    },
  };
  const module = (await import(pathToFileURL(path.join(dir, 'function.mjs')).href)) as { handler: LoadedFunction['handler'] };
  return {
    handler: module.handler,
    takeReads() {
      const taken = reads;
      reads = 0;
      return taken;
    },
  };
}
