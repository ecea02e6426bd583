// Blob store backend: a directory, one file per key. Commits by hard link, so a key appears
// complete or not at all, and two writers of one key cannot both win. Staging files live in
// `<root>/.tmp/` (same file system), and are linked, not copied, when committed. Each is named
// after the process writing it, so one whose process died (`kill -9`) is known as left behind.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { BlobConflictError, BlobTooLargeError, DigestMismatchError, type BlobInfo, type BlobStore, type ByteRange } from './blob-store.ts';
import { hashFile, type FileDigest } from './hash.ts';

/** An upload's two write buffers, each this large: one fills while the other goes to disk. */
const STAGE_BUFFER_BYTES = 256 * 1024;

export interface FsBlobStoreOptions {
  /** Directory holding the blobs; created on first write. */
  root: string;
}

export function createFsBlobStore({ root }: FsBlobStoreOptions): BlobStore {
  const staging = path.join(path.resolve(root), '.tmp');
  /** Digests of the files `stage` wrote, computed from the bytes as they went to disk. */
  const staged = new Map<string, FileDigest>();
  const pathOf = (key: string) => {
    const file = path.resolve(root, key);
    if (!file.startsWith(path.resolve(root) + path.sep)) throw new Error(`Blob key \`${key}\` leaves the blob store`);
    return file;
  };

  return {
    async stat(key) {
      return statBlob(pathOf(key));
    },

    async open(key, range?: ByteRange): Promise<Readable> {
      return createReadStream(pathOf(key), range ? { start: range.start, end: range.end } : {});
    },

    async putFile(key, file, expected) {
      const target = pathOf(key);
      const existing = await statBlob(target);
      if (existing) return checkExisting(key, target, expected);
      const temporary = path.join(staging, stagingName(''));
      await mkdir(staging, { recursive: true });
      try {
        // A staged file is the store's own and already hashed; anything else is copied, so a later
        // change to the caller's file cannot reach the blob, and hashed.
        const known = staged.get(path.resolve(file));
        if (known) await link(file, temporary);
        else await copyFile(file, temporary);
        const actual = known ?? (await hashFile(temporary));
        if (actual.sha256 !== expected.sha256 || actual.size !== expected.size) throw new DigestMismatchError(file, expected, actual);
        await mkdir(path.dirname(target), { recursive: true });
        try {
          await link(temporary, target);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EEXIST') return await checkExisting(key, target, expected);
          throw error;
        }
        return { created: true };
      } finally {
        await rm(temporary, { force: true });
      }
    },

    async stage(source, { maxBytes }) {
      await mkdir(staging, { recursive: true });
      const file = path.join(staging, stagingName('.upload'));
      const hash = createHash('sha256');
      let size = 0;
      const handle = await open(file, 'wx');
      try {
        const sink = doubleBuffered(handle, STAGE_BUFFER_BYTES);
        for await (const chunk of source) {
          size += chunk.length;
          if (size > maxBytes) throw new BlobTooLargeError(maxBytes);
          hash.update(chunk);
          await sink.write(chunk);
        }
        await sink.end();
        await handle.close();
      } catch (error) {
        await handle.close().catch(() => undefined);
        await rm(file, { force: true });
        throw error;
      }
      const digest = { sha256: hash.digest('hex'), size };
      staged.set(file, digest);
      return {
        file,
        digest,
        discard: async () => {
          staged.delete(file);
          await rm(file, { force: true });
        },
      };
    },
  };
}

/**
 * Writes chunks to `handle` through two buffers: one fills while the other is written, so the disk
 * works while the next chunks are read and hashed, in fixed memory and without a write per chunk.
 * A stream's own buffering waits for each write before taking the next chunk.
 */
function doubleBuffered(handle: FileHandle, size: number): { write(chunk: Uint8Array): Promise<void>; end(): Promise<void> } {
  const buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
  const writing: (Promise<void> | undefined)[] = [undefined, undefined];
  // Kept until it is waited for, so a failed write is never an unhandled rejection in between.
  let failure: { error: unknown } | undefined;
  let current = 0;
  let filled = 0;
  let position = 0;
  const flush = async () => {
    if (filled === 0) return;
    writing[current] = writeAll(handle, buffers[current]!.subarray(0, filled), position).catch((error: unknown) => void (failure ??= { error }));
    position += filled;
    filled = 0;
    current = 1 - current;
    // The buffer about to fill may still be on its way to disk.
    await writing[current];
    if (failure) throw failure.error;
  };
  return {
    async write(chunk) {
      for (let offset = 0; offset < chunk.length; ) {
        const n = Math.min(size - filled, chunk.length - offset);
        buffers[current]!.set(chunk.subarray(offset, offset + n), filled);
        filled += n;
        offset += n;
        if (filled === size) await flush();
      }
    },
    async end() {
      await flush();
      await Promise.all(writing);
      if (failure) throw failure.error;
    },
  };
}

/** A write can take fewer bytes than it was given (a full disk first): write the rest, or fail with why. */
async function writeAll(handle: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let offset = 0; offset < bytes.length; ) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset, position + offset);
    offset += bytesWritten;
  }
}

async function statBlob(file: string): Promise<BlobInfo | undefined> {
  try {
    const info = await stat(file);
    return info.isFile() ? { size: info.size } : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function checkExisting(key: string, target: string, expected: FileDigest): Promise<{ created: boolean }> {
  const actual = await hashFile(target);
  if (actual.sha256 !== expected.sha256 || actual.size !== expected.size) throw new BlobConflictError(key);
  return { created: false };
}

/**
 * A process as staging file names carry it: its PID and start time (Linux's, in clock ticks since
 * boot; `0` where there is no /proc) and its host, so a PID used again is not taken for the
 * process that wrote the file.
 */
interface Owner {
  pid: number;
  start: string;
  host: string;
}

const SELF: Owner = { pid: process.pid, start: startOf(readProcStat('self')), host: hostname() };

/** `<pid>~<start>~<host>~<uuid><suffix>`: `~` is in no host name. */
function stagingName(suffix: string): string {
  return `${SELF.pid}~${SELF.start}~${SELF.host}~${randomUUID()}${suffix}`;
}

function ownerOf(name: string): Owner | undefined {
  const parts = name.split('~');
  if (parts.length !== 4 || !/^[1-9][0-9]*$/.test(parts[0]!)) return undefined;
  return { pid: Number(parts[0]), start: parts[1]!, host: parts[2]! };
}

function readProcStat(pid: number | 'self'): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat, counted after the command name, which may hold spaces. */
function startOf(stat: string | undefined): string {
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '0';
}

/** Whether the process that wrote a staging file on this host still runs (a read of a few hundred bytes from /proc). */
function running(owner: Owner): boolean {
  if (owner.start !== '0') return startOf(readProcStat(owner.pid)) === owner.start;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes what uploads cut short by a crash left in staging: at once the files of processes of
 * this host that no longer run, and the others' once older than `olderThanMs`, since another
 * host sharing the directory may still be writing them. (Containers that share the directory must
 * have host names of their own: their PIDs are not this host's.)
 */
export async function removeStaleStaging(root: string, olderThanMs: number, now = Date.now()): Promise<string[]> {
  const staging = path.join(path.resolve(root), '.tmp');
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(staging);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return removed;
    throw error;
  }
  for (const name of names) {
    const file = path.join(staging, name);
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) continue;
    const owner = ownerOf(name);
    const gone = owner?.host === SELF.host && !running(owner);
    if (!gone && now - info.mtimeMs < olderThanMs) continue;
    await rm(file, { force: true });
    removed.push(name);
  }
  return removed;
}
