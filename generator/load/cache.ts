// What the last build of a site loaded, so the next one reads only the manifest files that
// changed. Each valid file is kept with its size, mtime, ctime, inode and SHA-256 beside its parsed
// value; an unchanged stat means an unchanged file, except when its mtime is within the
// file system's tick of the previous load (it may have changed since without changing its stat):
// then its bytes are hashed again, as git does with a racily clean index entry. The cache names
// the store it describes and the loader code it came from, and carries the hash of its own body:
// anything else (missing, truncated, foreign, another version) is an empty cache, so a full load.
// One line a file, so a save copies the lines of unchanged files instead of serializing them again;
// the header's hash is over the lines written with it, hashed as they are read and as they are
// written (one hash a file, not one a line: at 100,000 files, a digest object each was 20 MB and
// 0.3 s). A save that changes a few lines appends them instead, as a segment that ends in a line of
// its own hash, its load's time and the files gone since: at 100,000 files, rewriting the cache
// for one new release wrote 217 MB. A later line of a file replaces an earlier one; a segment that
// does not check out ends what is read (its files are read again). Once the segments reach a
// quarter of the lines written whole, or the file is not as this load read it, a save writes the
// cache whole again, by a rename.
// Written by hand: no library keeps a stat-and-hash file cache with these rules.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, statSync, writeSync, type BigIntStats } from 'node:fs';
import { lstat, mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fingerprintFromSource } from '../model/fingerprint.ts';
import { fileLines } from '../stores/lines.ts';
import { readBytes, reportUnreadable } from './json-file.ts';
import { readAhead, type AheadFile, type FileRead, type ReadAhead } from './read-ahead.ts';
import type { Release } from '../model/catalog.ts';
import type { Report } from './problems.ts';

/** Which count a file goes to: release files, or the store's settings (mirror.json, product.json). */
export type CachedKind = 'release' | 'settings';

export interface LoadStats {
  /** Files the load asked for, by kind. */
  files: Record<CachedKind, number>;
  /** Of those, the files whose bytes were read; the others came from the cache by their stat alone. */
  read: Record<CachedKind, number>;
}

export interface LoadCache {
  /**
   * The value of `file`: the cached one while the file is unchanged, otherwise `parse` of its text
   * (then kept when defined, as only a valid file's value is). Read errors are reported as the
   * loader always reports them.
   */
  value<T>(file: string, kind: CachedKind, report: Report, parse: (text: string) => T | undefined): T | undefined;
  readonly stats: LoadStats;
  /**
   * Writes the files this load saw, dropping the others, when that changes the cache. Without a
   * memory, the cache lets go of the values it holds once saved: a later save does nothing.
   */
  save(): Promise<void>;
  /** What a long-lived loader keeps from one load to the next; undefined for a one-off load. */
  readonly memory?: LoadCacheMemory | undefined;
  /**
   * The files `value` will be asked for next, in this order: when a few thousand or more of them
   * are not in the cache, a thread reads them ahead (read-ahead.ts), which the caller closes once the load is done.
   */
  expect(files: string[], readAheadFrom?: number): { close(): Promise<void> } | undefined;
}

/** Bumped when the cache's layout or the meaning of a cached value changes. */
const FORMAT = 4;
/** Lines, or bytes, written per call by a save. */
const SAVE_BATCH = 2048;
const SAVE_BYTES = 4 << 20;
/** A file modified this close to a load may have changed after it was read, within the same mtime tick (FAT and some network file systems tick in seconds). */
const RACY_WINDOW_NS = 2_000_000_000n;
/** Files to read, not in the cache, from which a thread reads them ahead: fewer are read before the thread would start (the default of `expect`). */
const READ_AHEAD_FROM = 2048;
/** Appended segments are written until they reach this share of the lines written whole. */
const APPEND_SHARE = 1 / 4;

interface Entry {
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  sha256: string;
  value: unknown;
}

interface Header {
  format: number;
  /** The loader code whose values the cache holds. */
  loader: string;
  /** The manifest store, resolved: a cache describes one store. */
  store: string;
  /** Wall clock at the start of the load that wrote the cache, in ns: what racy entries are measured from. */
  loadedAt: string;
  /** Bytes after the header written with it: the lines, one `[path, entry]` a file, each ending in a newline but the last. */
  bytes: number;
  /** SHA-256 of those bytes. */
  sha256: string;
}

