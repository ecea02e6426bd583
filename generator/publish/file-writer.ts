// A build's files, written off the thread that renders them. Render is synchronous and busy with
// JavaScript; making a hundred thousand files is the kernel's work, about as long again. With a
// thread of its own for the writes, the two overlap on two cores. The renderer hands each change
// over and goes on; it blocks (Atomics.wait) only while more than `backlog` bytes are waiting, so a
// build's memory does not grow with the site. A small publish never starts the thread: its first
// `threadAfter` changes, or `threadAfterBytes` of bodies, are made in place, by the same function
// the thread runs.
// Written by hand: thread pools (piscina, say) hand work over asynchronously, and render cannot await.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads';

export type FileBody = string | Uint8Array;

/** One change to the file system; a writer makes them in the order given. */
export type FileChange =
  | { kind: 'folder'; path: string }
  /** `replacing`: by a rename over the target, so a reader of the old file keeps reading it whole. */
  | { kind: 'write'; target: string; body: FileBody; replacing: boolean }
  /**
   * A hard link to `source`; where none can be made, `otherwise` is written, or without it the
   * source is copied. `failure` begins the message of a link that can be neither.
   */
  | { kind: 'link'; source: string; target: string; replacing: boolean; otherwise?: FileBody; failure?: string }
  /** The body written after what came before it to `fd`: a file the caller opened, and closes once the writer is drained. */
  | { kind: 'append'; fd: number; body: string }
  /** Every file under the folder `source` hard-linked at its place under `target`, its folders made; but for the names `except` directly under `source`. */
  | { kind: 'tree'; source: string; target: string; except: string[] };

export interface FileWriterOptions {
  /** Changes made in place, on the calling thread, before a writer thread takes the rest (default 2,048). */
  threadAfter?: number;
  /**
   * Bytes of bodies made in place before the thread takes the rest, whichever of the two comes
   * first (default 32 MiB): a rebuild writes few files, but its route table and manifest whole.
   */
  threadAfterBytes?: number;
  /** Bytes of bodies handed to the thread and not yet written past which `make` waits (default 8 MiB). */
  backlog?: number;
}

export interface FileWriter {
  /** Makes the change, or hands it to the writer thread; throws the failure of an earlier one. */
  make(change: FileChange): void;
  /** Waits until every change is made; throws the first failure. `unlinked`: links written from their `otherwise` body instead. */
  drain(): { unlinked: number };
  /** The same without blocking the calling thread: for changes made in the background (a long `tree`). */
  settled(): Promise<{ unlinked: number }>;
  /** Stops the writer thread, dropping the changes not yet made. */
  close(): Promise<void>;
}

/** A writer that never starts a thread: every change is made as it comes. */
export const IN_PLACE: FileWriterOptions = { threadAfter: Number.POSITIVE_INFINITY, threadAfterBytes: Number.POSITIVE_INFINITY };

/** Text appended to a file through a writer, gathered into pieces of at most APPEND_PIECE characters (but for a longer text, which goes alone). */
export interface TextAppender {
  add(text: string): void;
  /** Hands what is gathered to the writer. */
  flush(): void;
}

/** A TextAppender to the file `fd()` opens (called at the first flush that has text). */
export function textAppender(writer: FileWriter, fd: () => number): TextAppender {
  let pending: string[] = [];
  let pendingLength = 0;
  const flush = () => {
    if (pending.length === 0) return;
    writer.make({ kind: 'append', fd: fd(), body: pending.length === 1 ? pending[0]! : pending.join('') });
    pending = [];
    pendingLength = 0;
  };
  return {
    add(text) {
      if (pendingLength + text.length > APPEND_PIECE) flush();
      pending.push(text);
      pendingLength += text.length;
    },
    flush,
  };
}

const THREAD_AFTER = 2048;
const THREAD_AFTER_BYTES = 32 * 1024 * 1024;
const BACKLOG = 8 * 1024 * 1024;
/** Changes sent to the thread in one message, so that a message costs little next to its writes. */
const BATCH_CHANGES = 256;
const BATCH_BYTES = 1024 * 1024;
/**
 * Appended text is made and handed over in pieces of at most this many characters: a smaller
 * string is made in a young generation, collected within moments, where a megabyte would go to
 * V8's large-object space and wait for a full collection. That holds on both threads: the writer
 * thread's copy, and the rendering thread's text, which at 100,000 releases is some 700 MB of
 * pieces a build (routes.json, the manifest, the render memo, the route spill).
 */
