// The filesystem blob store: write-once keys, digest-checked writes, byte ranges, and keys that
// cannot leave the root.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { createFsBlobStore, removeStaleStaging } from '../generator/stores/blob-fs.ts';
import { BlobConflictError, BlobTooLargeError, DigestMismatchError, type BlobStore } from '../generator/stores/blob-store.ts';
import { REPO, listFiles, removeDir, sha256, tempDir } from './helpers/store.ts';

const execFileAsync = promisify(execFile);

interface RaceReport {
  unhandled: number;
  rounds: { created: number; unchanged: number; conflicts: number; otherErrors: string[]; holdsWinner: boolean; tmpLeft: number }[];
}

/**
 * Runs rounds of 6 concurrent puts of different bytes under one key in a child process (default
 * unhandled-rejection mode: an unhandled rejection kills it) and reports each round as JSON.
 */
async function runRaceRounds(work: string, { rounds, catchUnhandled }: { rounds: number; catchUnhandled: boolean }): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = path.join(work, 'race.mjs');
  await writeFile(
    script,
    `
import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createFsBlobStore } from ${JSON.stringify(pathToFileURL(path.join(REPO, 'generator/stores/blob-fs.ts')).href)};
import { BlobConflictError } from ${JSON.stringify(pathToFileURL(path.join(REPO, 'generator/stores/blob-store.ts')).href)};
let unhandled = 0;
if (${catchUnhandled}) process.on('unhandledRejection', () => { unhandled++; });
const work = ${JSON.stringify(work)};
const report = [];
for (let round = 0; round < ${rounds}; round++) {
  const root = path.join(work, 'race-' + round);
  const store = createFsBlobStore({ root });
  const inputs = [];
  for (let i = 0; i < 6; i++) {
    const bytes = randomBytes(64 * 1024);
    const file = path.join(work, 'race-in-' + round + '-' + i);
    await writeFile(file, bytes);
    inputs.push({ file, bytes, digest: { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length } });
  }
  const outcomes = await Promise.allSettled(inputs.map((input) => store.putFile('k/blob.zip', input.file, input.digest)));
  const winner = outcomes.findIndex((outcome) => outcome.status === 'fulfilled' && outcome.value.created);
  const stored = await readFile(path.join(root, 'k/blob.zip'));
  report.push({
    created: outcomes.filter((o) => o.status === 'fulfilled' && o.value.created).length,
    unchanged: outcomes.filter((o) => o.status === 'fulfilled' && !o.value.created).length,
    conflicts: outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof BlobConflictError).length,
    otherErrors: outcomes.filter((o) => o.status === 'rejected' && !(o.reason instanceof BlobConflictError)).map((o) => String(o.reason)),
    holdsWinner: winner !== -1 && stored.equals(inputs[winner].bytes),
    tmpLeft: (await readdir(path.join(root, '.tmp'))).length,
  });
}
process.stdout.write(JSON.stringify({ unhandled, rounds: report }));
`,
  );
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', script], { cwd: REPO, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

let dir: string;
let root: string;
let store: BlobStore;

beforeEach(async () => {
  dir = await tempDir('mirror-blobs-');
  root = path.join(dir, 'blobs');
  store = createFsBlobStore({ root });
});
afterEach(() => removeDir(dir));

/** Writes a source file outside the store; returns its path, bytes and digest. */
async function source(name: string, bytes: Buffer = randomBytes(3000)) {
  const file = path.join(dir, name);
  await writeFile(file, bytes);
  return { file, bytes, digest: { sha256: sha256(bytes), size: bytes.length } };
}

const KEY = 'releases/1/2/3/tool_1.2.3_linux_amd64.zip';