/** The line that ends an appended segment (after the newline that ends its last entry line). */
interface Trailer {
  /** SHA-256 of the segment's entry lines, each with its newline, then of this trailer's JSON without `sha256`. */
  sha256: string;
  /** Wall clock at the start of the load that appended the segment, in ns: its entries' racy window. */
  loadedAt: string;
  lines: number;
  /** Files in the cache before that load and gone since. */
  removed: string[];
}

/**
 * What a long-lived builder keeps between loads: the cache as its last save wrote it, so the next
 * load neither reads nor parses the file again while no other process has replaced it.
 */
export interface LoadCacheMemory {
  previous?: Previous | undefined;
  /** Each product directory's last sort of its releases (see the loader's sortedOnce). */
  sorts?: Map<string, { releases: Release[]; sorted: Release[] }>;
}

/**
 * A cache kept in `file` for the store at `releasesDir`; `loader` names the code that makes the
 * values (see loaderFingerprint). With `memory`, the file is read only when another process wrote it since.
 */
export async function openLoadCache(file: string, releasesDir: string, loader: string, memory?: LoadCacheMemory): Promise<LoadCache> {
  const store = path.resolve(releasesDir);
  // The loader's paths are path.join(releasesDir, …): their key is what follows this prefix.
  const prefix = path.join(releasesDir, '_').slice(0, -1);
  const loadedAt = BigInt(Date.now()) * 1_000_000n;
  const remembered = memory?.previous;
  let previous = remembered && remembered.store === store && remembered.loader === loader && remembered.identity === (await identityOf(file)) ? remembered : readCache(file, store, loader);
  // An entry taken from the previous cache keeps its line: saving copies those bytes rather than serializing and hashing it again.
  const kept = new Map<string, Kept>();
  const stats = emptyStats();
  let changed = previous === undefined;
  let released = false;

  let ahead: ReadAhead | undefined;
  const keyOf = (file: string) => (file.startsWith(prefix) ? file.slice(prefix.length) : path.relative(store, file));

  return {
    stats,
    memory,
    expect(files, readAheadFrom = READ_AHEAD_FROM) {
      const trusted = previous && String(previous.loadedAt - RACY_WINDOW_NS);
      const reads = files.map((file): AheadFile => {
        const { entry, since } = previous?.entries.get(keyOf(file)) ?? {};
        return { path: file, unchanged: entry && isEntry(entry) ? { identity: entryIdentity(entry), beforeNs: since === undefined ? trusted! : String(since - RACY_WINDOW_NS) } : undefined };
      });
      return (ahead = startReadAhead(reads, readAheadFrom));
    },
    value<T>(file: string, kind: CachedKind, report: Report, parse: (text: string) => T | undefined): T | undefined {
      stats.files[kind]++;
      const key = keyOf(file);
      const read = ahead?.take(file);
      const stat = read ? statOfIdentity(read.identity) : statSync(file, { bigint: true, throwIfNoEntry: false });
      const { entry, line, since } = previous?.entries.get(key) ?? {};
      if (stat && entry && isEntry(entry) && unchangedSince(entry, stat, since ?? previous!.loadedAt)) {
        kept.set(key, { entry, line, since });
        return fingerprinted(entry.value as T, entry.sha256);
      }
      changed = true;
      stats.read[kind]++;
      const bytes = bytesOf(file, read, report);
      if (bytes === undefined) return undefined;
      const sha256 = read?.sha256 ?? createHash('sha256').update(bytes).digest('hex');
      const value = entry && isEntry(entry) && entry.sha256 === sha256 ? (entry.value as T) : parse(bytes.toString('utf8'));
      // A file replaced while it was read has another stat now; it is read again next time.
      if (value !== undefined && stat) kept.set(key, { entry: { ...statFields(stat), sha256, value } });
      return value === undefined ? value : fingerprinted(value, sha256);
    },
    async save() {
      if (released) return;
      if (!changed && kept.size === previous?.entries.size) {
        // Nothing to write: the next load starts from the file as read (a long-lived loader's first, say).
        if (memory) memory.previous = previous;
        return release();
      }
      await mkdir(path.dirname(file), { recursive: true });
      const written = (previous && (await appendSegment(file, previous, kept, loadedAt, memory !== undefined))) ?? (await writeWhole());
      // What was written: the next load and save start from here.
      if (memory) memory.previous = written;
      release();
    },
  };

  /** Writes every kept line into a new file, renamed over the cache: what a long-lived loader keeps of it, or undefined for a one-off load. */
  async function writeWhole(): Promise<Previous | undefined> {
    // Kept only by a long-lived loader, each line by its place in the new file: a save writes its
    // lines a batch at a time and holds none of them, so a store's whole cache is never in memory.
    const entries = new Map<string, Kept>();
    // The header's hash and size are over every line, so it is written last, over a placeholder of the same length.
    const headerOf = (sha256: string, bytes: number) => JSON.stringify({ format: FORMAT, loader, store, loadedAt: String(loadedAt), bytes, sha256 } satisfies Header);
    // Padded with spaces, which JSON.parse skips, to the length of the longest size.
    const width = headerOf('0'.repeat(64), 0).length + HEADER_SLACK;
    const header = (sha256: string, bytes: number) => Buffer.from(`${headerOf(sha256, bytes).padEnd(width)}\n`);
    const headerBytes = header('0'.repeat(64), 0).length;
    let bytes = 0;
    const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      const handle = await open(temp, 'w');
      try {
        const hash = createHash('sha256');
        await handle.write(header('0'.repeat(64), 0));
        let batch: Buffer[] = [];
        let batchBytes = 0;
        let first = true;
        const writeBatch = async () => {
          for (const piece of batch) {
            hash.update(piece);
            bytes += piece.length;
          }
          await handle.writev(batch);
          batch = [];
          batchBytes = 0;
        };
        // The load kept where its lines are in the file it read: copied from there while no other
        // process has replaced that file, serialized again otherwise.
        const source = previous ? openIfSame(previous.file, previous.identity) : undefined;
        // Lines that follow each other there are copied as one read, with the line breaks between them.
        const run = new LineRun(source);
        // Where the next line starts in the new file.
        let at = headerBytes;
        try {
          for (const [key, { entry, line: known }] of kept) {
            const line = known && (known.bytes !== undefined || source !== undefined) ? known : { bytes: Buffer.from(JSON.stringify([key, entry])) };
            const length = line.bytes?.length ?? line.at!.length;
            if (memory) entries.set(key, { entry, line: { at: { offset: at, length } } });
            at += length + 1;
            if (line.bytes === undefined && run.extend(line.at!)) continue;
            batchBytes += run.flushInto(batch);
            if (!first) batch.push(NEWLINE);
            first = false;
            if (line.bytes === undefined) run.start(line.at!);
            else batch.push(line.bytes);
            batchBytes += line.bytes?.length ?? 0;
            if (batch.length >= SAVE_BATCH || batchBytes >= SAVE_BYTES) await writeBatch();
          }
          run.flushInto(batch);
        } finally {
          if (source !== undefined) closeSync(source);
        }
        await writeBatch();
        await handle.write(header(hash.digest('hex'), bytes), 0, undefined, 0);
      } finally {
        await handle.close();
      }
      await rename(temp, file);
    } finally {
      await rm(temp, { force: true });
    }
    return memory && { store, loader, loadedAt, entries, identity: await identityOf(file), file, bodyStart: headerBytes, baseBytes: bytes, appended: 0, end: headerBytes + bytes };
  }

  /** A one-off load's values and lines are not needed past its save: a build lets the catalog go once rendered. */
  function release(): void {
    if (memory) return;
    released = true;
    kept.clear();
    previous = undefined;
  }
}

