// SHA-256 of files with node:crypto: about as fast as coreutils' sha256sum here (see npm run bench).
import { createHash } from 'node:crypto';
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

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
