// Reading a load's files ahead: the thread gives what reading them in place gives, and the load
// through it gives the same catalog, cache and problems.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openLoadCache } from '../generator/load/cache.ts';
import { LOADER_FINGERPRINT, LoadError, loadCatalog } from '../generator/load/index.ts';
import { readAhead, type AheadFile } from '../generator/load/read-ahead.ts';
import { copySampleStore, removeDir, tempDir } from './helpers/store.ts';

let work: string;
before(async () => {
  work = await tempDir('mirror-read-ahead-');
});
after(async () => {
  await removeDir(work);
});

async function identity(file: string): Promise<string> {
  const found = await stat(file, { bigint: true });
  return `${found.size}:${found.mtimeNs}:${found.ctimeNs}:${found.ino}`;
}

describe('read ahead', () => {
  test('gives each file its stat, and its bytes and SHA-256 unless the cache holds it unchanged, in order and past the read-ahead limit', async () => {
    const dir = path.join(work, 'files');
    await copySampleStore(dir, { releases: false });
    const many = Array.from({ length: 5000 }, (_, i) => path.join(dir, `many-${i}.json`));
    for (const [i, file] of many.entries()) await writeFile(file, `{"n":${i}}`);
    await writeFile(path.join(dir, 'empty.json'), '');
    await writeFile(path.join(dir, 'kept.json'), '{"kept":true}');
    await writeFile(path.join(dir, 'racy.json'), '{"racy":true}');
    const past = new Date(Date.now() - 3_600_000);
    await utimes(path.join(dir, 'kept.json'), past, past);
    const now = `${BigInt(Date.now()) * 1_000_000n}`;
    const files: AheadFile[] = [
      { path: path.join(dir, 'empty.json') },
      { path: path.join(dir, 'kept.json'), unchanged: { identity: await identity(path.join(dir, 'kept.json')), beforeNs: now } },
      // Its stat matches, but it was modified after the time before which a stat is trusted.
      { path: path.join(dir, 'racy.json'), unchanged: { identity: await identity(path.join(dir, 'racy.json')), beforeNs: '0' } },
      { path: path.join(dir, 'changed.json'), unchanged: { identity: '1:2:3:4', beforeNs: now } },
      { path: path.join(dir, 'missing.json') },
      ...many.map((file) => ({ path: file })),
    ];
    await writeFile(path.join(dir, 'changed.json'), '{"changed":true}');
    const ahead = readAhead(files);
    try {
      assert.equal(ahead.take(path.join(dir, 'kept.json')), undefined, 'not the next file: the caller reads it itself');
      const empty = ahead.take(files[0]!.path)!;
      assert.deepEqual([empty.bytes?.length, empty.sha256], [0, createHash('sha256').update('').digest('hex')]);
      const kept = ahead.take(files[1]!.path)!;
      assert.deepEqual(kept, { identity: files[1]!.unchanged!.identity }, 'unchanged: its stat only');
      for (const file of files.slice(2, 4)) {
        const read = ahead.take(file.path)!;
        const bytes = await readFile(file.path);
        assert.equal(read.identity, await identity(file.path), file.path);
        assert.ok(read.bytes?.equals(bytes), file.path);
        assert.equal(read.sha256, createHash('sha256').update(bytes).digest('hex'));
      }
      assert.deepEqual(ahead.take(files[4]!.path), { identity: undefined, error: 'ENOENT' });
      for (const [i, file] of many.entries()) assert.equal(ahead.take(file)!.bytes!.toString(), `{"n":${i}}`, file);
      assert.equal(ahead.take(path.join(dir, 'after-the-last.json')), undefined);
    } finally {
      await ahead.close();
    }
  });

  test('a load read ahead gives the catalog, the cache and the problems a load in place gives', async () => {
    const store = path.join(work, 'store');
    await copySampleStore(store, { releases: true });
    // Dated back, out of the racy window, so that a warm cache reads only the file that changed.
    const dateBack = async (files: string[]) => {
      const past = new Date(Date.now() - 3_600_000);
      for (const file of files) await utimes(file, past, past);
    };
    await dateBack((await readdir(store, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name)));
    const load = async (cacheFile: string | undefined, readAheadFrom: number) => {
      const cache = cacheFile === undefined ? undefined : await openLoadCache(cacheFile, store, LOADER_FINGERPRINT);
      const catalog = await loadCatalog(store, { cache, readAheadFrom });
      await cache?.save();
      return { catalog, read: cache?.stats.read.release };
    };
    const inPlace = await load(undefined, Number.POSITIVE_INFINITY);
    assert.deepEqual(await load(undefined, 0), inPlace, 'without a cache');
    const changed = path.join(store, 'agent-as-code', '1.12.2.json');
    for (const [name, from] of [
      ['ahead', 0],
      ['in place', Number.POSITIVE_INFINITY],
    ] as const) {
      const cacheFile = path.join(work, `${name}.cache`);
      assert.deepEqual(await load(cacheFile, from), { ...inPlace, read: 10 }, `${name}: a cold cache`);
      // A file changed since: read again; the others from the cache.
      await writeFile(changed, `${await readFile(changed, 'utf8')}\n`);
      await dateBack([changed]);
      const warm = await load(cacheFile, from);
      assert.equal(warm.read, 1, `${name}: only the file that changed is read`);
      assert.deepEqual(warm.catalog, inPlace.catalog, `${name}: a warm cache`);
    }
    await writeFile(path.join(store, 'agent-as-code', '1.12.9.json'), '{ not json');
    const problems = async (from: number) => (await loadCatalog(store, { readAheadFrom: from }).catch((error: unknown) => error)) as LoadError;
    assert.ok((await problems(0)) instanceof LoadError);
    assert.deepEqual((await problems(0)).problems, (await problems(Number.POSITIVE_INFINITY)).problems);
    await rm(path.join(store, 'agent-as-code', '1.12.9.json'));
  });
});
