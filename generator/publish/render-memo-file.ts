// The render memo of `mirror build`, kept in a file beside the site between runs, so a rebuild
// renders only the units a change touches, as the sidecar's build thread does with its memo in
// memory. One line a unit: its name, its inputs' fingerprint, a digest of the rest (a damaged
// line's unit is rendered again), its output with each file as its record (key, hash, size,
// headers) rather than its body, and its route paths as the route spill's lines (route-spill.ts)
// with their KeyValueStore entries, which a build that spills its table takes as they are. Its last
// line holds the hashes of that build's route shards: with the lines of the units a render did not
// give back, they tell the next build which shards hold what they held (route-spill.ts), which it
// links instead of making them again. The memo names the build it describes
// and is read only while the site serves that build, which holds every file it records: the
// publish links them from there. It names the code that rendered it too: other code (another
// version, another dependency) renders every unit again. A build writes the next memo as it renders, copying the
// line of a unit given back, so neither memo is ever held whole, and replaces the old one by a
// rename once the build is published. The build's writer (file-writer.ts) writes it with the
// build's files, so past the first few thousand the render does not wait on the disk for it.
// Written by hand: the units and their rules are this renderer's.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../package-root.ts';
import { measured, recordOf, type BuiltFile, type WrittenFile } from '../render/site-file.ts';
import type { Kept, KeptRenderMemo, RenderStats } from '../render/memo.ts';
import type { KeptPaths } from '../render/binary.ts';
import type { PathTarget } from '../render/route-table.ts';
import { kvsPart, type KvsPart } from './cloudfront/kvs-entries.ts';
import { IN_PLACE, openFileWriter, textAppender, type FileWriter } from './file-writer.ts';
import { fileLines } from '../stores/lines.ts';
import { hashOfLine, spillLine } from './route-spill.ts';
import { MAX_SHARDS, ROUTE_SHARD_INDEX, type PreviousShards, type ShardMemory } from './route-shards.ts';

export interface RenderMemoFile extends KeptRenderMemo<BuiltFile>, ShardMemory {
  /** Puts the memo this render wrote in place of the one it read: once the build it describes is published. */
  save(): void;
  /** Drops what this render wrote, when its build failed; the memo read stays. */
  discard(): void;
}

/** Where `mirror build` keeps the render memo of a site: beside the site path, with its load cache. */
export function renderMemoFile(site: string): string {
  return `${site}.render-memo`;
}

const FORMAT = 'release-mirror render memo 2';
const TAB = 9;

interface Header {
  format: string;
  code: string;
  /** The build folder's name whose units these are. */
  build: string;
}

/** Where a unit's line is in the memo read, with the fingerprint it was rendered for. */
interface Entry {
  fingerprint: string;
  offset: number;
  length: number;
  /** Where its output starts within the line. */
  output: number;
  /** Given back by this render. */
  kept?: boolean;
}

/** A memo read: its units by name, its build's route shard hashes (its last line), and whether every line of it was read. */
interface Read {
  entries: Map<string, Entry>;
  shards: Record<string, string> | undefined;
  whole: boolean;
}

/** Units not given back, past which a render's shards are all made again rather than their lines read to find the few that changed. */
const REPLACED_READ = 1 / 8;

/**
 * Opens the memo in `file` when it describes the build `from` (the one the site serves; a missing,
 * damaged or foreign memo is an empty one), and starts the next one, of the build `to`, beside it,
 * written by `writer` (the build's; in place by default). Called under the site's publish lock: a
 * next memo already there is a killed build's, and removed.
 */
