// Rebuild rows: `mirror serve` (a child process, as in the upload rows) on the synthetic store of
// 10,000 releases with its blobs, a small upload of a new version (the sidecar rebuilds the whole
// site before it answers), and, from the POST until the minor's listing names the file, a client
// GETting a small index every 10 ms: the upload → listed time, and the worst latency of those GETs
// against the same GET on the idle server. The store's shape is a parameter (the scale rows run
// these on stores of one product and of many); uploads and GETs go to its first product.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { DEFAULT_SHAPE, describeShape, filePrefix, productNames, writeSyntheticStore, type StoreShape } from './synthetic-store.ts';
import type { Row } from './table.ts';
import { SERVE_COMMAND, median, memory, sleep, startServer, withServer, type Server } from './upload.ts';

/** The first upload after a start waits for what is left of the build thread's warm-up; from the second on, the steady state. */
const RUNS = 5;
const GET_EVERY_MS = 10;
const IDLE_GETS = 50;
const LISTED_TIMEOUT_MS = 60_000;
const STALL_TARGET_MS = 100;
/** Keeps its data directories apart from the upload rows' servers in the same work folder. */
const SERVER_NUMBER = 100;

export interface RebuildOptions {
  /** The store's shape (default DEFAULT_SHAPE). */
  shape?: StoreShape;
  /** Names the store's folder and the progress lines, when several stores are measured in one run. */
  label?: string;
  /** The server's data directory number (upload.ts startServer): one of its own per call in a run. */
  serverNumber?: number;
}

/** A release listing of one minor (ten releases) of `product`: a small index, far from what the upload changes. */
function smallIndex(product: string): string {
  return `/binary/releases/${product}/0/0/`;
}

interface RebuildRun {
  listedMs: number;
  worstGetMs: number;
  gets: number;
}

export async function benchRebuild(work: string, repo: string, progress: (line: string) => void, options: RebuildOptions = {}): Promise<Row[]> {
  const shape = options.shape ?? DEFAULT_SHAPE;
  const name = options.label ? `rebuild ${options.label}` : 'rebuild';
  const folder = path.join(work, options.label ? `rebuild-store-${options.label}` : 'rebuild-store');
  const store = { releases: path.join(folder, 'releases'), blobs: path.join(folder, 'blobs') };
  const product = productNames(shape)[0]!;
  const small = smallIndex(product);
  progress(`${name}: writing the synthetic store with its blobs`);
  const releases = await writeSyntheticStore(store.releases, shape, { blobsDir: store.blobs });
  const server = await startServer(work, repo, options.serverNumber ?? SERVER_NUMBER, progress, undefined, store);
  const { idle, runs, peak } = await withServer(server, async () => {
    progress(`${name}: ${IDLE_GETS} × GET ${small} on the idle server`);
    const idle: number[] = [];
    for (let i = 0; i < IDLE_GETS; i++) idle.push(await timedGet(server, small));
    const runs: RebuildRun[] = [];
    for (let i = 0; i < RUNS; i++) {
      progress(`${name}: upload ${i + 1} of ${RUNS} with a GET every ${GET_EVERY_MS} ms`);
      runs.push(await uploadWhileReading(server, product, `${shape.majors}.0.${i}`));
    }
    // The server's own and its build thread's, which keeps what the last build loaded and rendered.
    return { idle, runs, peak: (await memory(server.pid)).hwm };
  });
  // The one-product store's rows read as they always have; others name their products.
  const count = `${releases.toLocaleString('en-US')}${(shape.products ?? 1) > 1 ? ` (${describeShape(shape)})` : ''}`;
  const ms = (value: number) => `${value.toFixed(0)} ms`;
  const listed = runs.map((run) => run.listedMs);
  const worst = Math.max(...runs.map((run) => run.worstGetMs));
  const upload = `POST /binary/releases/${product}/${shape.majors}/0/upload?version=${shape.majors}.0.N&platform=linux&architecture=amd64 (4 KiB application/zip), then GET the listing until it names the file (${SERVE_COMMAND}, data dir holding the synthetic store)`;
  return [
    {
      measured: `Upload to listed, ${count} releases, small file (sidecar rebuild): median and max of ${RUNS}, and the server's peak RSS from its start to the last (VmHWM; MB = 10^6 bytes)`,
      ours: `median ${ms(median(listed))}, max ${ms(Math.max(...listed))} (runs ${listed.map((value) => value.toFixed(0)).join(', ')}); server peak RSS ${Math.round(peak / 1e6).toLocaleString('en-US')} MB`,
      reference: '—',
      target: '—',
      ourCommand: `${upload}; grep VmHWM /proc/<server pid>/status after the last`,
    },
    {
      measured: `Worst latency of GET ${small} (one every ${GET_EVERY_MS} ms) while that upload rebuilds the site, ${count} releases`,
      ours: `${ms(worst)} (per run: ${runs.map((run) => `${run.worstGetMs.toFixed(0)} ms of ${run.gets} GETs`).join(', ')})`,
      reference: `the same GET on the idle server: median ${median(idle).toFixed(1)} ms, max ${Math.max(...idle).toFixed(1)} ms of ${IDLE_GETS}`,
      target: `< ${STALL_TARGET_MS} ms`,
      met: worst < STALL_TARGET_MS,
      ourCommand: `GET ${small} every ${GET_EVERY_MS} ms (fetch from the bench) from the POST until listed: ${upload}`,
      referenceCommand: `GET ${small} ${IDLE_GETS} times, one after the other`,
    },
  ];
}

/** Uploads `version` of `product` for linux/amd64 while GETting its small index; until the listing names the file. */
async function uploadWhileReading(server: Server, product: string, version: string): Promise<RebuildRun> {
  const [major, minor] = version.split('.');
  const filename = `${filePrefix(product)}_${version}_linux_amd64.zip`;
  const listing = `/binary/releases/${product}/${major}/${minor}/`;
  const small = smallIndex(product);
  let reading = true;
  const latencies: number[] = [];
  const reader = (async () => {
    while (reading) {
      const started = performance.now();
      latencies.push(await timedGet(server, small));
      await sleep(Math.max(0, GET_EVERY_MS - (performance.now() - started)));
    }
  })();
  try {
    const started = performance.now();
    const answer = await fetch(`${server.url}/binary/releases/${product}/${major}/${minor}/upload?version=${version}&platform=linux&architecture=amd64`, {
      method: 'POST',
      body: randomBytes(4096),
      headers: { 'Content-Type': 'application/zip', Authorization: `Bearer ${server.token}` },
    });
    const text = await answer.text();
    if (answer.status !== 201) throw new Error(`The upload of ${version} answered ${answer.status}: ${text}`);
    const deadline = started + LISTED_TIMEOUT_MS;
    for (;;) {
      const page = await fetch(`${server.url}${listing}`);
      if (page.status === 200 && (await page.text()).includes(filename)) break;
      if (performance.now() > deadline) throw new Error(`${listing} did not list ${filename} within ${LISTED_TIMEOUT_MS} ms`);
      await sleep(GET_EVERY_MS);
    }
    return { listedMs: performance.now() - started, worstGetMs: Math.max(...latencies), gets: latencies.length };
  } finally {
    reading = false;
    await reader;
  }
}

async function timedGet(server: Server, page: string): Promise<number> {
  const started = performance.now();
  const answer = await fetch(`${server.url}${page}`);
  await answer.arrayBuffer();
  if (answer.status !== 200) throw new Error(`GET ${page} answered ${answer.status}`);
  return performance.now() - started;
}
