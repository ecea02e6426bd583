// Incremental builds: a builder that keeps what it loaded and rendered (the sidecar's build thread),
// and one-off builds that keep it beside the site (`mirror build`: the load cache and the render
// memo file), publish, after any sequence of changes to the store, the very bytes a fresh full
// build of the same store publishes; and a render with a memo equals one without, whatever changed
// in between.
import assert from 'node:assert/strict';
import { cp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCacheFile } from '../generator/load/cache.ts';
import { loadCatalog } from '../generator/load/index.ts';
import { loadTemplates } from '../generator/load/templates.ts';
import { build, createBuildMemory } from '../generator/pipeline.ts';
import { currentBuild } from '../generator/publish/local-dir.ts';
import { renderMemoFile } from '../generator/publish/render-memo-file.ts';
import { render } from '../generator/render/index.ts';
import { createRecordMemo } from '../generator/render/memo.ts';
import { recordOf, type BuiltFile, type WrittenFile } from '../generator/render/site-file.ts';
import { mulberry32 } from '../scripts/bench/random.ts';
import { copySampleStore, removeDir, tempDir } from './helpers/store.ts';

let work: string;
before(async () => {
  work = await tempDir('mirror-incremental-');
});
after(async () => {
  await removeDir(work);
});

/** Every file of the build a site path points at, relative path → bytes. */
async function publishedFiles(site: string): Promise<Map<string, Buffer>> {
  const build = await currentBuild(site);
  assert.ok(build, `${site} has a build`);
  const entries = await readdir(build, { recursive: true, withFileTypes: true });
  const files = new Map<string, Buffer>();
  for (const entry of entries.filter((entry) => entry.isFile()).sort((a, b) => (a.parentPath + a.name < b.parentPath + b.name ? -1 : 1))) {
    const file = path.join(entry.parentPath, entry.name);
    files.set(path.relative(build, file), await readFile(file));
  }
  return files;
}

function assertSameSite(actual: Map<string, Buffer>, expected: Map<string, Buffer>, step: string): void {
  assert.deepEqual([...actual.keys()], [...expected.keys()], `${step}: the same files`);
  for (const [key, bytes] of expected) assert.ok(actual.get(key)!.equals(bytes), `${step}: ${key} has the same bytes`);
}

/** The store's release files, by product; the registry is not a product. */
async function releaseFiles(store: string): Promise<string[]> {
  const files: string[] = [];
  for (const product of (await readdir(store, { withFileTypes: true })).filter((entry) => entry.isDirectory() && entry.name !== 'registry')) {
    for (const name of (await readdir(path.join(store, product.name))).sort()) {
      if (name !== 'product.json') files.push(path.join(store, product.name, name));
    }
  }
  return files.sort();
}

type Change = (store: string, step: number, pick: <T>(items: T[]) => T) => Promise<string>;

/** A release copied under a new patch version: every mention of the version (file names, blob keys, package fields) follows. */
const addRelease: Change = async (store, step, pick) => {
  const source = pick(await releaseFiles(store));
  const version = path.basename(source, '.json');
  const [, major, minor, patch, rest] = /^(\d+)\.(\d+)\.(\d+)(.*)$/.exec(version)!;
  const next = `${major}.${minor}.${Number(patch) + 100 + step}${rest}`;
  const text = (await readFile(source, 'utf8')).replaceAll(version, next);
  await writeFile(path.join(path.dirname(source), `${next}.json`), text);
  return `add ${path.basename(path.dirname(source))} ${next}`;
};

const yankOrRestore: Change = async (store, _step, pick) => {
  const file = pick(await releaseFiles(store));
  const data = JSON.parse(await readFile(file, 'utf8')) as { status: string };
  data.status = data.status === 'active' ? 'yanked' : 'active';
  await writeFile(file, `${JSON.stringify(data, null, 2)}\n`);
  return `${data.status === 'yanked' ? 'yank' : 'restore'} ${path.relative(store, file)}`;
};

