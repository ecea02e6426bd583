// The manifest files a load is about to read, read ahead by a thread of their own: each file's
// stat, and unless the load cache holds it unchanged, its bytes and SHA-256. The load takes them in
// order while it parses and validates the files before, so on two cores reading a store's hundred
// thousand files overlaps checking them. The thread only saves the load its I/O: the load cache
// still decides, from the stat, whether a file changed, and reads a file itself when the thread
// did not. Written by hand, as file-writer.ts is: the load is synchronous and cannot await.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

export interface AheadFile {
  path: string;
  /** The stat (`size:mtimeNs:ctimeNs:ino`) under which the cache holds the file, and the mtime before which that stat is trusted: then it is not read. */
  unchanged?: { identity: string; beforeNs: string } | undefined;
}

/** A file as the thread found it. */
export interface FileRead {
  /** `size:mtimeNs:ctimeNs:ino`; undefined when the file is not there. */
  identity: string | undefined;
  /** Its bytes and their SHA-256 (hex), unless the thread found it unchanged or could not read it. */
  bytes?: Buffer;
  sha256?: string;
  /** The code of the error reading it (ENOENT, EACCES, …). */
  error?: string;
}

export interface ReadAhead {
  /** The next file's read, when `file` is the next of those given; undefined otherwise, and the caller reads it itself. */
  take(file: string): FileRead | undefined;
  /** Stops the thread. */
  close(): Promise<void>;
}

/** Files read in one batch, and batches read before the load has taken them. */
const BATCH_FILES = 128;
const BATCHES_AHEAD = 8;
/** How long a load waits for a thread that never started before it says so. */
const START_TIMEOUT_MS = 30_000;
/** Shared counters: batches posted (a failure counts as one), batches taken, and whether the thread's code runs. */
const POSTED = 0;
const TAKEN = 1;
const STARTED = 2;

/** Starts the thread on `files`, in the order the load will ask for them. */
export function readAhead(files: AheadFile[]): ReadAhead {
  const counters = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  const { port1: results, port2 } = new MessageChannel();
  // A small young generation, as the file writer's: what the thread makes is passed on at once.
  const resourceLimits = { maxYoungGenerationSizeMb: 4 };
  const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { files, counters, results: port2 }, transferList: [port2], resourceLimits });
  worker.unref();
  results.unref();
  let next = 0;
  let batch: FileRead[] = [];
  let at = 0;
  return {
    take(file) {
      if (files[next]?.path !== file) return undefined;
      next++;
      if (at === batch.length) {
        batch = receive(results, counters);
        at = 0;
      }
      return batch[at++];
    },
    async close() {
      await worker.terminate();
    },
  };
}

/** The next batch the thread posted, waiting for it. */
function receive(results: MessagePort, counters: Int32Array): FileRead[] {
  const taken = Atomics.load(counters, TAKEN);
  for (let posted = Atomics.load(counters, POSTED); posted <= taken; posted = Atomics.load(counters, POSTED)) {
    const started = Atomics.load(counters, STARTED) === 1;
    if (Atomics.wait(counters, POSTED, posted, started ? undefined : START_TIMEOUT_MS) === 'timed-out' && Atomics.load(counters, STARTED) === 0) {
      throw new Error(`The read-ahead thread did not start within ${START_TIMEOUT_MS / 1000} s`);
    }
  }
  const message = receiveMessageOnPort(results)?.message as { reads: FileRead[]; bytes: ArrayBuffer; ends: number[] } | { failure: string } | undefined;
  if (message === undefined || 'failure' in message) throw new Error(`The read-ahead thread failed: ${message?.failure ?? 'it posted nothing'}`);
  Atomics.add(counters, TAKEN, 1);
  Atomics.notify(counters, TAKEN);
  // One buffer a batch, moved rather than copied: each file's bytes are a view of it.
  let start = 0;
  message.reads.forEach((read, i) => {
    const end = message.ends[i]!;
    if (end > start || read.sha256 !== undefined) read.bytes = Buffer.from(message.bytes, start, end - start);
    start = end;
  });
  return message.reads;
}

/**
 * Reads one file as the thread does: stat, then bytes unless unchanged. The thread runs it from its
 * source text, so it uses nothing but its arguments and has no inner named functions.
 */
function readOne(files: typeof fs, hashes: typeof crypto, file: AheadFile): FileRead {
  const stat = files.statSync(file.path, { bigint: true, throwIfNoEntry: false });
  const identity = stat === undefined ? undefined : `${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}:${stat.ino}`;
  if (identity !== undefined && file.unchanged !== undefined && identity === file.unchanged.identity && stat!.mtimeNs < BigInt(file.unchanged.beforeNs)) return { identity };
  try {
    const bytes = files.readFileSync(file.path);
    return { identity, bytes, sha256: hashes.createHash('sha256').update(bytes).digest('hex') };
  } catch (error) {
    return { identity, error: (error as NodeJS.ErrnoException).code ?? String(error) };
  }
}

/** The thread: reads a batch at a time, copies its bodies into one buffer it gives away, and stays at most BATCHES_AHEAD ahead. */
const THREAD_SOURCE = `
const fs = require('node:fs');
const crypto = require('node:crypto');
const { workerData: { files, counters, results } } = require('node:worker_threads');
const readOne = (${readOne.toString()});
Atomics.store(counters, ${STARTED}, 1);
try {
  for (let first = 0, posted = 0; first < files.length; first += ${BATCH_FILES}, posted++) {
    for (let taken = Atomics.load(counters, ${TAKEN}); posted - taken >= ${BATCHES_AHEAD}; taken = Atomics.load(counters, ${TAKEN})) Atomics.wait(counters, ${TAKEN}, taken);
    const batch = files.slice(first, first + ${BATCH_FILES});
    const reads = batch.map((file) => readOne(fs, crypto, file));
    const bytes = new Uint8Array(reads.reduce((sum, read) => sum + (read.bytes ? read.bytes.length : 0), 0));
    const ends = [];
    let end = 0;
    for (const read of reads) {
      if (read.bytes) {
        bytes.set(read.bytes, end);
        end += read.bytes.length;
        delete read.bytes;
      }
      ends.push(end);
    }
    results.postMessage({ reads, bytes: bytes.buffer, ends }, [bytes.buffer]);
    Atomics.add(counters, ${POSTED}, 1);
    Atomics.notify(counters, ${POSTED});
  }
} catch (error) {
  results.postMessage({ failure: error instanceof Error ? error.message : String(error) });
  Atomics.add(counters, ${POSTED}, 1);
  Atomics.notify(counters, ${POSTED});
}
`;
