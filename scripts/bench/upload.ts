// Upload rows: the sidecar (`mirror serve`, a child process of its own) taking 200 MiB raw uploads
// and 50 MiB JSON (base64) uploads, four of each kind one after the other on a fresh server warmed up
// with GETs and a 4 KiB upload, the JSON ones against the raw ones' rate: each upload's peak RSS
// growth, read from /proc/<pid>/status (VmRSS before, VmHWM after, the high-water mark reset before
// each through clear_refs, so it is the upload's own), and the throughput from the POST to the 201
// (committed, site rebuilt) and the listing showing the file, against `cp` of the same file on the
// same file system; the first upload of each kind is shown apart, as what a fresh process pays. Then the
// latency from a small upload's POST to the listing showing it, on SQLite and on PostgreSQL, against
// a bare GET of the same server as the floor.
// The large uploads go through curl, both streaming the body from disk (`-T`; `--data-binary @file`
// would have curl read a whole JSON body into memory before sending it); the bench never holds their bytes.
// PostgreSQL: a fresh database per run on 127.0.0.1:5432 as `postgres` (trust auth) through psql,
// dropped at the end; when that fails the PostgreSQL row says "not run".
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { bestOf, bestSeconds, seconds, timed, type Best } from './run.ts';
import type { Row } from './table.ts';

const execFileAsync = promisify(execFile);

const MiB = 1024 * 1024;
const RAW_SIZE = 200 * MiB;
const JSON_SIZE = 50 * MiB;
const SMALL_SIZE = 4 * 1024;
/** Random files are written in chunks of this many bytes; a multiple of 3, so base64 chunks join up. */
const CHUNK = 3 * MiB;
const MAX_UPLOAD_BYTES = 256 * MiB;
const RAW_GROWTH_TARGET = 64 * MiB;
const JSON_GROWTH_TARGET = 64 * MiB;
/** The JSON upload's floor: this many MB/s, and this share of the raw upload's rate in the same run. */
const JSON_RATE_TARGET = 150;
const JSON_RATE_SHARE = 0.5;
const ATTEMPTS = 3;
/** The first upload of each kind measures memory on a fresh server; the median of the others is the throughput. */
const RAW_VERSIONS = ['2.0.0', '2.0.1', '2.0.2', '2.0.3'] as const;
const JSON_VERSIONS = ['2.1.0', '2.1.1', '2.1.2', '2.1.3'] as const;
const LATENCY_RUNS = 5;
const READY_TIMEOUT_MS = 30_000;
const LISTED_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const PRODUCT = 'agent-as-code';
/** Uploaded before anything is measured, on every server. */
const WARM_UP_VERSION = '0.0.1';
const FILE_PREFIX = 'agent_as_code';
const PSQL = ['-h', '127.0.0.1', '-U', 'postgres', '-d', 'test', '-v', 'ON_ERROR_STOP=1', '-X', '-q'];
const POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432';
const LATENCY_TARGETS = [
  ['linux', 'amd64'],
  ['linux', 'arm64'],
  ['darwin', 'amd64'],
  ['darwin', 'arm64'],
  ['windows', 'amd64'],
] as const;

/** The settings every server gets, as shown in the rows (the data paths are the run's temp dirs). */
export const SERVE_SETTINGS: Record<string, string> = {
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES),
  RATE_LIMIT_UPLOADS_PER_HOUR: '0',
  RATE_LIMIT_IP_PER_MINUTE: '0',
};
/** Settings the bench's own environment might carry that would change what is measured; empty means unset. */
export const ISOLATION: Record<string, string> = { MIRROR_CONFIG: '', DATABASE_URL: '', REDIS_URL: '', AUTH_MODE: 'local', MIRROR_S3_BUCKET: '', MIRROR_CLOUDFRONT_DISTRIBUTION_ID: '', MIRROR_KVS_ARN: '' };
export const SERVE_COMMAND = `${Object.entries(SERVE_SETTINGS)
  .map(([name, value]) => `${name}=${value}`)
  .join(' ')} PORT=0 node dist/mirror.js serve`;
/** Pages fetched before the baseline is read, so it includes a server that has answered requests. */
const WARM_UP = ['/', '/binary/releases/', `/binary/releases/${PRODUCT}/`, `/binary/releases/${PRODUCT}/versions`, `/binary/releases/${PRODUCT}/1/12/`, `/binary/releases/${PRODUCT}/1/12/${FILE_PREFIX}_1.12.2_linux_amd64.zip`];

