// SHA-256 of files with node:crypto: about as fast as coreutils' sha256sum here (see npm run bench).
import { createHash, hash as digest } from 'node:crypto';
import { createReadStream } from 'node:fs';

const CHUNK = 1 << 20;

export interface FileDigest {
  sha256: string;
  size: number;
}

export async function hashFile(file: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: CHUNK }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** One call, no Hash object: about 1 µs less a call than createHash, which for the 120,000 files of a large site is a tenth of a second or more. */
export function sha256Hex(data: string | Uint8Array): string {
  return digest('sha256', data, 'hex');
}
