// CloudFront rows: the KeyValueStore the route table of 10,000 releases needs, against the store
// a key per routed path would need, and what one new release changes at the edge. In-process:
// the store's layout and the deploy's diff are pure functions of the rendered site.
import path from 'node:path';
import { loadCatalog } from '../../generator/load/index.ts';
import { loadTemplates } from '../../generator/load/templates.ts';
import { diffKvs, invalidationPaths, kvsBatches } from '../../generator/publish/cloudfront/edge-plan.ts';
import { FUNCTION_CODE_LIMIT, cloudFrontFunctionCode } from '../../generator/publish/cloudfront/function-code.ts';
import { KVS_LIMITS, checkKvsLimits, kvsEntries } from '../../generator/publish/cloudfront/kvs-entries.ts';
import { render, type RenderedSite } from '../../generator/render/index.ts';
import { DEFAULT_SHAPE, writeRelease, writeSyntheticStore } from './synthetic-store.ts';
import type { Row } from './table.ts';

const COMMAND = 'npm run bench (BENCH_ROWS=edge): kvsEntries, diffKvs and invalidationPaths over the rendered synthetic store';

export async function benchEdge(work: string, progress: (line: string) => void): Promise<Row[]> {
  const store = path.join(work, 'edge-store');
  progress('edge: writing the synthetic store');
  const releases = await writeSyntheticStore(store);
  const templates = await loadTemplates();
  const renderStore = async () => render(await loadCatalog(store), templates);
  progress('edge: rendering');
  const before = await renderStore();
  const entries = kvsEntries(before.routes);
  const bytes = checkKvsLimits(entries);
  const naive = keyPerPath(before);
  await writeRelease(store, `${DEFAULT_SHAPE.majors - 1}.${DEFAULT_SHAPE.minors - 1}.${DEFAULT_SHAPE.patches}`, releases);
  progress('edge: rendering with one release more');
  const after = await renderStore();
  const changes = diffKvs(entries, kvsEntries(after.routes));
  const beforeBodies = new Map(before.files.map((file) => [file.key, file.body]));
  const changed = after.files.filter((file) => beforeBodies.has(file.key) && beforeBodies.get(file.key) !== file.body).map((file) => file.key);
  const paths = invalidationPaths(changed, after.files.map((file) => file.key));
  const code = Buffer.byteLength(await cloudFrontFunctionCode());
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(2)} MB`;
  return [
    {
      measured: `CloudFront KeyValueStore for ${releases.toLocaleString('en')} releases: entries and bytes (keys and values)`,
      ours: `${entries.size.toLocaleString('en')} entries, ${mb(bytes)}`,
      reference: `a key per routed path, the target as JSON: ${naive.entries.toLocaleString('en')} entries, ${mb(naive.bytes)}`,
      target: `≤ ${mb(KVS_LIMITS.storeBytes)}`,
      met: bytes <= KVS_LIMITS.storeBytes,
      ourCommand: COMMAND,
    },
    {
      measured: 'One release added: store keys written, UpdateKeys calls',
      ours: `${changes.puts.length + changes.deletes.length} keys, ${kvsBatches(changes).length} calls`,
      reference: `rewriting the store: ${entries.size.toLocaleString('en')} keys, ${Math.ceil(entries.size / 50)} calls`,
      target: '—',
      ourCommand: COMMAND,
    },
    {
      measured: 'One release added: invalidation paths',
      ours: `${paths.length} (${paths.filter((p) => p.endsWith('*')).length} wildcards)`,
      reference: `${changed.length} site files changed, ${after.files.length.toLocaleString('en')} in all`,
      target: '—',
      ourCommand: COMMAND,
    },
    {
      measured: 'CloudFront function code (minified bundle)',
      ours: `${code.toLocaleString('en')} bytes`,
      reference: '—',
      target: `≤ ${FUNCTION_CODE_LIMIT.toLocaleString('en')} bytes`,
      met: code <= FUNCTION_CODE_LIMIT,
      ourCommand: 'node dist/mirror.js cloudfront-function | wc -c',
    },
  ];
}

/** The store if every path and endpoint entry of the route table had its own key. */
function keyPerPath(site: RenderedSite): { entries: number; bytes: number } {
  let entries = 0;
  let bytes = 0;
  const add = (key: string, value: unknown) => {
    entries++;
    bytes += Buffer.byteLength(key) + Buffer.byteLength(JSON.stringify(value));
  };
  for (const [path, target] of Object.entries(site.routes.paths)) add(path, target);
  for (const endpoint of site.routes.endpoints) for (const [key, value] of Object.entries(endpoint.entries)) add(key, value);
  return { entries, bytes };
}