export interface Server {
  url: string;
  pid: number;
  token: string;
  /** `SQLite` or `PostgreSQL`, for the rows. */
  database: string;
  /** What the server printed after it started listening (its warnings and errors), line by line. */
  output: string[];
  stop(): Promise<void>;
}

export interface Memory {
  rss: number;
  hwm: number;
}

interface LargeUpload {
  /** The first upload's: the fresh server's memory before, and its peak. */
  baseline: Memory;
  after: Memory;
  /** Each upload's peak RSS growth: its VmHWM (reset before it) minus VmRSS before it. */
  growths: number[];
  /** The median of runsMs after the first. */
  ms: number;
  runsMs: number[];
  command: string;
  /** Why the upload failed, when it did: the answer and what the server logged. */
  failed?: string;
}

export async function benchUploads(work: string, repo: string, progress: (line: string) => void): Promise<Row[]> {
  let servers = 0;
  const nextServer = (database?: { url: string; name: string }) => startServer(work, repo, ++servers, progress, database);

  const rawFile = path.join(work, 'file-200MiB.bin');
  progress(`upload: writing ${RAW_SIZE / MiB} MiB of random bytes`);
  const rawSha = await writeRandomFile(rawFile, RAW_SIZE);
  const rawCopy = await copyReference(work, rawFile, progress);
  const raw = await withServer(await nextServer(), async (server) => {
    progress(`upload: raw ${RAW_SIZE / MiB} MiB × ${RAW_VERSIONS.length} (server pid ${server.pid})`);
    return largeUploads(server, RAW_VERSIONS, rawSha, RAW_SIZE, (version) => {
      const url = `${uploadUrl(server, version)}?version=${version}&platform=linux&architecture=amd64`;
      return ['curl', '-sS', '--fail-with-body', '-X', 'POST', '-T', rawFile, '-H', 'Content-Type: application/zip', '-H', `Authorization: Bearer ${server.token}`, url];
    });
  });

  const jsonFile = path.join(work, 'file-50MiB.bin');
  progress(`upload: writing ${JSON_SIZE / MiB} MiB of random bytes and its JSON body`);
  const jsonSha = await writeRandomFile(jsonFile, JSON_SIZE);
  // A body per version: the version is a field of the body.
  const jsonBody = (version: string) => path.join(work, `file-50MiB-${version}.json`);
  let bodyBytes = 0;
  for (const version of JSON_VERSIONS) bodyBytes = await writeJsonBody(jsonFile, jsonBody(version), { version, platform: 'linux', architecture: 'amd64' });
  const jsonCopy = await copyReference(work, jsonFile, progress);
  const json = await withServer(await nextServer(), async (server) => {
    progress(`upload: JSON ${JSON_SIZE / MiB} MiB × ${JSON_VERSIONS.length} (${(bodyBytes / MiB).toFixed(1)} MiB body; server pid ${server.pid})`);
    return largeUploads(server, JSON_VERSIONS, jsonSha, JSON_SIZE, (version) => ['curl', '-sS', '--fail-with-body', '-X', 'POST', '-T', jsonBody(version), '-H', 'Content-Type: application/json', '-H', `Authorization: Bearer ${server.token}`, uploadUrl(server, version)]);
  });

  const sqlite = await withServer(await nextServer(), (server) => latency(server, progress));
  const postgres = await withPostgres(progress, async (database) => withServer(await nextServer(database), (server) => latency(server, progress)));

  const rss = (run: LargeUpload) => `${run.failed ? `upload failed (see the throughput row); until then: ` : ''}${mib(growth(run))} (runs ${run.growths.slice(1).map(mib).join(', ')}); the first, on the fresh server: ${mib(run.growths[0]!)} (baseline ${mib(run.baseline.rss)}, peak ${mib(run.after.hwm)})`;
  const throughput = (size: number, run: LargeUpload) => (run.failed ? `failed after ${seconds(run.ms)}: ${run.failed}` : `${rate(size, run.ms)} (median ${seconds(run.ms)}; runs ${run.runsMs.slice(1).map((ms) => seconds(ms)).join(', ')}; the first, on the fresh server: ${rate(size, run.runsMs[0]!)}, ${seconds(run.runsMs[0]!)})`);
  const rssReference = (size: number, run: LargeUpload) => `file ${mib(size)}; the server's high-water mark before the upload: ${mib(run.baseline.hwm)}`;
  const rssCommand = (run: LargeUpload) => `echo 5 > /proc/<server pid>/clear_refs; grep -E 'VmRSS|VmHWM' /proc/<server pid>/status before and after each: ${run.command}`;
  const rows: Row[] = [
    {
      measured: `Raw upload, ${RAW_SIZE / MiB} MiB: server peak RSS growth, the largest of ${RAW_VERSIONS.length - 1} uploads after a first (VmHWM, reset before each, after − VmRSS before; a fresh server warmed up with GETs and a 4 KiB upload)`,
      ours: rss(raw),
      reference: rssReference(RAW_SIZE, raw),
      target: `< ${mib(RAW_GROWTH_TARGET)}`,
      met: !raw.failed && growth(raw) < RAW_GROWTH_TARGET,
      ourCommand: rssCommand(raw),
    },
    {
      measured: `Raw upload, ${RAW_SIZE / MiB} MiB: throughput (upload to committed, listed and rebuilt; MB/s = 10^6 bytes/s, median of ${RAW_VERSIONS.length - 1} uploads of new versions after a first)`,
      ours: throughput(RAW_SIZE, raw),
      reference: `${rate(RAW_SIZE, rawCopy.ms)}, cp of the same file on the same file system; ${bestSeconds(rawCopy)}`,
      target: '—',
      ourCommand: raw.command,
      referenceCommand: rawCopy.command,
    },
    {
      measured: `JSON upload, ${JSON_SIZE / MiB} MiB (base64 body ${Math.round(bodyBytes / MiB)} MiB): server peak RSS growth, the largest of ${JSON_VERSIONS.length - 1} uploads after a first (VmHWM, reset before each, after − VmRSS before; a fresh server warmed up with GETs and a 4 KiB upload)`,
      ours: rss(json),
      reference: rssReference(JSON_SIZE, json),
      target: `< ${mib(JSON_GROWTH_TARGET)}`,
      met: !json.failed && growth(json) < JSON_GROWTH_TARGET,
      ourCommand: rssCommand(json),
    },
    {
      measured: `JSON upload, ${JSON_SIZE / MiB} MiB: throughput (upload to committed, listed and rebuilt; MB/s of the file's bytes, median of ${JSON_VERSIONS.length - 1} uploads of new versions after a first)`,
      ours: throughput(JSON_SIZE, json),
      reference: `${rate(RAW_SIZE, raw.ms)}, the raw upload above; ${rate(JSON_SIZE, jsonCopy.ms)}, cp of the same file on the same file system; ${bestSeconds(jsonCopy)}`,
      target: `≥ ${JSON_RATE_TARGET} MB/s and ≥ ${JSON_RATE_SHARE * 100} % of the raw upload's rate`,
      met: !json.failed && !raw.failed && mbps(JSON_SIZE, json.ms) >= JSON_RATE_TARGET && mbps(JSON_SIZE, json.ms) >= JSON_RATE_SHARE * mbps(RAW_SIZE, raw.ms),
      ourCommand: json.command,
      referenceCommand: jsonCopy.command,
    },
    latencyRow(sqlite),
    latencyRow(postgres),
  ];
  return rows;
}