/** A value named by the hash of its file, which the cache has: a render memo need not hash it again (model/fingerprint.ts). */
function fingerprinted<T>(value: T, sha256: string): T {
  if (typeof value === 'object' && value !== null) fingerprintFromSource(value, sha256);
  return value;
}

/** For a load without a cache: reads every file and counts it. */
export function noLoadCache(): LoadCache {
  const stats = emptyStats();
  let ahead: ReadAhead | undefined;
  return {
    stats,
    expect(files, readAheadFrom = READ_AHEAD_FROM) {
      return (ahead = startReadAhead(files.map((file) => ({ path: file })), readAheadFrom));
    },
    value(file, kind, report, parse) {
      stats.files[kind]++;
      stats.read[kind]++;
      const bytes = bytesOf(file, ahead?.take(file), report);
      return bytes === undefined ? undefined : parse(bytes.toString('utf8'));
    },
    async save() {},
  };
}

/** A thread reading `files` ahead, when at least `from` of them are to be read; none otherwise. */
function startReadAhead(files: AheadFile[], from: number): ReadAhead | undefined {
  let toRead = 0;
  for (const file of files) if (!file.unchanged) toRead++;
  return toRead >= from ? readAhead(files) : undefined;
}

/** A file's bytes: as the thread read them, or read now (the thread did not, or there is none); undefined once its problem is reported. */
function bytesOf(file: string, read: FileRead | undefined, report: Report): Buffer | undefined {
  if (read?.bytes) return read.bytes;
  if (read?.error === undefined) return readBytes(file, report);
  reportUnreadable(file, read.error, report);
  return undefined;
}

