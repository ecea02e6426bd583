// Artifact bytes by key. Write-once: a key, once committed, keeps its content forever.
import type { Readable } from 'node:stream';
import type { FileDigest } from './hash.ts';

export interface BlobInfo {
  size: number;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface BlobStore {
  /** Size of the blob, or undefined when the key holds nothing. */
  stat(key: string): Promise<BlobInfo | undefined>;
  /** The bytes, or a byte range of them. */
  open(key: string, range?: ByteRange): Promise<Readable>;
  /**
   * Copies a file in under `key` after checking it has the expected digest. A key that already
   * holds the same bytes is left alone (`created: false`); other bytes raise BlobConflictError.
   */
  putFile(key: string, file: string, expected: FileDigest): Promise<{ created: boolean }>;
  /**
   * Writes a stream to a staging file, hashing as it goes, in constant memory; nothing is
   * visible under any key until `putFile` commits the staged file. Past `maxBytes` the write
   * stops with BlobTooLargeError and the staging file is removed.
   */
  stage(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: { maxBytes: number }): Promise<StagedBlob>;
}

export interface StagedBlob {
  file: string;
  digest: FileDigest;
  /** Removes the staging file; a commit has made its own link by then. */
  discard(): Promise<void>;
}

export class BlobTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`The file is larger than the limit of ${maxBytes} bytes`);
    this.name = 'BlobTooLargeError';
  }
}

export class BlobConflictError extends Error {
  constructor(readonly key: string) {
    super(`The blob store already holds other content under \`${key}\`; published artifacts are never overwritten`);
    this.name = 'BlobConflictError';
  }
}

export class DigestMismatchError extends Error {
  constructor(readonly file: string, readonly expected: FileDigest, readonly actual: FileDigest) {
    super(`${file}: expected sha256 ${expected.sha256} (${expected.size} bytes), got ${actual.sha256} (${actual.size} bytes)`);
    this.name = 'DigestMismatchError';
  }
}

/** Whether a store failed for want of space (a full disk, or the user's quota): the client can retry once there is room. */
export function isOutOfSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