describe('createFsBlobStore: put, stat and open', () => {
  test('putFile stores the bytes under the key and reports created', async () => {
    const input = await source('in.zip');
    assert.deepEqual(await store.putFile(KEY, input.file, input.digest), { created: true });
    assert.deepEqual(await readFile(path.join(root, KEY)), input.bytes);
  });

  test('stat answers the size of a stored blob and undefined for a missing key', async () => {
    const input = await source('in.zip');
    assert.equal(await store.stat(KEY), undefined);
    await store.putFile(KEY, input.file, input.digest);
    assert.deepEqual(await store.stat(KEY), { size: 3000 });
    assert.equal(await store.stat('releases/1/2/3/other.zip'), undefined);
  });

  test('stat of a key that is a directory answers undefined', async () => {
    const input = await source('in.zip');
    await store.putFile(KEY, input.file, input.digest);
    assert.equal(await store.stat('releases/1/2'), undefined);
  });

  test('open without a range streams the whole blob', async () => {
    const input = await source('in.zip');
    await store.putFile(KEY, input.file, input.digest);
    assert.deepEqual(await readAll(await store.open(KEY)), input.bytes);
  });

  test('open with a range streams the bytes from start to end inclusive', async () => {
    const input = await source('in.zip');
    await store.putFile(KEY, input.file, input.digest);
    assert.deepEqual(await readAll(await store.open(KEY, { start: 10, end: 19 })), input.bytes.subarray(10, 20));
    assert.deepEqual(await readAll(await store.open(KEY, { start: 0, end: 0 })), input.bytes.subarray(0, 1));
    assert.deepEqual(await readAll(await store.open(KEY, { start: 2990, end: 2999 })), input.bytes.subarray(2990));
  });

  test('open of a missing key fails with ENOENT', async () => {
    await assert.rejects(async () => readAll(await store.open('releases/none.zip')), { code: 'ENOENT' });
  });

  test('an empty file is a blob too', async () => {
    const input = await source('empty', Buffer.alloc(0));
    assert.deepEqual(await store.putFile('empty/blob', input.file, input.digest), { created: true });
    assert.deepEqual(await store.stat('empty/blob'), { size: 0 });
    assert.deepEqual(await readAll(await store.open('empty/blob')), Buffer.alloc(0));
  });

  test('the source file is copied, not moved', async () => {
    const input = await source('in.zip');
    await store.putFile(KEY, input.file, input.digest);
    assert.deepEqual(await readFile(input.file), input.bytes);
  });
});

describe('createFsBlobStore: write-once', () => {
  test('putting the same bytes again leaves the blob alone and reports created: false', async () => {
    const input = await source('in.zip');
    await store.putFile(KEY, input.file, input.digest);
    const before = await stat(path.join(root, KEY));
    const again = await source('again.zip', input.bytes);
    assert.deepEqual(await store.putFile(KEY, again.file, again.digest), { created: false });
    const after = await stat(path.join(root, KEY));
    assert.equal(after.ino, before.ino);
    assert.deepEqual(await readFile(path.join(root, KEY)), input.bytes);
  });

  test('putting other bytes under a taken key raises BlobConflictError and keeps the content', async () => {
    const input = await source('in.zip');
    await store.putFile(KEY, input.file, input.digest);
    const other = await source('other.zip');
    await assert.rejects(store.putFile(KEY, other.file, other.digest), (error: Error) => {
      assert.ok(error instanceof BlobConflictError, String(error));
      assert.equal(error.key, KEY);
      assert.match(error.message, /already holds other content under `releases\/1\/2\/3\/tool_1\.2\.3_linux_amd64\.zip`/);
      return true;
    });
    assert.deepEqual(await readFile(path.join(root, KEY)), input.bytes);
    assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
  });

  test('a longer file that starts with the stored bytes is a conflict too', async () => {
    const input = await source('in.zip');
    await store.putFile(KEY, input.file, input.digest);
    const longer = await source('longer.zip', Buffer.concat([input.bytes, Buffer.from('x')]));
    await assert.rejects(store.putFile(KEY, longer.file, longer.digest), BlobConflictError);
    assert.deepEqual(await store.stat(KEY), { size: 3000 });
  });
});

describe('createFsBlobStore: digest check', () => {
  test('a file that does not match the expected sha256 raises DigestMismatchError and stores nothing', async () => {
    const input = await source('in.zip');
    const expected = { sha256: sha256('something else'), size: input.bytes.length };
    await assert.rejects(store.putFile(KEY, input.file, expected), (error: Error) => {
      assert.ok(error instanceof DigestMismatchError, String(error));
      assert.equal(error.file, input.file);
      assert.deepEqual(error.expected, expected);
      assert.deepEqual(error.actual, input.digest);
      return true;
    });
    assert.equal(await store.stat(KEY), undefined);
    await assert.rejects(stat(path.join(root, KEY)), { code: 'ENOENT' });
    assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
    assert.deepEqual(await listFiles(root), []);
  });

  test('a file that does not match the expected size raises DigestMismatchError', async () => {
    const input = await source('in.zip');
    await assert.rejects(store.putFile(KEY, input.file, { sha256: input.digest.sha256, size: 2999 }), DigestMismatchError);
    assert.deepEqual(await listFiles(root), []);
  });

  test('after a mismatch the key can still be written with the right bytes', async () => {
    const input = await source('in.zip');
    await assert.rejects(store.putFile(KEY, input.file, { sha256: '0'.repeat(64), size: 3000 }), DigestMismatchError);
    assert.deepEqual(await store.putFile(KEY, input.file, input.digest), { created: true });
  });

  test('a missing source file is an error and stores nothing', async () => {
    await assert.rejects(store.putFile(KEY, path.join(dir, 'absent'), { sha256: '0'.repeat(64), size: 0 }), { code: 'ENOENT' });
    assert.deepEqual(await listFiles(root), []);
  });
});