/** The stat fields the cache compares, from the thread's `size:mtimeNs:ctimeNs:ino`. */
function statOfIdentity(identity: string | undefined): StatIdentity | undefined {
  if (identity === undefined) return undefined;
  const [size, mtimeNs, ctimeNs, ino] = identity.split(':').map(BigInt) as [bigint, bigint, bigint, bigint];
  return { size, mtimeNs, ctimeNs, ino };
}

function entryIdentity(entry: Entry): string {
  return `${entry.size}:${entry.mtimeNs}:${entry.ctimeNs}:${entry.ino}`;
}

/** Where `mirror build` keeps the load cache of a site: beside the site path, with its builds. */
export function loadCacheFile(site: string): string {
  return `${site}.load-cache.json`;
}

/**
 * Whether a cached entry still describes the file: same size, mtime, ctime and inode, and an mtime
 * far enough before the load that hashed it that a later write within the same tick is ruled out.
 */
export function unchangedSince(entry: Entry, stat: StatIdentity, loadedAt: bigint): boolean {
  return (
    BigInt(entry.size) === stat.size &&
    entry.mtimeNs === String(stat.mtimeNs) &&
    entry.ctimeNs === String(stat.ctimeNs) &&
    entry.ino === String(stat.ino) &&
    stat.mtimeNs < loadedAt - RACY_WINDOW_NS
  );
}

/**
 * The loader code a cached value depends on: its schemas, walked with every function's source and
 * every pattern, and the functions that turn a file's data into the model. A change to any of them
 * makes another fingerprint, so an older cache is not used.
 */
export function loaderFingerprint(parts: unknown[]): string {
  const seen = new Map<object, number>();
  const text = JSON.stringify(parts, (_key, value: unknown) => {
    if (typeof value === 'function') return `function ${value.toString()}`;
    if (value instanceof RegExp) return `pattern ${value.toString()}`;
    if (typeof value === 'bigint') return `bigint ${value}`;
    if (value !== null && typeof value === 'object') {
      // A zod schema by its definition alone: the rest of the instance fills in lazily as it parses.
      const definition = (value as { _zod?: { def?: unknown } })._zod?.def;
      if (definition !== undefined && definition !== value) return { schema: definition };
      const id = seen.get(value);
      if (id !== undefined) return `seen ${id}`;
      seen.set(value, seen.size);
    }
    return value;
  });
  return createHash('sha256').update(`${FORMAT}\n${text}`).digest('hex');
}

function emptyStats(): LoadStats {
  return { files: { release: 0, settings: 0 }, read: { release: 0, settings: 0 } };
}

type StatIdentity = Pick<BigIntStats, 'size' | 'mtimeNs' | 'ctimeNs' | 'ino'>;

function statFields(stat: StatIdentity): Omit<Entry, 'sha256' | 'value'> {
  return { size: Number(stat.size), mtimeNs: String(stat.mtimeNs), ctimeNs: String(stat.ctimeNs), ino: String(stat.ino) };
}

function isEntry(entry: unknown): entry is Entry {
  if (entry === null || typeof entry !== 'object') return false;
  const { size, mtimeNs, ctimeNs, ino, sha256, value } = entry as Record<string, unknown>;
  return typeof size === 'number' && typeof mtimeNs === 'string' && typeof ctimeNs === 'string' && typeof ino === 'string' && typeof sha256 === 'string' && value !== undefined;
}

const NEWLINE = Buffer.from('\n');

/**
 * An entry's line in the cache file, without its newline: where it is in the file read (or
 * written), whose save copies it from there; its bytes only while a save serializes it.
 */
interface Line {
  bytes?: Buffer;
  at?: { offset: number; length: number };
}

/** The file open for reading while it is still the one `identity` names; undefined otherwise. */
function openIfSame(file: string, identity: string | undefined): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    if (identityString(fstatSync(fd, { bigint: true })) === identity) return fd;
  } catch {
    // Gone: the lines are serialized again.
  }
  if (fd !== undefined) closeSync(fd);
  return undefined;
}

/** Lines of the cache file read that follow one another there, from the first line's start to the last one's end: read at once. */
class LineRun {
  private offset = 0;
  private end = -1;

  constructor(private readonly fd: number | undefined) {}

