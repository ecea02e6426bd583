// Whether the blob store's disk has room. A full disk (or quota) refuses uploads and publishes with
// the contract's 500 that names it, and the replica stays ready, degraded: downloads and the rest of
// the API go on. The shortage is logged once, when the first write fails for want of space, and once
// when a write succeeds again, with how many were refused meanwhile; never a stack per request.
import type { Logger } from 'pino';
import { isOutOfSpace, type BlobStore } from '../generator/stores/blob-store.ts';

export interface DiskHealth {
  /** The blob store, its writes watched: one that fails for want of space marks the disk full, one that succeeds clears it. */
  watch(blobs: BlobStore): BlobStore;
  /** For /readyz: rejects, naming the cause, while the disk is full. */
  check(): Promise<void>;
}

export function diskHealth({ logger, dir }: { logger: Logger; dir: string }): DiskHealth {
  let full: { since: number; cause: string; refused: number } | undefined;
  const failed = (error: unknown) => {
    if (full) {
      full.refused++;
      return;
    }
    const cause = (error as Error).message;
    full = { since: Date.now(), cause, refused: 1 };
    logger.warn({ dependency: 'blobs', dir, error: cause }, 'the blob store is out of disk space; uploads and publishes are refused until space is freed');
  };
  const succeeded = () => {
    if (!full) return;
    logger.info({ dependency: 'blobs', dir, fullSeconds: Math.round((Date.now() - full.since) / 100) / 10, refused: full.refused }, `the blob store has disk space again after ${full.refused} writes were refused`);
    full = undefined;
  };
  const observe = async <T>(write: () => Promise<T>): Promise<T> => {
    try {
      const result = await write();
      succeeded();
      return result;
    } catch (error) {
      if (isOutOfSpace(error)) failed(error);
      throw error;
    }
  };
  return {
    watch: (blobs) => ({
      stat: (key) => blobs.stat(key),
      open: (key, range) => blobs.open(key, range),
      putFile: (key, file, expected) => observe(() => blobs.putFile(key, file, expected)),
      stage: (source, options) => observe(() => blobs.stage(source, options)),
    }),
    async check() {
      if (full) throw new Error(`out of disk space since ${new Date(full.since).toISOString()}: ${full.cause}`);
    },
  };
}