describe('createFsBlobStore: keys', () => {
  for (const key of ['../x', 'a/../../x', '/etc/passwd', '..', '', '.']) {
    test(`refuses the key ${JSON.stringify(key)} that does not name a file inside the root`, async () => {
      const input = await source('in.zip');
      await assert.rejects(store.putFile(key, input.file, input.digest), /leaves the blob store/);
      await assert.rejects(store.stat(key), /leaves the blob store/);
      await assert.rejects(store.open(key), /leaves the blob store/);
      await assert.rejects(stat(path.join(dir, 'x')), { code: 'ENOENT' });
      assert.deepEqual(await listFiles(root), []);
    });
  }

  test('refuses a sibling directory whose name starts with the root’s name', async () => {
    const input = await source('in.zip');
    await assert.rejects(store.putFile('../blobs-evil/x', input.file, input.digest), /leaves the blob store/);
    await assert.rejects(stat(path.join(dir, 'blobs-evil')), { code: 'ENOENT' });
  });

  test('a key that climbs and comes back inside the root is the same key', async () => {
    const input = await source('in.zip');
    await store.putFile('a/b.zip', input.file, input.digest);
    assert.deepEqual(await store.stat('a/../a/b.zip'), { size: 3000 });
  });
});

describe('createFsBlobStore: concurrent writers', () => {
  test('concurrent puts of one key with the same bytes: exactly one reports created', async () => {
    const input = await source('in.zip', randomBytes(1 << 20));
    const copies = await Promise.all(Array.from({ length: 8 }, (_, i) => source(`copy-${i}.zip`, input.bytes)));
    const results = await Promise.all(copies.map((copy) => store.putFile(KEY, copy.file, copy.digest)));
    assert.equal(results.filter((result) => result.created).length, 1, JSON.stringify(results));
    assert.equal(results.filter((result) => !result.created).length, 7);
    assert.deepEqual(await readFile(path.join(root, KEY)), input.bytes);
    assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
  });

  // A put that loses the race to other bytes ends in BlobConflictError. An unhandled rejection on
  // that path would kill the process, so these rounds run in a child process that reports it.
  test('concurrent puts of one key with different bytes: one wins, the others conflict', async () => {
    const { code, stdout, stderr } = await runRaceRounds(dir, { rounds: 10, catchUnhandled: true });
    assert.equal(code, 0, stderr);
    const { rounds } = JSON.parse(stdout) as RaceReport;
    assert.equal(rounds.length, 10);
    for (const round of rounds) assert.deepEqual(round, { created: 1, unchanged: 0, conflicts: 5, otherErrors: [], holdsWinner: true, tmpLeft: 0 });
  });

  test('a put that loses the race to other bytes rejects its promise instead of crashing the process', async () => {
    const { code, stderr } = await runRaceRounds(dir, { rounds: 20, catchUnhandled: false });
    assert.equal(code, 0, stderr);
  });
});