  start(at: { offset: number; length: number }): void {
    this.offset = at.offset;
    this.end = at.offset + at.length;
  }

  /** Takes the line into the run when it starts right after the run's last line (and the run stays under RUN_BYTES). */
  extend(at: { offset: number; length: number }): boolean {
    if (this.end < 0 || at.offset !== this.end + 1 || at.offset + at.length - this.offset > RUN_BYTES) return false;
    this.end = at.offset + at.length;
    return true;
  }

  /** Reads the run, if any, into `batch`, and ends it; the bytes read. */
  flushInto(batch: Buffer[]): number {
    if (this.end < 0) return 0;
    const bytes = Buffer.allocUnsafe(this.end - this.offset);
    if (readSync(this.fd!, bytes, 0, bytes.length, this.offset) !== bytes.length) throw new Error('The load cache read was cut short');
    batch.push(bytes);
    this.end = -1;
    return bytes.length;
  }
}

/** The most bytes a LineRun reads at once. */
const RUN_BYTES = 1 << 20;

/** A file's entry as the cache has it: its line, and, when not the header's, the load its racy window is measured from. */
interface Kept {
  entry: unknown;
  line?: Line | undefined;
  since?: bigint | undefined;
}

interface Previous {
  store: string;
  loader: string;
  /** The load that wrote the cache whole. */
  loadedAt: bigint;
  entries: Map<string, Kept>;
  /** The file read, by device, inode, size and mtime: a whole write replaces it by a rename, an append changes its size. */
  identity: string | undefined;
  /** The file read (or written), where the entries' lines are. */
  file: string;
  /** Where the lines written whole start, and their bytes. */
  bodyStart: number;
  baseBytes: number;
  /** Bytes of the segments appended since. */
  appended: number;
  /** Where the file's last whole segment ends, when nothing follows it: where a save may append. */
  end: number | undefined;
}

/** Header bytes kept free for the size of the lines, which is known only once they are written. */
const HEADER_SLACK = 16;

/**
 * Appends a segment of the lines of `kept` that are not in the file yet and of the files gone since,
 * while the file is as `previous` read it and the segments stay under APPEND_SHARE of the lines
 * written whole; undefined otherwise. What a long-lived loader keeps of the cache once appended
 * (the file's `previous` for a one-off load, which keeps nothing).
 */
