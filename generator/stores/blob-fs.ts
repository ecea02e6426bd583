// Blob store backend: a directory, one file per key. Commits by hard link, so a key appears
// complete or not at all, and two writers of one key cannot both win.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BlobConflictError, DigestMismatchError, type BlobInfo, type BlobStore, type ByteRange } from './blob-store.ts';
import { hashFile, type FileDigest } from './hash.ts';

export interface FsBlobStoreOptions {
  /** Directory holding the blobs; created on first write. */
  root: string;
}

export function createFsBlobStore({ root }: FsBlobStoreOptions): BlobStore {
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
      const temporary = path.join(root, '.tmp', randomUUID());
      await mkdir(path.dirname(temporary), { recursive: true });
      try {
        await copyFile(file, temporary);
        const actual = await hashFile(temporary);
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