export const APPEND_PIECE = 64 * 1024;
/** What a change weighs besides its body: a tree of empty files is bounded too. */
const CHANGE_WEIGHT = 256;
/**
 * The shared counters: bytes handed to the thread and not yet written, links written from their
 * body, whether a change failed, and whether the thread's code runs at all.
 */
const PENDING = 0;
const UNLINKED = 1;
const FAILED = 2;
const STARTED = 3;
/** How long a writer waits for a thread that never started before it says so. */
const START_TIMEOUT_MS = 30_000;

export function openFileWriter({ threadAfter = THREAD_AFTER, threadAfterBytes = THREAD_AFTER_BYTES, backlog = BACKLOG }: FileWriterOptions = {}): FileWriter {
  let madeInPlace = 0;
  let bytesInPlace = 0;
  let unlinkedInPlace = 0;
  let thread: WriterThread | undefined;
  let batch: FileChange[] = [];
  let batchWeight = 0;

  function send(): void {
    if (batch.length === 0) return;
    thread!.send(batch, batchWeight, backlog);
    batch = [];
    batchWeight = 0;
  }

  return {
    make(change) {
      if (!thread && madeInPlace < threadAfter && bytesInPlace < threadAfterBytes) {
        madeInPlace++;
        bytesInPlace += weightOf(change) - CHANGE_WEIGHT;
        unlinkedInPlace += makeChange(fs, crypto, change);
        return;
      }
      thread ??= startThread();
      thread.throwFailure();
      if (change.kind === 'append' && change.body.length > APPEND_PIECE) {
        for (let at = 0; at < change.body.length; at += APPEND_PIECE) this.make({ ...change, body: change.body.slice(at, at + APPEND_PIECE) });
        return;
      }
      batch.push(change);
      batchWeight += weightOf(change);
      if (batch.length >= BATCH_CHANGES || batchWeight >= BATCH_BYTES) send();
    },
    drain() {
      if (!thread) return { unlinked: unlinkedInPlace };
      send();
      thread.waitUntilBelow(1);
      thread.throwFailure();
      return { unlinked: unlinkedInPlace + thread.unlinked() };
    },
    async settled() {
      if (!thread) return { unlinked: unlinkedInPlace };
      send();
      await thread.settled();
      thread.throwFailure();
      return { unlinked: unlinkedInPlace + thread.unlinked() };
    },
    async close() {
      await thread?.worker.terminate();
    },
  };
}

/**
 * Makes one change; returns 1 for a link written from its `otherwise` body. The writer thread runs
 * it from its source text, so it uses nothing but its arguments and has no inner named functions.
 */
function makeChange(files: typeof fs, random: typeof crypto, change: FileChange): number {
  if (change.kind === 'folder') {
    files.mkdirSync(change.path, { recursive: true });
    return 0;
  }
  if (change.kind === 'append') {
    files.writeSync(change.fd, change.body);
    return 0;
  }
  if (change.kind === 'tree') {
    const folders = [''];
    for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
      files.mkdirSync(change.target + folder, { recursive: true });
      for (const entry of files.readdirSync(change.source + folder, { withFileTypes: true })) {
        const relative = `${folder}/${entry.name}`;
        if (folder === '' && change.except.includes(entry.name)) continue;
        if (entry.isDirectory()) folders.push(relative);
        else files.linkSync(change.source + relative, change.target + relative);
      }
    }
    return 0;
  }
  const into = change.replacing ? `${change.target}.${random.randomUUID().slice(0, 8)}.tmp` : change.target;
  let unlinked = 0;
  try {
    if (change.kind === 'write') {
      files.writeFileSync(into, change.body);
    } else {
      try {
        files.linkSync(change.source, into);
      } catch {
        if (change.otherwise === undefined) files.copyFileSync(change.source, into);
        else {
          files.writeFileSync(into, change.otherwise);
          unlinked = 1;
        }
      }
    }
    if (into !== change.target) files.renameSync(into, change.target);
    return unlinked;
  } catch (error) {
    if (into !== change.target) files.rmSync(into, { force: true });
    if (change.kind === 'link' && change.failure !== undefined && error instanceof Error) error.message = `${change.failure}: ${error.message}`;
    throw error;
  }
}