describe('createFsBlobStore: staging a stream', () => {
  async function* chunks(bytes: Buffer, size = 1000) {
    for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
  }

  test('stage hashes while it writes; putFile commits the staged file by link, and discard removes it', async () => {
    const bytes = randomBytes(10_000);
    const staged = await store.stage(chunks(bytes), { maxBytes: 10_000 });
    assert.deepEqual(staged.digest, { sha256: sha256(bytes), size: bytes.length });
    assert.deepEqual(await store.putFile(KEY, staged.file, staged.digest), { created: true });
    assert.equal((await stat(path.join(root, KEY))).ino, (await stat(staged.file)).ino, 'linked, not copied');
    await staged.discard();
    assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
    assert.deepEqual(await readFile(path.join(root, KEY)), bytes);
  });

  test('a staged file committed under the wrong digest raises DigestMismatchError and stores nothing', async () => {
    const bytes = randomBytes(2000);
    const staged = await store.stage(chunks(bytes), { maxBytes: 1 << 20 });
    await assert.rejects(store.putFile(KEY, staged.file, { sha256: sha256(Buffer.from('other')), size: 2000 }), DigestMismatchError);
    assert.equal(await store.stat(KEY), undefined);
    await staged.discard();
  });

  test('a stream past maxBytes stops with BlobTooLargeError and leaves no staging file', async () => {
    await assert.rejects(store.stage(chunks(randomBytes(5000)), { maxBytes: 4999 }), BlobTooLargeError);
    assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
  });

  test('a stream that fails right after its first bytes leaves no staging file, however soon it fails', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from('PK');
      throw new Error('refused at once');
    }
    for (let i = 0; i < 50; i++) await assert.rejects(store.stage(failing(), { maxBytes: 1000 }), /refused at once/);
    assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
  });

  test('chunks of any size, many times the write buffers, come out byte for byte', async () => {
    const bytes = randomBytes(1_300_000);
    async function* uneven() {
      // Sizes from 1 byte to past a write buffer (256 KiB), so chunks straddle, fill and overflow buffers.
      const sizes = [1, 3, 262_143, 1, 262_144, 300_000, 7, 65_536];
      for (let at = 0, i = 0; at < bytes.length; i++) {
        const size = sizes[i % sizes.length]!;
        yield bytes.subarray(at, at + size);
        at += size;
      }
    }
    const staged = await store.stage(uneven(), { maxBytes: bytes.length });
    assert.deepEqual(staged.digest, { sha256: sha256(bytes), size: bytes.length });
    assert.deepEqual(await readFile(staged.file), bytes);
    await staged.discard();
  });

  test('a full disk fails the stage with ENOSPC, leaves no staging file, and the next stage that fits works', { skip: process.getuid?.() === 0 ? false : 'mounting a small tmpfs needs root' }, async () => {
    const tiny = path.join(dir, 'tiny');
    await mkdir(tiny);
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tiny]);
    try {
      const full = createFsBlobStore({ root: path.join(tiny, 'blobs') });
      await assert.rejects(full.stage(chunks(randomBytes(3 << 20), 64 * 1024), { maxBytes: 4 << 20 }), { code: 'ENOSPC' });
      assert.deepEqual(await readdir(path.join(tiny, 'blobs', '.tmp')), []);
      const bytes = randomBytes(100_000);
      const staged = await full.stage(chunks(bytes), { maxBytes: 1 << 20 });
      assert.deepEqual(await readFile(staged.file), bytes);
      await staged.discard();
    } finally {
      await execFileAsync('umount', [tiny]);
    }
  });

  test('a stream that fails midway leaves no staging file', async () => {
    async function* broken() {
      yield Buffer.from('partial');
      throw new Error('client went away');
    }
    await assert.rejects(store.stage(broken(), { maxBytes: 1000 }), /client went away/);
    assert.deepEqual(await readdir(path.join(root, '.tmp')), []);
  });
});

describe('removeStaleStaging: what uploads cut short left in staging', () => {
  let root: string;
  beforeEach(async () => {
    root = await tempDir('mirror-staging-');
  });
  afterEach(async () => {
    await removeDir(root);
  });
  const HOUR = 60 * 60 * 1000;
  const staged = async () => (await readdir(path.join(root, '.tmp')).catch(() => [] as string[])).sort();

  test('an upload of a process killed with SIGKILL is removed at once; one in flight here is kept', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/stager.ts', root], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('staging') && resolve());
      child.once('exit', (code) => reject(new Error(`the stager exited (${code}) before staging`)));
    });
    const source = new PassThrough();
    const ours = createFsBlobStore({ root }).stage(source, { maxBytes: 1024 });
    source.write('in flight');
    const [theirs, mine] = await waitForFiles(2);
    assert.ok(theirs && mine);
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));

    const removed = await removeStaleStaging(root, HOUR);
    const left = await staged();
    assert.equal(removed.length, 1);
    assert.ok(removed[0]!.startsWith(`${child.pid}~`), removed[0]);
    assert.deepEqual(left, [`${process.pid}~${left[0]!.split('~')[1]}~${hostname()}~${left[0]!.split('~')[3]}`]);
    source.end();
    await (await ours).discard();
  });

  test('a file of another host is kept until it is old; a PID used again, or a name without an owner, is judged by age', async () => {
    await mkdir(path.join(root, '.tmp'));
    const fresh = ['1~100~elsewhere~a.upload', '2~200~elsewhere~b.upload', 'c.upload'];
    const reused = `${process.pid}~1~${hostname()}~d.upload`;
    for (const name of [...fresh, reused]) await writeFile(path.join(root, '.tmp', name), 'x');
    const old = new Date(Date.now() - 2 * HOUR);
    await utimes(path.join(root, '.tmp', fresh[1]!), old, old);
    await utimes(path.join(root, '.tmp', fresh[2]!), old, old);
    const removed = (await removeStaleStaging(root, HOUR)).sort();
    assert.deepEqual(removed, [reused, fresh[1]!, fresh[2]!].sort(), 'this process started at another time than 1: the PID was used again');
    assert.deepEqual(await staged(), [fresh[0]!]);
  });

  async function waitForFiles(count: number): Promise<string[]> {
    for (let i = 0; i < 100; i++) {
      const names = await staged();
      if (names.length >= count) return names;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`staging holds ${(await staged()).length} files, not ${count}`);
  }
});
