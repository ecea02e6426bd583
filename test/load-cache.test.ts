// The load cache: a load that reuses the last build's parsed files gives the catalog, the site and
// the problems a full load gives, whatever happened to the store or to the cache in between.
import assert from 'node:assert/strict';
import { readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { after, before, describe, test } from 'node:test';
import { loadCacheFile, openLoadCache, unchangedSince, type LoadCacheMemory } from '../generator/load/cache.ts';
import { LOADER_FINGERPRINT, LoadError, loadCatalog } from '../generator/load/index.ts';
import type { Catalog } from '../generator/model/catalog.ts';
import { build } from '../generator/pipeline.ts';
import { currentBuild } from '../generator/publish/local-dir.ts';
import { agentArtifact, binaryArtifact, copySampleStore, release, removeDir, runCli, tempDir, writeJson } from './helpers/store.ts';
import { mulberry32 } from '../scripts/bench/random.ts';

let work: string;
before(async () => {
  work = await tempDir('mirror-load-cache-');
});
after(async () => {
  await removeDir(work);
});

/** A copy of the sample store, its files dated an hour back: older than any racy window, as a store in git is. */
async function sampleStore(name: string): Promise<string> {
  const store = path.join(work, name);
  await copySampleStore(store, { releases: true });
  await age(store);
  return store;
}

async function age(store: string): Promise<void> {
  for (const file of await storeFiles(store)) await ageFile(file);
}

/** Dates the file an hour back (which changes its ctime to now: its cached stat no longer matches). */
async function ageFile(file: string): Promise<void> {
  const past = new Date(Date.now() - 3_600_000);
  await utimes(file, past, past);
}

async function storeFiles(store: string): Promise<string[]> {
  const entries = await readdir(store, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name)).sort();
}

/** A load through the cache in `cacheFile`, saved afterwards as a successful build saves it. */
async function cachedLoad(store: string, cacheFile: string, memory?: LoadCacheMemory): Promise<{ catalog: Catalog; read: number; files: number; settingsRead: number }> {
  const cache = await openLoadCache(cacheFile, store, LOADER_FINGERPRINT, memory);
  const catalog = await loadCatalog(store, { cache });
  await cache.save();
  return { catalog, read: cache.stats.read.release, files: cache.stats.files.release, settingsRead: cache.stats.read.settings };
}

async function problemsOf(load: Promise<unknown>): Promise<LoadError['problems']> {
  const error = await load.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof LoadError, `expected a LoadError, got ${String(error)}`);
  return error.problems;
}

/** Every file of the current build of `site`, by path. */
async function siteTree(site: string): Promise<Map<string, Buffer>> {
  const dir = (await currentBuild(site))!;
  const files = new Map<string, Buffer>();
  for (const file of await storeFiles(dir)) files.set(path.relative(dir, file), await readFile(file));
  return files;
}

function assertSameTree(actual: Map<string, Buffer>, expected: Map<string, Buffer>, why: string): void {
  assert.deepEqual([...actual.keys()], [...expected.keys()], why);
  for (const [file, bytes] of expected) assert.ok(actual.get(file)!.equals(bytes), `${why}: ${file} differs`);
}


interface ProductDir {
  name: string;
  layout: 'binary' | 'agent';
  prefix: string;
  added: boolean;
}