/** `cp FILE copy.bin`, best of 3, each after a `sync` (run.ts), the copy removed in between. */
export async function copyReference(work: string, file: string, progress: (line: string) => void): Promise<Best> {
  const copy = path.join(work, 'copy.bin');
  const best = await bestOf(ATTEMPTS, async (attempt) => {
    progress(`upload: cp ${path.basename(file)} ${attempt}/${ATTEMPTS}`);
    await rm(copy, { force: true });
    return timed(['cp', file, copy], work);
  });
  await rm(copy, { force: true });
  return best;
}

/**
 * Large uploads with curl, one after the other, each of its own version: the server's memory before
 * the first (after a warm-up) and after it, the wall time of each from the POST to the listing
 * showing the file, and then each downloaded file checked against the bytes sent.
 */
async function largeUploads(server: Server, versions: readonly string[], sha256: string, size: number, curlFor: (version: string) => string[]): Promise<LargeUpload> {
  const filename = (version: string) => filenameOf(version, 'linux', 'amd64');
  const first = versions[0]!;
  const command = `${shownCurl(curlFor(first))} (${SERVE_COMMAND}, ${server.database}; then GET ${listingPath(first)} until it lists ${filename(first)}; versions ${versions.join(', ')})`;
  await warmUpUploads(server);
  let baseline: Memory | undefined;
  let after: Memory | undefined;
  const runsMs: number[] = [];
  const growths: number[] = [];
  const answers: { version: string; stdout: string }[] = [];
  for (const version of versions) {
    await execFileAsync('sync');
    // Each upload's own high-water mark: the kernel's peak RSS reset to the RSS now (proc(5), clear_refs).
    await writeFile(`/proc/${server.pid}/clear_refs`, '5');
    const before = await memory(server.pid);
    const started = performance.now();
    const logged = server.output.length;
    const posted = await curlPost(curlFor(version));
    const peak = await memory(server.pid);
    growths.push(peak.hwm - before.rss);
    baseline ??= before;
    after ??= peak;
    if ('failed' in posted) {
      const ms = performance.now() - started;
      // The server logs the error before it answers; give a line still in the pipe a moment.
      await sleep(200);
      const cause = loggedError(server.output.slice(logged));
      return { baseline, after, growths, ms, runsMs: [...runsMs, ms], command, failed: `${posted.failed}${cause ? `; the server logged ${cause}` : ''}` };
    }
    await waitListed(server, version, filename(version));
    runsMs.push(performance.now() - started);
    answers.push({ version, stdout: posted.stdout });
  }
  // Checked once all are in: a download between uploads would be part of what the next one measures.
  for (const { version, stdout } of answers) {
    const answer = JSON.parse(stdout) as { release?: { checksum?: string; file_size?: number; download_url?: string } };
    if (answer.release?.checksum !== sha256 || answer.release.file_size !== size) throw new Error(`The upload of ${filename(version)} answered ${stdout}; expected sha256 ${sha256} and ${size} bytes`);
    const downloaded = await downloadDigest(`${server.url}${answer.release.download_url}`);
    if (downloaded.sha256 !== sha256 || downloaded.size !== size) throw new Error(`Downloading ${filename(version)} gave ${downloaded.size} bytes with sha256 ${downloaded.sha256}; expected ${size} bytes with ${sha256}`);
  }
  return { baseline: baseline!, after: after!, growths, ms: median(runsMs.slice(1)), runsMs, command };
}