export function openRenderMemoFile(
  file: string,
  { from, to }: { from: string | undefined; to: string },
  { code = renderCode(), writer = openFileWriter(IN_PLACE) }: { code?: string; writer?: FileWriter } = {},
): RenderMemoFile {
  const headerOf = (build: string) => `${JSON.stringify({ format: FORMAT, code, build: path.basename(build) } satisfies Header)}\n`;
  const header = headerOf(to);
  let source = from === undefined ? undefined : openIfExists(file);
  const read: Read = source === undefined ? { entries: new Map(), shards: undefined, whole: false } : readEntries(source, headerOf(from!));
  const { entries } = read;
  // The units given back came in the order the memo read has them: each shard's lines of those are in the same order as in its build.
  let lastKept = -1;
  let inOrder = true;
  let previous: PreviousShards | undefined;
  let made: Record<string, string> | undefined;
  removeLeftovers(file);
  const temporary = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let out: number | undefined = openSync(temporary, 'w');
  // As text: the writer's thread takes text in pieces it collects at once, where bytes would wait for a full collection.
  const appender = textAppender(writer, () => out!);
  appender.add(header);
  let units = 0;
  let rendered = 0;
  const closeSource = () => {
    if (source !== undefined) closeSync(source);
    source = undefined;
  };
  /** Closes the memo being written once the writer has written all of it (or failed). */
  const close = () => {
    closeSource();
    if (out === undefined) return;
    try {
      writer.drain();
    } finally {
      closeSync(out);
      out = undefined;
    }
  };
  /** The served build's shards, with the shards of the paths of every unit of its memo this render did not give back; undefined when that cannot be read. */
  function replacedShards(hashes: Record<string, string>): PreviousShards | undefined {
    const gone = [...entries.values()].filter((entry) => !entry.kept);
    if (gone.length > Math.max(16, entries.size * REPLACED_READ)) return undefined;
    const replaced = new Set<number>();
    for (const entry of gone) {
      const line = Buffer.allocUnsafe(entry.length);
      if (readSync(source!, line, 0, line.length, entry.offset) !== line.length) return undefined;
      const output = keptOutput(line.toString('utf8', entry.output));
      if (output === undefined) return undefined;
      for (const spilled of output.kept.lines) replaced.add(hashOfLine(spilled) & (MAX_SHARDS - 1));
    }
    return { count: Object.keys(hashes).filter((name) => name !== ROUTE_SHARD_INDEX).length, hashes, replaced };
  }
  return {
    unit(name, fingerprintOf, make) {
      units++;
      const fingerprint = fingerprintOf();
      const entry = entries.get(name);
      if (entry && entry.fingerprint === fingerprint) {
        const line = Buffer.allocUnsafe(entry.length);
        const text = readSync(source!, line, 0, line.length, entry.offset) === line.length ? line.toString('utf8') : undefined;
        // Its output starts `entry.output` bytes in: as many characters as the bytes before it decode to.
        const kept = text === undefined ? undefined : keptOutput(text.slice(line.toString('utf8', 0, entry.output).length));
        if (kept) {
          entry.kept = true;
          inOrder &&= entry.offset > lastKept;
          lastKept = entry.offset;
          appender.add(`${text}\n`);
          return kept as unknown as Kept<ReturnType<typeof make>, BuiltFile>;
        }
      }
      rendered++;
      const output: ReturnType<typeof make> & { paths?: Record<string, PathTarget>; kept?: KeptPaths } = make();
      output.files.forEach(measured);
      const { paths, ...rest } = output;
      const lines = paths ? Object.keys(paths).map((path) => spillLine(path, paths[path]!)) : [];
      const kvs = paths ? kvsPart(paths) : { folders: [], entries: [] };
      const body = [JSON.stringify({ ...rest, files: output.files.map(recordOf) }), JSON.stringify(kvs), ...lines].join('\t');
      appender.add(`${JSON.stringify(name)}\t${fingerprint}\t${digestOf(body)}\t${body}\n`);
      if (paths) output.kept = { lines, kvs };
      return output;
    },
    finish(): RenderStats {
      appender.flush();
      if (read.whole && read.shards !== undefined && inOrder) previous = replacedShards(read.shards);
      closeSource();
      return { units, rendered };
    },
    get previous() {
      return previous;
    },
    made(hashes) {
      made = hashes;
    },
    save() {
      if (made !== undefined) {
        const json = JSON.stringify(made);
        appender.add(`\t${digestOf(json)}\t${json}\n`);
      }
      appender.flush();
      close();
      renameSync(temporary, file);
    },
    discard() {
      try {
        close();
      } catch {
        // The build failed already; what its writer failed at is reported there.
      } finally {
        rmSync(temporary, { force: true });
      }
    },
  };
}

/** The next memos of builds killed before they could save or discard them. */
function removeLeftovers(file: string): void {
  const prefix = `${path.basename(file)}.`;
  for (const name of readdirSync(path.dirname(file))) {
    if (name.startsWith(prefix) && name.endsWith('.tmp')) rmSync(path.join(path.dirname(file), name), { force: true });
  }
}

function openIfExists(file: string): number | undefined {
  try {
    return openSync(file, 'r');
  } catch {
    return undefined;
  }
}

/**
 * The units of the memo open as `fd`, by name, and its last line's route shard hashes; none unless
 * its header is `header` (this format, this code, the build served).
 */
