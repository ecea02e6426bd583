// The render memo `mirror build` keeps beside the site: a rebuild renders only the units a change
// touches; a memo of another build, of other code, or left by a failed build is never used.
import assert from 'node:assert/strict';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build, createBuildMemory } from '../generator/pipeline.ts';
import { currentBuild } from '../generator/publish/local-dir.ts';
import { openRenderMemoFile, renderMemoFile } from '../generator/publish/render-memo-file.ts';
import { pathHash } from '../generator/publish/route-shards.ts';
import { keysDir, loadSigning } from '../generator/trust/index.ts';
import { createKey } from '../generator/trust/keyring.ts';
import { PRODUCT, shapeOf, writeRelease, writeSyntheticStore } from '../scripts/bench/synthetic-store.ts';
import { copySampleStore, removeDir, tempDir } from './helpers/store.ts';

let work: string;
before(async () => {
  work = await tempDir('mirror-render-memo-');
});
after(async () => {
  await removeDir(work);
});

async function sampleStore(name: string): Promise<string> {
  const store = path.join(work, name);
  await copySampleStore(store, { releases: true });
  return store;
}

/** A patch release of agent-as-code 1.12, copied from 1.12.2 under a new version. */
async function addPatch(store: string, patch: number): Promise<void> {
  const product = path.join(store, 'agent-as-code');
  const text = await readFile(path.join(product, '1.12.2.json'), 'utf8');
  await writeFile(path.join(product, `1.12.${patch}.json`), text.replaceAll('1.12.2', `1.12.${patch}`));
}

