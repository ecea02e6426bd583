// Reading a large file a line at a time, without holding it: the load cache and a build's route
// spill are each about as large as the store's release files (over 200 MB at 100,000 releases).
import { readSync } from 'node:fs';

/** Bytes read per call. */
const CHUNK = 1 << 20;

/**
 * The lines of the file open as `fd`, from its start, without their `\n`, each with its offset in
 * the file: views into one reused buffer, valid until the next line is asked for.
 */
export function* fileLines(fd: number): Generator<{ bytes: Buffer; at: number }> {
  let chunk = Buffer.allocUnsafe(CHUNK);
  // The file offset of the chunk's first byte, and the bytes of an unfinished line carried to its start.
  let offset = 0;
  let kept = 0;
  for (;;) {
    if (kept === chunk.length) chunk = Buffer.concat([chunk, Buffer.allocUnsafe(chunk.length)]);
    const read = readSync(fd, chunk, kept, chunk.length - kept, offset + kept);
    const length = kept + read;
    if (read === 0) {
      if (length > 0) yield { bytes: chunk.subarray(0, length), at: offset };
      return;
    }
    let start = 0;
    for (let end = chunk.indexOf(10, start); end !== -1 && end < length; end = chunk.indexOf(10, start)) {
      yield { bytes: chunk.subarray(start, end), at: offset + start };
      start = end + 1;
    }
    chunk.copy(chunk, 0, start, length);
    offset += start;
    kept = length - start;
  }
}