function readEntries(fd: number, header: string): Read {
  const read: Read = { entries: new Map(), shards: undefined, whole: true };
  let first = true;
  for (const { bytes, at } of fileLines(fd)) {
    if (first) {
      if (bytes.toString('utf8') !== header.slice(0, -1)) return { ...read, whole: false };
      first = false;
      continue;
    }
    // Lines after the shards' line, which a memo writes last: not this memo's.
    if (read.shards !== undefined) read.whole = false;
    const nameEnd = bytes.indexOf(TAB);
    if (nameEnd === 0) {
      read.shards = shardsOf(bytes.toString('utf8', 1));
      read.whole &&= read.shards !== undefined;
      continue;
    }
    const fingerprintEnd = nameEnd === -1 ? -1 : bytes.indexOf(TAB, nameEnd + 1);
    let name: unknown;
    try {
      name = fingerprintEnd === -1 ? undefined : JSON.parse(bytes.toString('utf8', 0, nameEnd));
    } catch {
      // Damaged: see below.
    }
    // A damaged line, or a name twice: the unit is rendered again, and what its paths were is not known.
    if (typeof name !== 'string' || read.entries.has(name)) {
      read.whole = false;
      continue;
    }
    read.entries.set(name, { fingerprint: bytes.toString('latin1', nameEnd + 1, fingerprintEnd), offset: at, length: bytes.length, output: fingerprintEnd + 1 });
  }
  return read;
}

/** The route shard hashes of a memo's last line (`\t` digest `\t` JSON), when its digest and JSON hold. */
function shardsOf(text: string): Record<string, string> | undefined {
  const digestEnd = text.indexOf('\t');
  const json = text.slice(digestEnd + 1);
  if (digestEnd === -1 || text.slice(0, digestEnd) !== digestOf(json)) return undefined;
  try {
    const hashes = JSON.parse(json) as unknown;
    return hashes !== null && typeof hashes === 'object' && Object.values(hashes).every((hash) => typeof hash === 'string') ? (hashes as Record<string, string>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A unit's output as the memo kept it (its JSON without the paths, its paths' KeyValueStore
 * entries, then its paths' spill lines, tab-separated), when its digest and JSON hold; undefined
 * otherwise. Its paths are read from their lines only when asked for: a build that spills its
 * route table takes the lines and entries as they are.
 */
function keptOutput(text: string): { files: WrittenFile[]; kept: KeptPaths } | undefined {
  const digestEnd = text.indexOf('\t');
  const body = text.slice(digestEnd + 1);
  // A line cut short or overwritten: its unit is rendered again.
  if (digestEnd === -1 || text.slice(0, digestEnd) !== digestOf(body)) return undefined;
  const [json, kvsJson, ...lines] = body.split('\t');
  let output: { files?: unknown };
  let kvs: KvsPart;
  try {
    output = JSON.parse(json!) as { files?: unknown };
    kvs = JSON.parse(kvsJson!) as KvsPart;
  } catch {
    return undefined;
  }
  if (!Array.isArray(output.files)) return undefined;
  const files = output.files as WrittenFile[];
  if (!files.every((file) => typeof file.key === 'string' && typeof file.sha256 === 'string')) return undefined;
  let paths: Record<string, PathTarget> | undefined;
  return Object.defineProperties(output as { files: WrittenFile[]; kept: KeptPaths }, {
    kept: { value: { lines, kvs } satisfies KeptPaths, enumerable: true },
    paths: { get: () => (paths ??= JSON.parse(`{${lines.map((line) => line.slice(8)).join(',')}}`) as Record<string, PathTarget>), enumerable: true },
  });
}

/** What a unit's line holds past its name, fingerprint and digest, as a digest: SHA-256, 128 bits of it. */
function digestOf(body: string): string {
  return createHash('sha256').update(body).digest('base64url').slice(0, 22);
}

let code: string | undefined;

/**
 * The code that renders, as a fingerprint: the running code's own files (dist/ when it runs from
 * there, the generator's sources otherwise), the versions of the libraries the renderer uses, and
 * Node's zlib, which gzips apt's package lists.
 */
export function renderCode(): string {
  if (code !== undefined) return code;
  const hash = createHash('sha256');
  const here = fileURLToPath(import.meta.url);
  const dist = path.join(PACKAGE_ROOT, 'dist');
  const root = here.startsWith(`${dist}${path.sep}`) ? dist : path.join(PACKAGE_ROOT, 'generator');
  for (const file of codeFiles(root)) hash.update(`${path.relative(root, file)}\0`).update(readFileSync(file)).update('\0');
  const require = createRequire(import.meta.url);
  for (const library of ['handlebars', 'markdown-it', 'sanitize-html', 'semver']) hash.update(`${library}@${libraryVersion(require, library)}\0`);
  hash.update(`zlib@${process.versions.zlib}`);
  code = hash.digest('base64url');
  return code;
}

function codeFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(?:[cm]?js|ts)$/.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

/** The version in the package.json of the folder `library` resolves from. */
function libraryVersion(require: NodeRequire, library: string): string {
  for (let dir = path.dirname(require.resolve(library)); path.dirname(dir) !== dir; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const { name, version } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string; version?: string };
    if (name === library) return version ?? 'unknown';
  }
  return 'unknown';
}