/** Every public file of the build a site serves, by key. */
async function servedFiles(site: string): Promise<Map<string, Buffer>> {
  const root = path.join((await currentBuild(site))!, 'public');
  const files = new Map<string, Buffer>();
  for (const entry of (await readdir(root, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile())) {
    const file = path.join(entry.parentPath, entry.name);
    files.set(path.relative(root, file), await readFile(file));
  }
  return files;
}

/** The route table of the build a site serves. */
async function servedRoutes(site: string): Promise<string> {
  return readFile(path.join((await currentBuild(site))!, 'routes.json'), 'utf8');
}

describe('the render memo of a one-off build', () => {
  test('a rebuild renders only the units the new release touches, and publishes what a fresh build does', async () => {
    const store = await sampleStore('store');
    const site = path.join(work, 'site', 'site');
    const first = await build({ releasesDir: store, site });
    assert.equal(first.units!.rendered, first.units!.units, 'the first build renders every unit');
    const unchanged = await build({ releasesDir: store, site });
    assert.equal(unchanged.units!.rendered, 0, 'nothing changed: nothing rendered');

    await addPatch(store, 7);
    const rebuilt = await build({ releasesDir: store, site });
    // The product's listing, the 1.12 minor, and the product's install script, formula and Scoop manifest.
    assert.equal(rebuilt.units!.rendered, 5, `units rendered: ${JSON.stringify(rebuilt.units)}`);
    const fresh = path.join(work, 'fresh', 'site');
    await build({ releasesDir: store, site: fresh, incremental: false });
    assert.deepEqual(await servedFiles(site), await servedFiles(fresh));
    assert.equal(await servedRoutes(site), await servedRoutes(fresh), 'the same route table');
  });

  test('the CloudFront check of a rebuild finds, from the entries the memo kept, what a fresh build finds', async () => {
    const store = await sampleStore('store-kvs');
    const site = path.join(work, 'site-kvs', 'site');
    await build({ releasesDir: store, site });
    // An artifact served from a blob key of 1,024 characters: its KeyValueStore value is one byte over the quota.
    const file = path.join(store, 'agent-as-code', '1.12.2.json');
    const release = JSON.parse(await readFile(file, 'utf8')) as { artifacts: { blob: string }[] };
    release.artifacts[0]!.blob = [...Array.from({ length: 10 }, () => 'x'.repeat(100)), 'y'.repeat(14)].join('/');
    await writeFile(file, JSON.stringify(release));
    const rebuilt = await build({ releasesDir: store, site });
    assert.ok(rebuilt.units!.rendered < rebuilt.units!.units);
    assert.match(rebuilt.cloudFrontProblem ?? '', /the value of `\/binary\/releases\/agent-as-code\/1\/12\/[^`]+` is 1025 bytes, over 1024/);
    const fresh = await build({ releasesDir: store, site: path.join(work, 'fresh-kvs', 'site'), incremental: false });
    assert.equal(rebuilt.cloudFrontProblem, fresh.cloudFrontProblem);
    const fromMemo = await build({ releasesDir: store, site });
    assert.equal(fromMemo.units!.rendered, 0);
    assert.equal(fromMemo.cloudFrontProblem, fresh.cloudFrontProblem, 'every unit from the memo');
  });

  test('a signed rebuild from the memo publishes what a fresh signed build does, the snapshot apart', async () => {
    const store = await sampleStore('store-signed');
    const dataDir = path.join(work, 'data-signed');
    await createKey(keysDir(dataDir), { name: 'Memo' }, new Date('2024-01-01T00:00:00Z'));
    const now = new Date('2025-06-01T00:00:00Z');
    const signing = async () => ({ ...(await loadSigning(dataDir, {})), now: () => now });
    const site = path.join(work, 'site-signed', 'site');
    await build({ releasesDir: store, site, signing: await signing() });
    await addPatch(store, 9);
    const rebuilt = await build({ releasesDir: store, site, signing: await signing() });
    assert.ok(rebuilt.units!.rendered < rebuilt.units!.units, `units: ${JSON.stringify(rebuilt.units)}`);
    assert.equal(rebuilt.signing.signaturesMade, 1, 'the new release\'s checksum file');
    const fresh = path.join(work, 'fresh-signed', 'site');
    await build({ releasesDir: store, site: fresh, incremental: false, signing: await signing() });
    const [served, expected] = [await servedFiles(site), await servedFiles(fresh)];
    for (const files of [served, expected]) files.delete('.well-known/mirror/snapshot.json');
    assert.deepEqual(served, expected);
    assert.equal(await servedRoutes(site), await servedRoutes(fresh), 'the same route table');
  });

  test('is not used once another build was swapped in, or by other code', async () => {
    const store = await sampleStore('store-2');
    const site = path.join(work, 'site-2', 'site');
    await build({ releasesDir: store, site });
    // A builder with its own memory (the sidecar's build thread) publishes the next build.
    await addPatch(store, 8);
    await build({ releasesDir: store, site }, createBuildMemory());
    const afterOther = await build({ releasesDir: store, site });
    assert.equal(afterOther.units!.rendered, afterOther.units!.units, 'the memo describes a build the site no longer serves');

    const memo = renderMemoFile(site);
    const [header, ...units] = (await readFile(memo, 'utf8')).split('\n');
    const other = { ...(JSON.parse(header!) as { code: string }), code: 'other code' };
    await writeFile(memo, [JSON.stringify(other), ...units].join('\n'));
    const afterCode = await build({ releasesDir: store, site });
    assert.equal(afterCode.units!.rendered, afterCode.units!.units, 'a memo of other code');
    assert.equal((await build({ releasesDir: store, site })).units!.rendered, 0, 'the memo written since is used');
  });

  test('a failed build leaves the memo as it was, and no file of its own; a killed build\'s is removed by the next', async () => {
    const store = await sampleStore('store-3');
    const site = path.join(work, 'site-3', 'site');
    const memo = renderMemoFile(site);
    await build({ releasesDir: store, site });
    await writeFile(`${memo}.4242.0123456789ab.tmp`, 'the next memo of a build killed as it rendered');
    await build({ releasesDir: store, site });
    const before = await readFile(memo);
    await writeFile(path.join(store, 'agent-as-code', '1.12.9.json'), '{ not json');
    await assert.rejects(build({ releasesDir: store, site }), /1\.12\.9\.json/);
    assert.ok((await readFile(memo)).equals(before));
    assert.deepEqual((await readdir(path.dirname(site))).filter((name) => name.includes('render-memo')), [path.basename(memo)]);
  });

  test('a file lost from the served build fails the rebuild that would link it, by name, in place and by the writer thread', async () => {
    for (const [name, writing] of [
      ['in place', undefined],
      ['threaded', { threadAfter: 0 }],
    ] as const) {
      const store = await sampleStore(`store-lost-${name}`);
      const site = path.join(work, `site-lost-${name}`, 'site');
      await build({ releasesDir: store, site, writing });
      const served = (await currentBuild(site))!;
      const lost = 'binary/releases/agent-as-code/1/12/index.json';
      await rm(path.join(served, 'public', lost));
      await assert.rejects(build({ releasesDir: store, site, writing }), new RegExp(`The site file ${lost} was not rendered again \\(the render memo had it\\), but the current build lost it: ENOENT`), name);
      assert.equal(await currentBuild(site), served, `${name}: the site still serves the build it served`);
      // Without the memo, every unit is rendered again.
      await rm(renderMemoFile(site));
      const again = await build({ releasesDir: store, site, writing });
      assert.equal(again.units!.rendered, again.units!.units, name);
      assert.ok((await servedFiles(site)).has(lost), name);
    }
  });

  test('knows which route shards of the served build the units it did not give back had paths in, and its shard hashes', () => {
    const file = path.join(work, 'shards-memo');
    const unit = (paths: string[]) => () => ({ files: [], paths: Object.fromEntries(paths.map((p) => [p, { type: 'file' as const, key: p.slice(1) }])) });
    const paths = { a: ['/a/1', '/a/2'], b: ['/b/1'], c: ['/c/1', '/c/2', '/c/3'] };
    const hashes = { 'index.json': 'i', '000.json': 'x', '001.json': 'y' };
    const first = openRenderMemoFile(file, { from: undefined, to: 'build-1' }, { code: 'test' });
    for (const name of ['a', 'b', 'c'] as const) first.unit(name, () => name, unit(paths[name]));
    first.finish();
    assert.equal(first.previous, undefined, 'nothing was served before');
    first.made(hashes);
    first.save();

    const lows = (...names: (keyof typeof paths)[]) => new Set(names.flatMap((name) => paths[name].map((p) => pathHash(p) % 4096)));
    // a is given back; b is rendered again; c is gone.
    const second = openRenderMemoFile(file, { from: 'build-1', to: 'build-2' }, { code: 'test' });
    second.unit('a', () => 'a', unit(['/wrong']));
    second.unit('b', () => 'b changed', unit(['/b/1']));
    second.finish();
    assert.deepEqual(second.previous, { count: 2, hashes, replaced: lows('b', 'c') });
    second.discard();

    // Given back in another order than the memo has them: not known.
    const reordered = openRenderMemoFile(file, { from: 'build-1', to: 'build-2' }, { code: 'test' });
    reordered.unit('b', () => 'b', unit([]));
    reordered.unit('a', () => 'a', unit([]));
    reordered.finish();
    assert.equal(reordered.previous, undefined);
    reordered.discard();
  });

  test('does not know the served build\'s shards from a memo with a damaged line or shard line', async () => {
    const file = path.join(work, 'shards-memo-damaged');
    const first = openRenderMemoFile(file, { from: undefined, to: 'build-1' }, { code: 'test' });
    for (const name of ['a', 'b']) first.unit(name, () => name, () => ({ files: [], paths: { [`/${name}`]: { type: 'file' as const, key: name } } }));
    first.finish();
    first.made({ 'index.json': 'i', '000.json': 'x' });
    first.save();
    const text = await readFile(file, 'utf8');
    const lines = text.split('\n');
    for (const damaged of [
      [...lines.slice(0, 2), 'garbage', ...lines.slice(2)].join('\n'),
      text.replace('"000.json":"x"', '"000.json":"z"'),
      lines.filter((line) => !line.startsWith('\t')).join('\n'),
    ]) {
      await writeFile(file, damaged);
      const next = openRenderMemoFile(file, { from: 'build-1', to: 'build-2' }, { code: 'test' });
      next.unit('a', () => 'a', () => ({ files: [], paths: {} }));
      next.finish();
      assert.equal(next.previous, undefined, damaged);
      next.discard();
    }
    await writeFile(file, text);
    const intact = openRenderMemoFile(file, { from: 'build-1', to: 'build-2' }, { code: 'test' });
    intact.unit('a', () => 'a', () => ({ files: [], paths: {} }));
    intact.finish();
    assert.deepEqual(intact.previous?.hashes, { 'index.json': 'i', '000.json': 'x' });
    intact.discard();
  });

  test('a rebuild makes again only the route shards a change touches, and publishes what a fresh build does', async () => {
    const store = path.join(work, 'store-shards');
    await writeSyntheticStore(store, shapeOf(400));
    const site = path.join(work, 'site-shards', 'site');
    await build({ releasesDir: store, site });
    const index = JSON.parse(await readFile(path.join((await currentBuild(site))!, 'routes', 'index.json'), 'utf8')) as { shards: number };
    assert.ok(index.shards >= 8, `${index.shards} shards`);
    const release = (version: string) => path.join(store, PRODUCT, `${version}.json`);
    const steps: [string, () => Promise<unknown>][] = [
      ['a release added', () => writeRelease(store, '0.0.10', 400)],
      ['a release removed', () => rm(release('0.1.3'))],
      ['nothing', async () => {}],
      // From here on, the site's oldest build is brought up to date in place.
      ['a release yanked', async () => writeFile(release('0.2.4'), (await readFile(release('0.2.4'), 'utf8')).replace('"status": "active"', '"status": "yanked"'))],
      ['the memo\'s shard hashes damaged', async () => writeFile(renderMemoFile(site), (await readFile(renderMemoFile(site), 'utf8')).replace(/\t([0-9a-f]{6})/g, '\t000000'))],
      ['two releases added', () => Promise.all([writeRelease(store, '0.3.10', 401), writeRelease(store, '0.3.11', 402)])],
      ['the memo removed', () => rm(renderMemoFile(site))],
      ['a release removed', () => rm(release('0.0.10'))],
    ];
    for (const [i, [step, change]] of steps.entries()) {
      await change();
      const rebuilt = await build({ releasesDir: store, site });
      assert.ok(step.startsWith('the memo') || rebuilt.units!.rendered < rebuilt.units!.units / 4, `${step}: ${JSON.stringify(rebuilt.units)}`);
      const fresh = path.join(work, `site-shards-fresh-${i}`, 'site');
      await build({ releasesDir: store, site: fresh, incremental: false });
      const [actual, expected] = [await buildFiles(site), await buildFiles(fresh)];
      assert.deepEqual([...actual.keys()], [...expected.keys()], `${step}: the same files`);
      for (const [name, bytes] of expected) assert.ok(actual.get(name)!.equals(bytes), `${step}: ${name} has the same bytes`);
    }
  });
});

/** Every file of the build a site serves (its site files, route table, shards and manifest), by path in the build. */
async function buildFiles(site: string): Promise<Map<string, Buffer>> {
  const build = (await currentBuild(site))!;
  const files = new Map<string, Buffer>();
  const entries = (await readdir(build, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile());
  for (const file of entries.map((entry) => path.join(entry.parentPath, entry.name)).sort()) files.set(path.relative(build, file), await readFile(file));
  return files;
}