async function appendSegment(file: string, previous: Previous, kept: Map<string, Kept>, loadedAt: bigint, remember: boolean): Promise<Previous | undefined> {
  if (previous.end === undefined) return undefined;
  const hash = createHash('sha256');
  const pieces: Buffer[] = previous.end > previous.bodyStart ? [NEWLINE] : [];
  let lines = 0;
  let bytes = pieces.length;
  const budget = previous.baseBytes * APPEND_SHARE - previous.appended;
  const entries = new Map<string, Kept>();
  for (const [key, { entry, line, since }] of kept) {
    if (line !== undefined) {
      if (remember) entries.set(key, { entry, line, since });
      continue;
    }
    const added = Buffer.from(JSON.stringify([key, entry]));
    hash.update(added).update(NEWLINE);
    pieces.push(added, NEWLINE);
    lines++;
    if (remember) entries.set(key, { entry, line: { at: { offset: previous.end + bytes, length: added.length } }, since: loadedAt });
    bytes += added.length + 1;
    if (bytes > budget) return undefined;
  }
  const removed: string[] = [];
  for (const key of previous.entries.keys()) if (!kept.has(key)) removed.push(key);
  const trailer = trailerJson({ loadedAt: String(loadedAt), lines, removed });
  const sha256 = hash.update(trailer).digest('hex');
  pieces.push(Buffer.from(`{"sha256":"${sha256}",${trailer.slice(1)}`));
  bytes += pieces.at(-1)!.length;
  if (bytes > budget) return undefined;
  let fd: number | undefined;
  try {
    fd = openSync(file, 'a');
    if (identityString(fstatSync(fd, { bigint: true })) !== previous.identity) return undefined;
    const segment = Buffer.concat(pieces);
    // One write: another process that appends at the same time puts its segment after or before it, not within.
    for (let at = 0; at < segment.length; ) at += writeSync(fd, segment, at);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return { ...previous, entries, identity: await identityOf(file), appended: previous.appended + bytes, end: previous.end + bytes };
}

/** A trailer's JSON without its hash, as written and as checked. */
function trailerJson({ loadedAt, lines, removed }: Omit<Trailer, 'sha256'>): string {
  return JSON.stringify({ loadedAt, lines, removed });
}

/** The trailer in a line that starts with `{`, when its fields are as written; undefined otherwise. */
function trailerOf(bytes: Buffer): Trailer | undefined {
  try {
    const trailer = JSON.parse(bytes.toString('utf8')) as Partial<Trailer>;
    const { sha256, loadedAt, lines, removed } = trailer;
    if (typeof sha256 !== 'string' || typeof loadedAt !== 'string' || !/^\d+$/.test(loadedAt) || !Number.isSafeInteger(lines) || !Array.isArray(removed) || !removed.every((key) => typeof key === 'string')) return undefined;
    return trailer as Trailer;
  } catch {
    return undefined;
  }
}

/**
 * The previous load's entries, or undefined for a cache that is missing, damaged or not this
 * store's and loader's. Read a line at a time, keeping each line's place in the file (not its
 * bytes, which a save copies from there). The lines written whole must all check
 * out; an appended segment's are taken once its trailer does, and the first that does not ends
 * what is read (and what a save may append to).
 */
function readCache(file: string, store: string, loader: string): Previous | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const stat = fstatSync(fd, { bigint: true });
    let header: Partial<Header> | undefined;
    let bodyStart = 0;
    let baseEnd = 0;
    let base = true;
    let end: number | undefined;
    let hash = createHash('sha256');
    const entries = new Map<string, Kept>();
    // A segment's lines, taken once its trailer checks out.
    let pending: [key: string, kept: Kept][] = [];
    let lines = 0;
    const takeBase = (): boolean => {
      base = false;
      if (hash.digest('hex') !== header!.sha256) return false;
      end = baseEnd;
      hash = createHash('sha256');
      lines = 0;
      return true;
    };
    for (const { bytes, at } of fileLines(fd)) {
      if (header === undefined) {
        header = JSON.parse(bytes.toString('utf8')) as Partial<Header>;
        if (header.format !== FORMAT || header.loader !== loader || header.store !== store || typeof header.loadedAt !== 'string' || !/^\d+$/.test(header.loadedAt) || !Number.isSafeInteger(header.bytes)) return undefined;
        bodyStart = at + bytes.length + 1;
        baseEnd = bodyStart + header.bytes!;
        continue;
      }
      if (base && at + bytes.length > baseEnd && !takeBase()) return undefined;
      if (base) {
        if (lines++ > 0) hash.update(NEWLINE);
        hash.update(bytes);
        const [key, entry] = entryOf(bytes);
        entries.set(key, { entry, line: { at: { offset: at, length: bytes.length } } });
        continue;
      }
      // A segment's line, or its trailer; anything that does not check out ends the read.
      if (bytes[0] !== 0x7b) {
        hash.update(bytes).update(NEWLINE);
        try {
          const [key, entry] = entryOf(bytes);
          pending.push([key, { entry, line: { at: { offset: at, length: bytes.length } } }]);
          continue;
        } catch {
          end = undefined;
          break;
        }
      }
      const trailer = trailerOf(bytes);
      if (trailer === undefined || trailer.lines !== pending.length || hash.update(trailerJson(trailer)).digest('hex') !== trailer.sha256) {
        end = undefined;
        break;
      }
      const since = BigInt(trailer.loadedAt);
      for (const key of trailer.removed) entries.delete(key);
      for (const [key, kept] of pending) entries.set(key, { ...kept, since });
      pending = [];
      hash = createHash('sha256');
      end = at + bytes.length;
    }
    if (header === undefined || (base && !takeBase())) return undefined;
    // Lines after the last trailer: a segment cut short.
    if (pending.length > 0 || end !== Number(stat.size)) end = undefined;
    return { store, loader, loadedAt: BigInt(header.loadedAt!), entries, identity: identityString(stat), file, bodyStart, baseBytes: header.bytes!, appended: (end ?? Number(stat.size)) - baseEnd, end };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A cache line's path and entry; throws when it is not one. */
function entryOf(bytes: Buffer): [key: string, entry: unknown] {
  const parsed: unknown = JSON.parse(bytes.toString('utf8'));
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string') throw new Error('Not a load cache line');
  return parsed as [string, unknown];
}

/** The file's identity (see Previous), or undefined when there is none. */
async function identityOf(file: string): Promise<string | undefined> {
  const stat = await lstat(file, { bigint: true }).catch(() => undefined);
  return stat && identityString(stat);
}

function identityString(stat: BigIntStats): string {
  return `${stat.dev} ${stat.ino} ${stat.size} ${stat.mtimeNs}`;
}

