// Blob store backend: a directory, one file per key. Commits by hard link, so a key appears
// complete or not at all, and two writers of one key cannot both win. Staging files live in
// `<root>/.tmp/` (same file system), and are linked, not copied, when committed.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobConflictError, BlobTooLargeError, DigestMismatchError, type BlobInfo, type BlobStore, type ByteRange } from './blob-store.ts';
import { hashFile, type FileDigest } from './hash.ts';

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
      const temporary = path.join(staging, randomUUID());
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
      const file = path.join(staging, `${randomUUID()}.upload`);
      const hash = createHash('sha256');
      let size = 0;
      const sink = createWriteStream(file, { flags: 'wx' });
      try {
        await pipeline(
          Readable.from(source, { objectMode: false }),
          async function* measure(chunks: AsyncIterable<Uint8Array>) {
            for await (const chunk of chunks) {
              size += chunk.length;
              if (size > maxBytes) throw new BlobTooLargeError(maxBytes);
              hash.update(chunk);
              yield chunk;
            }
          },
          sink,
        );
      } catch (error) {
        // A source that fails at once can beat the file's opening: wait for it, or the file appears after the removal.
        if (!sink.closed) await once(sink, 'close').catch(() => undefined);
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
 * Removes staging files older than `olderThanMs`: what uploads cut short by a crash left behind.
 * Younger ones may belong to an upload in progress in another process sharing the directory.
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
    if (!info?.isFile() || now - info.mtimeMs < olderThanMs) continue;
    await rm(file, { force: true });
    removed.push(name);
  }
  return removed;
}