describe('load cache', () => {
  test('after random changes to the store, a cached load equals a full load and the built site is byte-identical', async (t) => {
    const seed = Number(process.env.LOAD_CACHE_SEED ?? 1801);
    const steps = Number(process.env.LOAD_CACHE_STEPS ?? 24);
    t.diagnostic(`seed ${seed}, ${steps} steps`);
    const next = mulberry32(seed);
    const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]!;
    const store = await sampleStore('random');
    const cacheFile = path.join(work, 'random.cache');
    const cachedSite = path.join(work, 'random-cached', 'site');
    const freshSite = path.join(work, 'random-fresh', 'site');

    const products = async (): Promise<ProductDir[]> => {
      const found: ProductDir[] = [];
      for (const entry of await readdir(store, { withFileTypes: true })) {
        if (!entry.isDirectory() || entry.name === 'registry') continue;
        const settings = JSON.parse(await readFile(path.join(store, entry.name, 'product.json'), 'utf8')) as { layout: 'binary' | 'agent'; file_prefix?: string };
        found.push({ name: entry.name, layout: settings.layout, prefix: settings.file_prefix ?? entry.name.replaceAll('-', '_'), added: entry.name.startsWith('extra-') });
      }
      return found.sort((a, b) => a.name.localeCompare(b.name));
    };
    const releaseFiles = async (product: string) => (await readdir(path.join(store, product))).filter((name) => name !== 'product.json').map((name) => path.join(store, product, name));
    let counter = 0;
    const newRelease = (product: ProductDir) => {
      const version = `7.${counter++}.0`;
      const artifacts = product.layout === 'agent' ? [agentArtifact(version, 'windows', 'amd64')] : [binaryArtifact(product.prefix, version, 'linux', 'amd64'), binaryArtifact(product.prefix, version, 'darwin', 'arm64')];
      return { version, body: release(version, artifacts, { published_at: `2025-0${1 + (counter % 9)}-01T00:00:00Z` }) };
    };
    const editRelease = async (edit: (data: Record<string, unknown>) => void) => {
      const file = pick(await releaseFiles(pick(await products()).name));
      const data = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      edit(data);
      await writeJson(file, data);
      return path.relative(store, file);
    };

    const changes: Record<string, () => Promise<string>> = {
      'add a release': async () => {
        const product = pick(await products());
        const { version, body } = newRelease(product);
        await writeJson(path.join(store, product.name, `${version}.json`), body);
        return `${product.name}/${version}.json`;
      },
      "edit a release's fields": () =>
        editRelease((data) => {
          data.notes_url = `https://example.com/notes/${counter++}`;
          data.channels = ['latest'];
        }),
      'yank a release': () =>
        editRelease((data) => {
          data.status = 'yanked';
        }),
      'remove a release': async () => {
        const candidates = [];
        for (const product of await products()) if ((await releaseFiles(product.name)).length > 1) candidates.push(...(await releaseFiles(product.name)));
        const file = pick(candidates);
        await rm(file);
        return path.relative(store, file);
      },
      'add a product': async () => {
        const product: ProductDir = { name: `extra-${counter++}`, layout: 'binary', prefix: '', added: true };
        product.prefix = product.name.replaceAll('-', '_');
        await writeJson(path.join(store, product.name, 'product.json'), { name: product.name, title: `Extra ${counter}`, layout: 'binary' });
        const { version, body } = newRelease(product);
        await writeJson(path.join(store, product.name, `${version}.json`), body);
        return product.name;
      },
      'remove a product': async () => {
        const added = (await products()).filter((product) => product.added);
        if (added.length === 0) return 'no added product to remove';
        const product = pick(added);
        await rm(path.join(store, product.name), { recursive: true });
        return product.name;
      },
      'edit mirror.json': async () => {
        await writeJson(path.join(store, 'mirror.json'), { title: `Releases ${counter++}`, base_url: pick(['', 'https://releases.example.com']) });
        return 'mirror.json';
      },
      'touch a file without changing it': async () => {
        const file = pick(await storeFiles(store));
        const now = new Date();
        await utimes(file, now, now);
        return path.relative(store, file);
      },
      'rewrite a release in place, same size and mtime': async () => {
        const file = pick(await releaseFiles(pick(await products()).name));
        const before = await stat(file);
        const text = await readFile(file, 'utf8');
        const match = /"published_at":\s*"(\d{4})/.exec(text)!;
        const year = match[1] === '2019' ? '2018' : '2019';
        const rewritten = text.replace(match[0], match[0].replace(match[1]!, year));
        assert.equal(rewritten.length, text.length);
        await writeFile(file, rewritten);
        // What a file system with a coarse clock shows: the write within the same tick keeps the mtime.
        await utimes(file, before.atime, before.mtime);
        return path.relative(store, file);
      },
    };

    await build({ releasesDir: store, site: cachedSite });
    for (let i = 0; i < steps; i++) {
      const name = pick(Object.keys(changes));
      const what = await changes[name]!();
      // Half the steps age the store again, so unchanged files are taken on their stat alone.
      if (next() < 0.5) await age(store);
      const why = `step ${i + 1} (seed ${seed}): ${name}: ${what}`;

      const fresh = await loadCatalog(store);
      const cached = await cachedLoad(store, cacheFile);
      assert.deepEqual(cached.catalog, fresh, why);

      const withCache = await build({ releasesDir: store, site: cachedSite });
      await build({ releasesDir: store, site: freshSite, incremental: false });
      assert.deepEqual(withCache.load.files, { release: withCache.releases, settings: withCache.products + 1 }, why);
      assertSameTree(await siteTree(cachedSite), await siteTree(freshSite), why);
    }
  });

  test('reads only the file that changed: none after no change, one after adding a release', async () => {
    const store = await sampleStore('count');
    const cacheFile = path.join(work, 'count.cache');
    const first = await cachedLoad(store, cacheFile);
    assert.equal(first.read, first.files);
    assert.equal(first.files, 10);

    const unchanged = await cachedLoad(store, cacheFile);
    assert.deepEqual({ read: unchanged.read, settingsRead: unchanged.settingsRead }, { read: 0, settingsRead: 0 });

    await writeJson(path.join(store, 'agent-as-code', '2.0.0.json'), release('2.0.0', [binaryArtifact('agent_as_code', '2.0.0', 'linux', 'amd64')]));
    const added = await cachedLoad(store, cacheFile);
    assert.deepEqual({ read: added.read, files: added.files, settingsRead: added.settingsRead }, { read: 1, files: 11, settingsRead: 0 });
    assert.deepEqual(added.catalog, await loadCatalog(store));
    // That save copied the lines before and after the new one from the file before, a run of them at
    // a time: a cache whose bytes differ from the lines' hashes would be read as no cache (11 read).
    // The new file, written within the racy window, is read again.
    const again = await cachedLoad(store, cacheFile);
    assert.deepEqual({ read: again.read, settingsRead: again.settingsRead }, { read: 1, settingsRead: 0 });
    assert.deepEqual(again.catalog, added.catalog);
  });

  test('a build counts the files it read and keeps the cache beside the site', async () => {
    const store = await sampleStore('build-count');
    const site = path.join(work, 'build-count-out', 'site');
    const first = await build({ releasesDir: store, site });
    assert.deepEqual(first.load.read, { release: 10, settings: 4 });
    await stat(loadCacheFile(site));
    const second = await build({ releasesDir: store, site });
    assert.deepEqual(second.load.read, { release: 0, settings: 0 });
    assert.deepEqual(second.load.files, { release: 10, settings: 4 });
  });

  test('a file rewritten within the racy window is hashed again, an older one is taken on its stat', () => {
    const loadedAt = 1_700_000_000_000_000_000n;
    const entry = { size: 10, mtimeNs: '', ctimeNs: '', ino: '7', sha256: 'x', value: {} };
    const statAt = (mtimeNs: bigint) => ({ size: 10n, mtimeNs, ctimeNs: mtimeNs, ino: 7n });
    const old = loadedAt - 5_000_000_000n;
    const recent = loadedAt - 1_000_000_000n;
    assert.equal(unchangedSince({ ...entry, mtimeNs: String(old), ctimeNs: String(old) }, statAt(old), loadedAt), true);
    assert.equal(unchangedSince({ ...entry, mtimeNs: String(recent), ctimeNs: String(recent) }, statAt(recent), loadedAt), false);
    assert.equal(unchangedSince({ ...entry, mtimeNs: String(old), ctimeNs: String(old), size: 11 }, statAt(old), loadedAt), false);
    assert.equal(unchangedSince({ ...entry, mtimeNs: String(old), ctimeNs: String(old + 1n) }, statAt(old), loadedAt), false);
  });

  test('a damaged, foreign or outdated cache means a full load with the same catalog', async () => {
    const store = await sampleStore('corrupt');
    const cacheFile = path.join(work, 'corrupt.cache');
    const fresh = await loadCatalog(store);
    await cachedLoad(store, cacheFile);
    const good = await readFile(cacheFile, 'utf8');
    const [header, body] = [good.slice(0, good.indexOf('\n')), good.slice(good.indexOf('\n') + 1)];
    const damaged: Record<string, string> = {
      truncated: good.slice(0, Math.floor(good.length / 2)),
      'header only': `${header}\n`,
      'another format version': `${header.replace(/"format":\d+,/, '"format":999,')}\n${body}`,
      'another loader': `${header.replace(/"loader":"[0-9a-f]+"/, `"loader":"${'0'.repeat(64)}"`)}\n${body}`,
      'another store': `${header.replace(/"store":"[^"]+"/, '"store":"/elsewhere"')}\n${body}`,
      'a changed body': `${header}\n${body.replace('"version":"1.12.2"', '"version":"1.12.9"')}`,
      garbage: '\u0000\u00ff garbage {',
      empty: '',
    };
    assert.notEqual(damaged['a changed body'], good);
    for (const [name, text] of Object.entries(damaged)) {
      await writeFile(cacheFile, text);
      const cache = await openLoadCache(cacheFile, store, LOADER_FINGERPRINT);
      const catalog = await loadCatalog(store, { cache });
      assert.equal(cache.stats.read.release, 10, `${name}: every release file read`);
      assert.deepEqual(catalog, fresh, name);
    }
    await rm(cacheFile);
    const missing = await cachedLoad(store, cacheFile);
    assert.equal(missing.read, 10);
    assert.deepEqual(missing.catalog, fresh);
  });

  test('releases added and removed between loads land where a full sort puts them, pre-releases included', async () => {
    const store = await sampleStore('sorted');
    const cacheFile = path.join(work, 'sorted.cache');
    const write = (version: string) => writeJson(path.join(store, 'agent-as-code', `${version}.json`), release(version, [binaryArtifact('agent_as_code', version, 'linux', 'amd64')]));
    for (let minor = 20; minor < 60; minor++) await write(`2.${minor}.0`);
    await age(store);
    // As the sidecar's build thread loads: the unchanged releases are the same objects as last time.
    const memory: LoadCacheMemory = {};
    const load = async () => {
      const cache = await openLoadCache(cacheFile, store, LOADER_FINGERPRINT, memory);
      const catalog = await loadCatalog(store, { cache });
      await cache.save();
      return { catalog, read: cache.stats.read.release };
    };
    await load();
    // Few enough of the product's releases to be inserted into the last sort rather than sorted anew.
    for (const version of ['2.40.1-rc.1', '2.40.1-rc.10', '2.40.1-rc.2', '0.0.1', '9.0.0']) await write(version);
    await rm(path.join(store, 'agent-as-code', '2.30.0.json'));
    const { catalog, read } = await load();
    assert.equal(read, 5);
    const versions = catalog.products.find((product) => product.name === 'agent-as-code')!.releases.map((release) => release.version);
    assert.deepEqual(versions, [...versions].sort(semver.compare));
    assert.ok(versions.indexOf('2.40.1-rc.2') < versions.indexOf('2.40.1-rc.10') && !versions.includes('2.30.0'));
    assert.deepEqual(catalog, await loadCatalog(store));
    // That save appended to the cache; its memory holds the appended lines, each with the racy window of the load that appended it.
    await writeJson(path.join(store, 'agent-as-code', '2.30.0.json'), release('2.30.0', [binaryArtifact('agent_as_code', '2.30.0', 'linux', 'amd64')]));
    const third = await load();
    assert.equal(third.read, 6, 'the new file, and the five written just before the last load, within its racy window');
    assert.deepEqual(third.catalog, await loadCatalog(store));
    const fourth = await load();
    assert.deepEqual(fourth.catalog, third.catalog);
  });

  test('a one-off cache is written in batches and lets go of its values once saved: a second save writes nothing', async () => {
    const store = await sampleStore('once');
    const cacheFile = path.join(work, 'once.cache');
    // More release files than a save writes at a time.
    for (let patch = 0; patch < 2100; patch++) {
      const version = `3.0.${patch}`;
      await writeJson(path.join(store, 'agent-as-code', `${version}.json`), release(version, [binaryArtifact('agent_as_code', version, 'linux', 'amd64')]));
    }
    await age(store);
    const first = await openLoadCache(cacheFile, store, LOADER_FINGERPRINT);
    const catalog = await loadCatalog(store, { cache: first });
    await first.save();
    const saved = await readFile(cacheFile);
    await first.save();
    assert.ok((await readFile(cacheFile)).equals(saved), 'the second save left the cache as the first wrote it');
    const again = await cachedLoad(store, cacheFile);
    assert.equal(again.read, 0, 'every file came from the cache');
    assert.ok(again.files > 2100);
    assert.deepEqual(again.catalog, catalog);
  });

  test('a cache replaced by another build while this one ran is written whole, not from the other file', async () => {
    const store = await sampleStore('replaced');
    const cacheFile = path.join(work, 'replaced.cache');
    await cachedLoad(store, cacheFile);
    const edited = path.join(store, 'mirror-agent', '1.1.0.json');
    await writeJson(edited, { ...(JSON.parse(await readFile(edited, 'utf8')) as object), notes_url: 'https://example.com/edited' });
    const past = new Date(Date.now() - 3_600_000);
    await utimes(edited, past, past);
    const ours = await openLoadCache(cacheFile, store, LOADER_FINGERPRINT);
    await loadCatalog(store, { cache: ours });
    // Meanwhile another build loads a store with one more release and saves its cache over ours.
    await writeJson(path.join(store, 'agent-as-code', '0.9.0.json'), release('0.9.0', [binaryArtifact('agent_as_code', '0.9.0', 'linux', 'amd64')]));
    await cachedLoad(store, cacheFile);
    await ours.save();
    assert.equal(ours.stats.read.release, 1);
    await rm(path.join(store, 'agent-as-code', '0.9.0.json'));
    const after = await cachedLoad(store, cacheFile);
    assert.deepEqual(after.catalog, await loadCatalog(store));
    assert.equal(after.read, 0, 'the saved cache holds every file this build loaded');
  });

  test('a file that became invalid is reported exactly as without the cache, and a failed build keeps the old cache', async () => {
    const store = await sampleStore('invalid');
    const site = path.join(work, 'invalid-out', 'site');
    const cacheFile = path.join(work, 'invalid.cache');
    await cachedLoad(store, cacheFile);
    await build({ releasesDir: store, site });
    const kept = await readFile(loadCacheFile(site));

    const releaseFile = path.join(store, 'agent-as-code', '1.12.2.json');
    const data = JSON.parse(await readFile(releaseFile, 'utf8')) as { artifacts: { sha256: string }[]; extra?: boolean };
    data.artifacts[1]!.sha256 = 'not hex';
    data.extra = true;
    await writeJson(releaseFile, data);
    // A cached release that is still valid itself but no longer fits its product's settings.
    const productFile = path.join(store, 'mirror-agent', 'product.json');
    const product = JSON.parse(await readFile(productFile, 'utf8')) as { file_prefix: string };
    product.file_prefix = 'renamed_agent';
    await writeJson(productFile, product);
    await writeFile(path.join(store, 'scalepad-agent', '1.8.2.json'), '{ "version": ');

    const expected = await problemsOf(loadCatalog(store));
    assert.ok(expected.some((problem) => problem.file === releaseFile && problem.path === 'artifacts[1].sha256'));
    assert.ok(expected.some((problem) => problem.file.endsWith(path.join('mirror-agent', '1.0.0.json')) && problem.path.endsWith('.filename')));
    assert.ok(expected.some((problem) => problem.file.endsWith('1.8.2.json') && problem.message.startsWith('not valid JSON')));
    const cache = await openLoadCache(cacheFile, store, LOADER_FINGERPRINT);
    assert.deepEqual(await problemsOf(loadCatalog(store, { cache })), expected);
    assert.ok(cache.stats.read.release < cache.stats.files.release, 'the unchanged files came from the cache');

    const withCache = await build({ releasesDir: store, site }).then(
      () => assert.fail('the build should fail'),
      (error: Error) => error.message,
    );
    const without = await build({ releasesDir: store, site, incremental: false }).then(
      () => assert.fail('the build should fail'),
      (error: Error) => error.message,
    );
    assert.equal(withCache, without);
    assert.ok((await readFile(loadCacheFile(site))).equals(kept), 'a failed build leaves the cache as it was');
  });

  for (const edited of ['1.1.0.json', '1.0.0.json']) {
    test(`a blob key given other content by a changed file is reported as a full load reports it (${edited} changed, the other use cached)`, async () => {
      const store = await sampleStore(`blob-keys-${edited}`);
      const cacheFile = path.join(work, `blob-keys-${edited}.cache`);
      await cachedLoad(store, cacheFile);
      // The changed file's first artifact takes the key of the other file's first artifact, with its own content.
      const [file, other] = [edited, edited === '1.1.0.json' ? '1.0.0.json' : '1.1.0.json'].map((name) => path.join(store, 'agent-as-code', name)) as [string, string];
      type Artifacts = { artifacts: { blob: string }[] };
      const data = JSON.parse(await readFile(file, 'utf8')) as Artifacts;
      data.artifacts[0]!.blob = (JSON.parse(await readFile(other, 'utf8')) as Artifacts).artifacts[0]!.blob;
      await writeJson(file, data);

      const expected = await problemsOf(loadCatalog(store));
      assert.equal(expected.length, 1, JSON.stringify(expected));
      // Reported at the later file, in the store's order: the changed one, or the cached one.
      assert.equal(expected[0]!.file, path.join(store, 'agent-as-code', '1.1.0.json'));
      assert.match(expected[0]!.message, /is also used by .*1\.0\.0\.json with other content$/);
      const cache = await openLoadCache(cacheFile, store, LOADER_FINGERPRINT);
      assert.deepEqual(await problemsOf(loadCatalog(store, { cache })), expected);
      assert.equal(cache.stats.read.release, 1, 'the other use came from the cache');
      // A failed load saves no cache: the next one reads the changed file again, and reports it again.
      const again = await openLoadCache(cacheFile, store, LOADER_FINGERPRINT);
      assert.deepEqual(await problemsOf(loadCatalog(store, { cache: again })), expected);
    });
  }

  test('a save that changes a few files appends them; a damaged or cut segment costs only its files, and the next save writes the cache whole', async () => {
    const store = await sampleStore('append');
    const cacheFile = path.join(work, 'append.cache');
    const fresh = async () => loadCatalog(store);
    await cachedLoad(store, cacheFile);
    const whole = await readFile(cacheFile);
    const added = path.join(store, 'agent-as-code', '2.0.0.json');
    await writeJson(added, release('2.0.0', [binaryArtifact('agent_as_code', '2.0.0', 'linux', 'amd64')]));
    await ageFile(added);
    assert.equal((await cachedLoad(store, cacheFile)).read, 1);
    const once = await readFile(cacheFile);
    assert.ok(once.length > whole.length && once.subarray(0, whole.length).equals(whole), 'the new file was appended');
    await rm(path.join(store, 'agent-as-code', '1.12.2.json'));
    const removed = await cachedLoad(store, cacheFile);
    assert.equal(removed.read, 0);
    const twice = await readFile(cacheFile);
    assert.ok(twice.length > once.length && twice.subarray(0, once.length).equals(once), 'the removal was appended');
    assert.match(twice.subarray(once.length).toString(), /"removed":\["agent-as-code\/1\.12\.2\.json"\]/);
    const steady = await cachedLoad(store, cacheFile);
    assert.equal(steady.read, 0, 'the appended segments are read back');
    assert.deepEqual(steady.catalog, await fresh());
    assert.ok((await readFile(cacheFile)).equals(twice), 'a load that changed nothing writes nothing');

    // The first segment's line for 2.0.0, changed: that segment and the next are not taken.
    const segment = once.subarray(whole.length).toString();
    // The cut line after an intact segment costs nothing; the save after it (which drops 1.12.2) cannot append after it.
    const damaged: Record<string, [bytes: Buffer, read: number]> = {
      'a changed segment': [Buffer.concat([whole, Buffer.from(segment.replace('"2.0.0"', '"2.0.9"')), twice.subarray(once.length)]), 1],
      'a cut segment': [twice.subarray(0, whole.length + Math.floor(segment.length / 2)), 1],
      'a cut line after the last segment': [Buffer.concat([once, Buffer.from('\n["agent-as-code/2.0.0.json",')]), 0],
    };
    for (const [name, [bytes, read]] of Object.entries(damaged)) {
      await writeFile(cacheFile, bytes);
      const load = await cachedLoad(store, cacheFile);
      assert.equal(load.read, read, `${name}: the files of the segments not taken read again, the rest from the cache`);
      assert.deepEqual(load.catalog, await fresh(), name);
      const rewritten = await readFile(cacheFile);
      assert.ok(!rewritten.subarray(0, whole.length).equals(whole), `${name}: written whole, not appended after the damage`);
      assert.equal((await cachedLoad(store, cacheFile)).read, 0, `${name}: the rewritten cache holds every file`);
    }
  });

  test('a long-lived loader that finds nothing changed since another process saved the cache keeps the file as read: its next load does not read it again', async () => {
    const store = await sampleStore('kept-as-read');
    const cacheFile = path.join(work, 'kept-as-read.cache');
    await cachedLoad(store, cacheFile);
    // A whole second, which utimes sets exactly, as the file's time throughout.
    const at = new Date(Math.floor(Date.now() / 1000) * 1000);
    await utimes(cacheFile, at, at);
    const memory: LoadCacheMemory = {};
    assert.equal((await cachedLoad(store, cacheFile, memory)).read, 0);
    // The same size and time, other bytes: a load that read the file again would find no cache in it.
    await writeFile(cacheFile, Buffer.alloc((await stat(cacheFile)).size, ' '), { flag: 'r+' });
    await utimes(cacheFile, at, at);
    assert.equal((await cachedLoad(store, cacheFile, memory)).read, 0);
    assert.ok((await cachedLoad(store, cacheFile)).read > 0, 'a load without the memory reads the file, and finds nothing');
  });

  for (const builder of ['one-off loads', 'a long-lived loader']) {
    test(`once appended segments would pass a quarter of the cache, a save writes it whole, without the lines they replaced (${builder})`, async () => {
      const store = await sampleStore(`compact-${builder.length}`);
      const cacheFile = path.join(work, `compact-${builder.length}.cache`);
      // A long-lived loader keeps where each line is in the file, as written whole or appended, and copies it from there.
      const memory: LoadCacheMemory | undefined = builder === 'a long-lived loader' ? {} : undefined;
      await cachedLoad(store, cacheFile, memory);
      // A file at a time in turn: a line appended for one is copied, from where it was appended, by the save that writes the cache whole.
      const files = (await storeFiles(store)).filter((file) => /\d\.json$/.test(file) && !file.includes(`${path.sep}registry${path.sep}`));
      const sizes: number[] = [];
      for (let edit = 0; edit < 12; edit++) {
        const file = files[edit % files.length]!;
        const data = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
        await writeJson(file, { ...data, notes_url: `https://example.com/notes/${edit}` });
        await ageFile(file);
        const load = await cachedLoad(store, cacheFile, memory);
        assert.equal(load.read, 1);
        assert.deepEqual(load.catalog, await loadCatalog(store));
        sizes.push((await stat(cacheFile)).size);
      }
      const shrank = sizes.findIndex((size, i) => i > 0 && size < sizes[i - 1]!);
      assert.ok(shrank > 1, `appended at first, then written whole: ${sizes.join(', ')}`);
      // The file as a fresh process reads it: every line checks out.
      assert.equal((await cachedLoad(store, cacheFile)).read, 0);
      if (memory) assert.equal((await cachedLoad(store, cacheFile, memory)).read, 0);
    });
  }

  test('`mirror build` says how many release files it read', async () => {
    const store = await sampleStore('cli');
    const env = { MIRROR_DATA_DIR: path.join(work, 'cli-data') };
    const out = path.join(work, 'cli-out', 'site');
    const first = await runCli(['build', '--releases', store, '--out', out], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^built 3 products, 10 releases: [\d,]+ site files \(\d+ written, \d+ unchanged\)/);
    assert.match(first.stdout, /^read 10 release files and 4 settings files$/m);
    const second = await runCli(['build', '--releases', store, '--out', out], env);
    assert.match(second.stdout, /^read 0 of 10 release files and 0 of 4 settings files; the load cache had the rest$/m);
  });
});