function weightOf(change: FileChange): number {
  const body = change.kind === 'write' || change.kind === 'append' ? change.body : change.kind === 'link' ? change.otherwise : undefined;
  return CHANGE_WEIGHT + (body === undefined ? 0 : typeof body === 'string' ? body.length : body.byteLength);
}

/** The thread: makes each batch's changes, then takes the batch's weight off PENDING. After a failure it makes none. */
const THREAD_SOURCE = `
const fs = require('node:fs');
const crypto = require('node:crypto');
const { parentPort, workerData: { counters, failures } } = require('node:worker_threads');
const makeChange = (${makeChange.toString()});
Atomics.store(counters, ${STARTED}, 1);
parentPort.on('message', ({ changes, weight }) => {
  try {
    for (const change of changes) {
      if (Atomics.load(counters, ${FAILED}) === 1) break;
      Atomics.add(counters, ${UNLINKED}, makeChange(fs, crypto, change));
    }
  } catch (error) {
    failures.postMessage(error instanceof Error ? error.message : String(error));
    Atomics.store(counters, ${FAILED}, 1);
  } finally {
    Atomics.sub(counters, ${PENDING}, weight);
    Atomics.notify(counters, ${PENDING});
  }
});
`;

interface WriterThread {
  worker: Worker;
  /** Hands a batch over, first waiting while more than `backlog` is pending. */
  send(changes: FileChange[], weight: number, backlog: number): void;
  waitUntilBelow(weight: number): void;
  /** Resolves once nothing is pending, leaving the calling thread free meanwhile. */
  settled(): Promise<void>;
  throwFailure(): void;
  unlinked(): number;
}

/** `Atomics.waitAsync`, which TypeScript's ES2022 library does not declare. */
const waitAsync = (Atomics as unknown as { waitAsync(array: Int32Array, index: number, value: number, timeout?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> } }).waitAsync;

function startThread(): WriterThread {
  const counters = new Int32Array(new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT));
  const { port1: failures, port2 } = new MessageChannel();
  // A small young generation: the bodies it receives die at once, and a larger one only holds them longer.
  const resourceLimits = { maxYoungGenerationSizeMb: 4 };
  const worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { counters, failures: port2 }, transferList: [port2], resourceLimits });
  // A process that is done with its build does not wait for the thread.
  worker.unref();
  failures.unref();
  let failure: Error | undefined;
  const thread: WriterThread = {
    worker,
    send(changes, weight, backlog) {
      thread.waitUntilBelow(backlog + 1);
      Atomics.add(counters, PENDING, weight);
      worker.postMessage({ changes, weight });
    },
    waitUntilBelow(weight) {
      for (let pending = Atomics.load(counters, PENDING); pending >= weight; pending = Atomics.load(counters, PENDING)) {
        const started = Atomics.load(counters, STARTED) === 1;
        if (Atomics.wait(counters, PENDING, pending, started ? undefined : START_TIMEOUT_MS) === 'timed-out' && Atomics.load(counters, STARTED) === 0) {
          throw new Error(`The writer thread did not start within ${START_TIMEOUT_MS / 1000} s`);
        }
      }
    },
    async settled() {
      // A wait for Atomics does not keep the process's event loop alive; the thread does, meanwhile.
      worker.ref();
      try {
        for (let pending = Atomics.load(counters, PENDING); pending > 0; pending = Atomics.load(counters, PENDING)) {
          const started = Atomics.load(counters, STARTED) === 1;
          const wait = waitAsync(counters, PENDING, pending, started ? undefined : START_TIMEOUT_MS);
          if ((wait.async ? await wait.value : wait.value) === 'timed-out' && Atomics.load(counters, STARTED) === 0) {
            throw new Error(`The writer thread did not start within ${START_TIMEOUT_MS / 1000} s`);
          }
        }
      } finally {
        worker.unref();
      }
    },
    throwFailure() {
      if (Atomics.load(counters, FAILED) === 0) return;
      failure ??= new Error((receiveMessageOnPort(failures)?.message as string | undefined) ?? 'A file change failed in the writer thread');
      throw failure;
    },
    unlinked: () => Atomics.load(counters, UNLINKED),
  };
  return thread;
}