/** Same size, other bytes: only the stat's times and the content tell. */
const redate: Change = async (store, step, pick) => {
  const file = pick(await releaseFiles(store));
  const text = await readFile(file, 'utf8');
  await writeFile(file, text.replace(/"published_at": "(\d{4})-(\d\d)-(\d\d)T/, (_all, year: string, month: string) => `"published_at": "${year}-${month}-${String((step % 27) + 1).padStart(2, '0')}T`));
  return `redate ${path.relative(store, file)}`;
};

const removeRelease: Change = async (store, _step, pick) => {
  const files = await releaseFiles(store);
  // Keep one release a product: a product's listing of nothing is covered by the loader's tests.
  const counts = new Map<string, number>();
  for (const file of files) counts.set(path.dirname(file), (counts.get(path.dirname(file)) ?? 0) + 1);
  const removable = files.filter((file) => counts.get(path.dirname(file))! > 1);
  if (removable.length === 0) return 'nothing to remove';
  const file = pick(removable);
  await rm(file);
  return `remove ${path.relative(store, file)}`;
};

const retitleProduct: Change = async (store, step, pick) => {
  const product = pick((await releaseFiles(store)).map((file) => path.dirname(file)));
  const file = path.join(product, 'product.json');
  const data = JSON.parse(await readFile(file, 'utf8')) as { title: string };
  data.title = `${data.title.replace(/ \(\d+\)$/, '')} (${step})`;
  await writeFile(file, `${JSON.stringify(data, null, 2)}\n`);
  return `retitle ${path.basename(product)}`;
};

const retitleSite: Change = async (store, step) => {
  await writeFile(path.join(store, 'mirror.json'), `${JSON.stringify({ title: `Release Mirror ${step}`, base_url: '' }, null, 2)}\n`);
  return 'retitle the site';
};

/** A second binary product: a copy of agent-as-code under another name, keeping its file prefix. */
const addProduct: Change = async (store, step) => {
  const name = `copy-${step}`;
  await cp(path.join(store, 'agent-as-code'), path.join(store, name), { recursive: true });
  const file = path.join(store, name, 'product.json');
  const data = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  await writeFile(file, `${JSON.stringify({ ...data, name, title: `Copy ${step}`, file_prefix: 'agent_as_code' }, null, 2)}\n`);
  // Blob keys are the store's, one artifact each: the copy's go under its own name.
  for (const release of await readdir(path.join(store, name))) {
    if (release === 'product.json') continue;
    const text = await readFile(path.join(store, name, release), 'utf8');
    await writeFile(path.join(store, name, release), text.replaceAll('"blob": "', `"blob": "${name}/`));
  }
  return `add product ${name}`;
};

const removeProduct: Change = async (store, _step, pick) => {
  const copies = (await readdir(store)).filter((name) => name.startsWith('copy-'));
  if (copies.length === 0) return 'no product to remove';
  const name = pick(copies);
  await rm(path.join(store, name), { recursive: true });
  return `remove product ${name}`;
};

/** Another process wrote garbage where the load cache was: the next build loads everything. */
const damageCache: Change = async (_store, _step, _pick) => {
  await writeFile(loadCacheFile(incrementalSite), '{"format":1}\nnot json\n');
  await writeFile(loadCacheFile(oneOffSite), '{"format":1}\nnot json\n');
  return 'damage the load caches';
};

/** A release added, and the builder's site built by another process (without the builder's memory): the builder's next build takes from that one. */
const buildElsewhere: Change = async (store, step, pick) => {
  await addRelease(store, step, pick);
  await build({ releasesDir: store, site: incrementalSite });
  return 'another process builds the site';
};

/**
 * The render memo file damaged: a line cut short, another unit's line given a wrong file hash (a
 * build the site no longer serves), and a line of garbage. Those units are rendered again.
 */
const damageRenderMemo: Change = async (_store, _step, pick) => {
  const lines = (await readFile(renderMemoFile(oneOffSite), 'utf8')).split('\n');
  const units = lines.slice(1).filter((line) => line !== '');
  const cut = pick(units);
  const rehashed = pick(units);
  const damaged = lines.map((line) => (line === cut ? line.slice(0, Math.floor(line.length / 2)) : line === rehashed ? line.replace(/"sha256":"[0-9a-f]{4}/, '"sha256":"0000') : line));
  damaged.splice(2, 0, 'not\ta\tunit');
  await writeFile(renderMemoFile(oneOffSite), damaged.join('\n'));
  return 'damage the render memo';
};

let incrementalSite: string;
let oneOffSite: string;

describe('a builder that keeps its last build', () => {
  test('publishes the bytes of a fresh full build after every step of random changes', async () => {
    const store = path.join(work, 'store');
    await copySampleStore(store, { releases: true });
    incrementalSite = path.join(work, 'incremental', 'site');
    oneOffSite = path.join(work, 'one-off', 'site');
    const memory = createBuildMemory();
    const random = mulberry32(18);
    const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]!;
    const changes: [Change, number][] = [
      [addRelease, 5],
      [yankOrRestore, 3],
      [redate, 3],
      [removeRelease, 3],
      [retitleProduct, 1],
      [retitleSite, 1],
      [addProduct, 1],
      [removeProduct, 1],
      [damageCache, 1],
      [damageRenderMemo, 1],
      [buildElsewhere, 1],
    ];
    const weighted = changes.flatMap(([change, weight]) => Array<Change>(weight).fill(change));
    // The one-off builds write through the writer thread from the first file; the fresh ones, in place.
    const threaded = { threadAfter: 0 };
    await build({ releasesDir: store, site: incrementalSite }, memory);
    await build({ releasesDir: store, site: oneOffSite, writing: threaded });
    let reused = 0;
    let kept = 0;
    let memoized = 0;
    for (let step = 1; step <= 30; step++) {
      // Some steps change two things between builds.
      const done = [await pick(weighted)(store, step, pick)];
      if (random() < 0.3) done.push(await pick(weighted)(store, step + 1000, pick));
      // Half the time the store's files are dated back, out of the racy window, as a store in git is.
      if (random() < 0.5) {
        const past = new Date(Date.now() - 3_600_000 - step * 1000);
        for (const file of await releaseFiles(store)) await utimes(file, past, past);
      }
      const report = await build({ releasesDir: store, site: incrementalSite }, memory);
      reused += report.load.files.release - report.load.read.release;
      kept += report.units!.units - report.units!.rendered;
      const oneOff = await build({ releasesDir: store, site: oneOffSite, writing: threaded });
      memoized += oneOff.units!.units - oneOff.units!.rendered;
      const fresh = path.join(work, `fresh-${step}`, 'site');
      await build({ releasesDir: store, site: fresh, incremental: false });
      const expected = await publishedFiles(fresh);
      assertSameSite(await publishedFiles(incrementalSite), expected, `step ${step} (${done.join(', ')})`);
      assertSameSite(await publishedFiles(oneOffSite), expected, `step ${step} (${done.join(', ')}), one-off builds`);
      await rm(path.dirname(fresh), { recursive: true });
    }
    // The builder did reuse what it kept: a test of a builder that loads everything proves nothing.
    assert.ok(reused > 0, 'release files came from the kept load');
    assert.ok(kept > 0, 'units came from the memory');
    assert.ok(memoized > 0, 'units came from the render memo file');
  });
});

describe('a render with a memo', () => {
  test('renders again only the units a change touches, and equals a render without', async () => {
    const store = path.join(work, 'memo-store');
    await copySampleStore(store, { releases: true });
    const templates = await loadTemplates();
    const memo = createRecordMemo();
    memo.from('build-1');
    const full = render(await loadCatalog(store), templates, memo);
    const first = memo.finish();
    assert.ok(first.rendered === first.units && first.units > 5, `every unit rendered the first time: ${JSON.stringify(first)}`);
    // Not published yet: its files are in no build, so none is given back.
    memo.from('build-1');
    render(await loadCatalog(store), templates, memo);
    assert.equal(memo.finish().rendered, first.units, 'nothing given back before the render is published');
    memo.publishedIn('build-1');

    memo.from('build-1');
    render(await loadCatalog(store), templates, memo);
    assert.equal(memo.finish().rendered, 0, 'nothing rendered again when nothing changed');
    memo.publishedIn('build-1');

    await addRelease(store, 1, (items) => items.find((file) => String(file).endsWith(path.join('agent-as-code', '1.12.2.json')))!);
    const catalog = await loadCatalog(store);
    memo.from('build-1');
    const incremental = render(catalog, templates, memo);
    const stats = memo.finish();
    // The product's listing, the new release's minor and its install script, formula and Scoop
    // manifest; nothing of the other products.
    assert.equal(stats.rendered, 5, `units rendered after one release was added: ${JSON.stringify(stats)}`);
    assert.deepEqual(records(incremental), records(render(catalog, templates)));
    memo.publishedIn('build-2');

    // Another build (another process's) holds the files whose hashes it has: the units of the others are rendered again.
    const held = new Map(records(full).files.map((file) => [file.key, file.sha256]));
    memo.from('build-0', (key) => held.get(key));
    render(catalog, templates, memo);
    const other = memo.finish();
    assert.ok(other.rendered >= 5 && other.rendered < other.units, `units not in the other build rendered again: ${JSON.stringify(other)}`);
    memo.from('build-9');
    render(catalog, templates, memo);
    assert.equal(memo.finish().rendered, other.units, 'a build of unknown files gives nothing back');

    // A render that published nothing (a rehearsal) is adopted by a build that has every one of its files unchanged, and only then.
    const now = new Map(records(render(catalog, templates)).files.map((file) => [file.key, file.sha256]));
    const [someKey] = now.keys();
    assert.equal(memo.adopt('build-8', (key) => (key === someKey ? 'other' : now.get(key))), false, 'one file differs');
    assert.equal(memo.holds('build-8'), false);
    assert.equal(memo.adopt('build-8', (key) => now.get(key)), true);
    assert.equal(memo.holds('build-8'), true);
    memo.from('build-8');
    render(catalog, templates, memo);
    assert.equal(memo.finish().rendered, 0, 'the adopted build gives back every unit, no hashes asked');
    memo.publishedIn('build-9');

    // A template change renders again every page that uses it, and equals a fresh render.
    const changed = { ...templates, minor: `${templates['minor']}<!-- changed -->` };
    memo.from('build-9');
    const retemplated = render(catalog, changed, memo);
    assert.ok(memo.finish().rendered > 1, 'a template change renders the units again');
    assert.deepEqual(records(retemplated), records(render(catalog, changed)));
  });
});

/** A site's files as a memo keeps them: their records, with SHA-256 and size. */
function records<T extends { files: BuiltFile[] }>(site: T): T & { files: WrittenFile[] } {
  return { ...site, files: site.files.map(recordOf) };
}