/** curl's output, or what it said when it failed (an HTTP error's body included, --fail-with-body). */
export async function curlPost(curl: string[]): Promise<{ stdout: string } | { failed: string }> {
  const [program, ...args] = curl as [string, ...string[]];
  try {
    return { stdout: (await execFileAsync(program, args, { maxBuffer: 1 << 20 })).stdout };
  } catch (error) {
    const { stdout, stderr, message } = error as { stdout?: string; stderr?: string; message: string };
    return { failed: [stderr?.trim() || message, stdout?.trim()].filter(Boolean).join(' ') };
  }
}

/** The last error in the server's log lines (pino JSON): its type, message and innermost frame of ours. */
export function loggedError(lines: string[]): string | undefined {
  for (const line of [...lines].reverse()) {
    let entry: { err?: { type?: string; message?: string; stack?: string } };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
    if (!entry.err) continue;
    const frame = entry.err.stack
      ?.split('\n')
      .map((text) => text.trim())
      .find((text) => text.startsWith('at ') && !text.includes('node:') && text.includes('/'));
    return `${entry.err.type ?? 'Error'}: ${entry.err.message ?? '?'}${frame ? ` ${frame.replace(/\(\/[^)]*?\/(sidecar|generator)\//, '($1/')}` : ''}`;
  }
  return undefined;
}

/** The curl command as typed, the token and temp paths shortened. */
export function shownCurl(curl: string[]): string {
  return curl
    .map((arg) => (arg.startsWith('Authorization: ') ? 'Authorization: Bearer $TOKEN' : arg))
    .map((arg) => (arg.startsWith('/') || arg.startsWith('@/') ? arg.replace(/[^@]*\//, '') : arg))
    .map((arg) => arg.replace(/^http:\/\/127\.0\.0\.1:\d+/, 'http://127.0.0.1:$PORT'))
    .map((arg) => (/^[\w./:@=-]+$/.test(arg) ? arg : arg.includes('$') ? `"${arg}"` : `'${arg}'`))
    .join(' ');
}

interface Latency {
  database: string;
  /** Why the row has no measurement (not run, or failed), when it has none. */
  notRun?: string;
  uploadMs: number[];
  floorMs: number[];
}

/** Small uploads one after the other: POST until the listing shows the file; a bare GET as the floor. */
async function latency(server: Server, progress: (line: string) => void): Promise<Latency> {
  try {
    return await measureLatency(server, progress);
  } catch (error) {
    progress(`upload: latency, ${server.database}: ${(error as Error).message}`);
    return { database: server.database, notRun: `failed: ${(error as Error).message}`, uploadMs: [], floorMs: [] };
  }
}

async function measureLatency(server: Server, progress: (line: string) => void): Promise<Latency> {
  await warmUpUploads(server);
  progress(`upload: latency, ${server.database}: ${LATENCY_RUNS} × GET versions`);
  const floorMs: number[] = [];
  for (let run = 0; run < LATENCY_RUNS; run++) {
    const started = performance.now();
    const answer = await fetch(`${server.url}/binary/releases/${PRODUCT}/versions`);
    await answer.arrayBuffer();
    if (answer.status !== 200) throw new Error(`GET versions answered ${answer.status}`);
    floorMs.push(performance.now() - started);
  }
  progress(`upload: latency, ${server.database}: ${LATENCY_RUNS} × ${SMALL_SIZE / 1024} KiB uploads`);
  const uploadMs: number[] = [];
  for (const [i, [platform, arch]] of LATENCY_TARGETS.entries()) {
    const started = performance.now();
    await smallUpload(server, `3.0.${i}`, platform, arch);
    uploadMs.push(performance.now() - started);
  }
  return { database: server.database, uploadMs, floorMs };
}

function latencyRow(result: Latency): Row {
  const measured = `Upload to listed latency, small file (${SMALL_SIZE / 1024} KiB), ${result.database}: median and max of ${LATENCY_RUNS} (versions 3.0.0–3.0.${LATENCY_RUNS - 1}, one after the other, after a warm-up upload of ${WARM_UP_VERSION})`;
  const ourCommand = `POST /binary/releases/${PRODUCT}/3/0/upload?version=3.0.N&platform=…&architecture=… (${SMALL_SIZE / 1024} KiB application/zip, fetch from the bench), then GET ${listingPath('3.0.0')} until it lists the file (${SERVE_COMMAND}, ${result.database})`;
  if (result.notRun) return { measured, ours: result.notRun, reference: '—', target: '—', ourCommand };
  const ms = (values: number[]) => values.map((value) => value.toFixed(0)).join(', ');
  return {
    measured,
    ours: `median ${median(result.uploadMs).toFixed(0)} ms, max ${Math.max(...result.uploadMs).toFixed(0)} ms (runs ${ms(result.uploadMs)})`,
    reference: `GET versions on the same server, the floor: median ${median(result.floorMs).toFixed(1)} ms (runs ${result.floorMs.map((value) => value.toFixed(1)).join(', ')})`,
    target: '—',
    ourCommand,
    referenceCommand: `GET /binary/releases/${PRODUCT}/versions (fetch from the bench, ${result.database})`,
  };
}

/** A fresh database for `run`, dropped afterwards; a "not run" result when PostgreSQL cannot be reached. */
async function withPostgres(progress: (line: string) => void, run: (database: { url: string; name: string }) => Promise<Latency>): Promise<Latency> {
  const name = `mirror_bench_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  try {
    await execFileAsync('psql', [...PSQL, '-c', `create database ${name}`]);
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    const reason = (stderr?.trim() || message).split('\n')[0];
    progress(`upload: PostgreSQL unavailable (${reason}); its row says "not run"`);
    return { database: 'PostgreSQL', notRun: `not run: \`psql -h 127.0.0.1 -U postgres -d test -c 'create database …'\` failed: ${reason}`, uploadMs: [], floorMs: [] };
  }
  progress(`upload: PostgreSQL database ${name}`);
  try {
    return await run({ url: `${POSTGRES_URL}/${name}`, name });
  } finally {
    await execFileAsync('psql', [...PSQL, '-c', `drop database if exists ${name} with (force)`]).catch((error: unknown) => progress(`upload: could not drop database ${name}: ${(error as Error).message}`));
  }
}

/**
 * A data dir with the sample store and blobs (or `store`'s), built, a token minted, then `mirror serve` on a port
 * of the system's choosing, ready when /readyz answers 200. PostgreSQL databases are migrated first.
 */
export async function startServer(work: string, repo: string, n: number, progress: (line: string) => void, database?: { url: string; name: string }, store?: { releases: string; blobs: string }): Promise<Server> {
  const data = path.join(work, `data-${n}`);
  const releases = path.join(work, `releases-${n}`);
  await cp(store?.releases ?? path.join(repo, 'releases'), releases, { recursive: true });
  await mkdir(data, { recursive: true });
  await cp(store?.blobs ?? path.join(repo, '.mirror', 'blobs'), path.join(data, 'blobs'), { recursive: true });
  const env = { ...process.env, ...ISOLATION, ...SERVE_SETTINGS, MIRROR_DATA_DIR: data, MIRROR_RELEASES: releases, PORT: '0', FLEET_PORT: '0', ...(database ? { DATABASE_URL: database.url } : {}) };
  const mirror = async (args: string[]) => (await execFileAsync(process.execPath, ['dist/mirror.js', ...args], { cwd: repo, env })).stdout;
  progress(`upload: server ${n}: build${database ? ', migrate' : ''}, token`);
  await mirror(['build']);
  if (database) await mirror(['migrate']);
  const token = (await mirror(['token', 'create', '--sub', 'bench', '--ttl', '1h'])).trim().split('\n').pop()!;

  // The compiled CLI, as an installed mirror runs (the bench builds dist/ first): the child is the
  // node process that serves, and its build worker loads compiled code, not TypeScript through tsx.
  const child = spawn(process.execPath, ['dist/mirror.js', 'serve'], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = () => stopChild(child);
  try {
    const output: string[] = [];
    const url = await listening(child, n, output);
    const cmdline = (await readFile(`/proc/${child.pid}/cmdline`, 'utf8')).split('\0');
    if (!cmdline.includes('serve')) throw new Error(`Process ${child.pid} is not the server: ${cmdline.join(' ')}`);
    await ready(url, child);
    return { url, pid: child.pid!, token, database: database ? 'PostgreSQL' : 'SQLite', output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function withServer<T>(server: Server, run: (server: Server) => Promise<T>): Promise<T> {
  try {
    return await run(server);
  } finally {
    await server.stop();
  }
}

/**
 * The URL of the `serving … on URL` line; fails with the output when the process exits first. What
 * is printed before it (the settings) is kept for that message only; what the server prints
 * afterwards (warnings and errors, on either stream) goes to `lines` and the bench's stderr.
 */
function listening(child: ChildProcess, n: number, lines: string[]): Promise<string> {
  let url: string | undefined;
  const before: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`did not start within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    const onExit = (code: number | null) => fail(`exited (${code}) before listening`);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`mirror serve ${why}:\n${before.join('\n')}`));
    };
    const onLine = (line: string) => {
      if (url === undefined) {
        before.push(line);
        const found = /^serving .* on (http:\/\/\S+)$/.exec(line);
        if (!found) return;
        url = found[1]!;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(url);
      } else if (line) {
        lines.push(line);
        process.stderr.write(`bench: upload: server ${n}: ${line}\n`);
      }
    };
    // Read both streams to the end, so the child never blocks on a full pipe.
    const reader = () => {
      let partial = '';
      return (chunk: Buffer) => {
        const complete = (partial + chunk.toString()).split('\n');
        partial = complete.pop()!;
        for (const line of complete) onLine(line);
      };
    };
    child.stdout!.on('data', reader());
    child.stderr!.on('data', reader());
    child.once('exit', onExit);
  });
}

async function ready(url: string, child: ChildProcess): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  let last = '';
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mirror serve exited (${child.exitCode}) before /readyz answered 200`);
    try {
      const answer = await fetch(`${url}/readyz`);
      last = `${answer.status} ${await answer.text()}`;
      if (answer.status === 200) return;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`/readyz did not answer 200 within ${READY_TIMEOUT_MS} ms; last: ${last}`);
}

/** SIGTERM (the server drains and exits), SIGKILL if it has not exited after a while. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** A 4 KiB upload, until the listing shows it. */
async function smallUpload(server: Server, version: string, platform: string, arch: string): Promise<void> {
  const answer = await fetch(`${uploadUrl(server, version)}?version=${version}&platform=${platform}&architecture=${arch}`, {
    method: 'POST',
    body: randomBytes(SMALL_SIZE),
    headers: { 'Content-Type': 'application/zip', Authorization: `Bearer ${server.token}` },
  });
  const text = await answer.text();
  if (answer.status !== 201) throw new Error(`The upload of ${version} ${platform}/${arch} answered ${answer.status}: ${text}`);
  await waitListed(server, version, filenameOf(version, platform, arch));
}

/**
 * The pages GETs read, then one small upload, so what is measured next is the server's steady
 * state: the upload path compiled and the build thread started, its rehearsal done.
 */
async function warmUpUploads(server: Server): Promise<void> {
  await warmUp(server);
  await smallUpload(server, WARM_UP_VERSION, 'linux', 'amd64');
}

export async function warmUp(server: Server): Promise<void> {
  for (const page of WARM_UP) {
    const answer = await fetch(`${server.url}${page}`);
    await answer.arrayBuffer();
    if (answer.status !== 200) throw new Error(`Warm-up GET ${page} answered ${answer.status}`);
  }
}

/** VmRSS and VmHWM of `pid`, in bytes. */
export async function memory(pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => {
    const found = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!found) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(found[1]) * 1024;
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/** Polls the minor's listing until it names `filename`. */
async function waitListed(server: Server, version: string, filename: string): Promise<void> {
  const deadline = performance.now() + LISTED_TIMEOUT_MS;
  let last = '';
  while (performance.now() < deadline) {
    const answer = await fetch(`${server.url}${listingPath(version)}`);
    const text = await answer.text();
    if (answer.status === 200 && text.includes(filename)) return;
    last = `${answer.status} ${text.slice(0, 200)}`;
    await sleep(10);
  }
  throw new Error(`${listingPath(version)} did not list ${filename} within ${LISTED_TIMEOUT_MS} ms; last: ${last}`);
}

/** Streams a download through SHA-256; the bytes are never held. */
export function downloadDigest(url: string): Promise<{ sha256: string; size: number }> {
  return new Promise((resolve, reject) => {
    get(url, (answer) => {
      if (answer.statusCode !== 200) {
        answer.resume();
        return reject(new Error(`GET ${url} answered ${answer.statusCode}`));
      }
      const hash = createHash('sha256');
      let size = 0;
      answer.on('data', (chunk: Buffer) => {
        size += chunk.length;
        hash.update(chunk);
      });
      answer.once('end', () => resolve({ sha256: hash.digest('hex'), size }));
      answer.once('error', reject);
    }).once('error', reject);
  });
}

/** Random bytes to `file`, written chunk by chunk; their SHA-256. */
async function writeRandomFile(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(file, 'w');
  try {
    for (let written = 0; written < size; written += CHUNK) {
      const chunk = randomBytes(Math.min(CHUNK, size - written));
      hash.update(chunk);
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** The upload API's JSON body for `file`, base64 streamed into it; its size in bytes. */
async function writeJsonBody(file: string, body: string, fields: Record<string, string>): Promise<number> {
  const head = JSON.stringify(fields).slice(0, -1);
  const handle = await open(body, 'w');
  let size = 0;
  const write = async (text: string) => {
    size += Buffer.byteLength(text);
    await handle.write(text);
  };
  try {
    await write(`${head},"file_data":"`);
    // Chunks of a multiple of 3 bytes encode without padding, so their base64 texts join up; any
    // remainder is carried into the next chunk.
    let carry = Buffer.alloc(0);
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) {
      const bytes = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
      const whole = bytes.length - (bytes.length % 3);
      await write(bytes.subarray(0, whole).toString('base64'));
      carry = Buffer.from(bytes.subarray(whole));
    }
    await write(`${carry.toString('base64')}"}`);
  } finally {
    await handle.close();
  }
  return size;
}

function uploadUrl(server: Server, version: string): string {
  const [major, minor] = version.split('.');
  return `${server.url}/binary/releases/${PRODUCT}/${major}/${minor}/upload`;
}

function listingPath(version: string): string {
  const [major, minor] = version.split('.');
  return `/binary/releases/${PRODUCT}/${major}/${minor}/`;
}

function filenameOf(version: string, platform: string, arch: string): string {
  return `${FILE_PREFIX}_${version}_${platform}_${arch}.zip`;
}

/** The largest peak RSS growth of the uploads after the first: what one more upload costs a running server. */
function growth(run: LargeUpload): number {
  return Math.max(...run.growths.slice(1));
}

export function mib(bytes: number): string {
  return `${Math.round(bytes / MiB)} MiB`;
}

function rate(bytes: number, ms: number): string {
  return `${Math.round(mbps(bytes, ms))} MB/s`;
}

function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
