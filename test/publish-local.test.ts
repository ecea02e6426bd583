// Local publishing: deterministic output, incremental writes, atomic swap, the route table in shards.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build, createBuildMemory } from '../generator/pipeline.ts';
import { MANIFEST_FILE, ROUTES_FILE, currentBuild, pinBuild, readRoutes, spareBuilds, withLocalPublish, type SiteManifest } from '../generator/publish/local-dir.ts';
import { FILE_SHARDS_DIR, fileShardCount } from '../generator/publish/file-shards.ts';
import { openRouteSpill, spillLine } from '../generator/publish/route-spill.ts';
import { ROUTE_SHARD_INDEX, ROUTE_SHARDS_DIR, pathHash, routeShards, routeShardsOnce, routeTableJson, routeTablePieces, shardOf, type RouteShardIndex } from '../generator/publish/route-shards.ts';
import { ownMember, shardMember, shardName } from '../generator/render/route-shard-source.ts';
import { tableSource } from '../generator/render/resolve.ts';
import type { PathTarget, RouteTable } from '../generator/render/route-table.ts';
import { createSiteSource } from '../sidecar/site-source.ts';
import { SAMPLE_RELEASES } from './helpers/sample-site.ts';
import { writeSyntheticStore } from '../scripts/bench/synthetic-store.ts';

let work: string;
before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'mirror-publish-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

async function tree(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    files.set(path.relative(dir, file), await readFile(file));
  }
  return files;
}

describe('publish to a local directory', () => {
  test('building twice gives byte-identical trees', async () => {
    const first = path.join(work, 'a', 'site');
    const second = path.join(work, 'b', 'site');
    await build({ releasesDir: SAMPLE_RELEASES, site: first });
    await build({ releasesDir: SAMPLE_RELEASES, site: second });
    const a = await tree((await currentBuild(first))!);
    const b = await tree((await currentBuild(second))!);
    assert.ok(a.size > 30);
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [file, bytes] of a) assert.ok(bytes.equals(b.get(file)!), file);
    // Written a piece at a time, the manifest is what JSON.stringify makes of it.
    const manifest = a.get(MANIFEST_FILE)!.toString();
    assert.equal(manifest, `${JSON.stringify(JSON.parse(manifest))}\n`);
  });

  test('a build writes each file into its new folder as it renders; one that fails before the swap leaves the site as it was', async () => {
    const site = path.join(work, 'streamed', 'site');
    await build({ releasesDir: SAMPLE_RELEASES, site });
    const served = await currentBuild(site);
    const streamed = { key: 'streamed.txt', body: 'rendered\n', contentType: 'text/plain', cacheControl: 'no-store', kind: 'page' } as const;
    await assert.rejects(
      withLocalPublish({ site }, async (under) => {
        under.put({ ...streamed });
        const folders = await readdir(`${site}.builds`);
        const written = await Promise.all(folders.map((folder) => readFile(path.join(`${site}.builds`, folder, 'public', streamed.key), 'utf8').catch(() => undefined)));
        assert.deepEqual(written.filter(Boolean), [streamed.body], 'on disk before the render ends');
        assert.equal(await currentBuild(site), served, 'not served yet');
        assert.throws(() => under.put({ ...streamed }), /Two site files with the key streamed.txt/);
        throw new Error('the render failed');
      }),
      /the render failed/,
    );
    assert.equal(await currentBuild(site), served);
    const report = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.equal(report.publish.written, 0);
    await assert.rejects(readFile(path.join(site, 'public', streamed.key)), { code: 'ENOENT' });
    assert.ok((await tree((await currentBuild(site))!)).size > 30);
  });

  test('the site path is a symlink swapped to a new build; the build before last is brought up to date in place', async () => {
    const site = path.join(work, 'swap', 'site');
    const first = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.ok((await lstat(site)).isSymbolicLink());
    const second = await build({ releasesDir: SAMPLE_RELEASES, site });
    const third = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.equal(new Set([first, second, third].map((report) => report.publish.build)).size, 3, 'three folders: the current build and the two before it');
    assert.equal(path.resolve(path.dirname(site), await readlink(site)), third.publish.build);
    // The fourth reuses the first's folder, which no one has been served from for two builds, under
    // a new name: nothing that keeps a build by its path takes it for the first.
    const inode = (await lstat(first.publish.build)).ino;
    const fourth = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.notEqual(fourth.publish.build, first.publish.build);
    assert.equal((await lstat(fourth.publish.build)).ino, inode, 'the same folder');
    assert.equal(fourth.publish.unchanged, fourth.files);
    assert.equal(path.resolve(path.dirname(site), await readlink(site)), fourth.publish.build);
    assert.deepEqual((await readdir(`${site}.builds`)).sort(), [second, third, fourth].map((report) => path.basename(report.publish.build)).sort());
    // A build left without its manifest (a publish killed while it brought the build up to date) is never reused, and is removed.
    await rm(path.join(second.publish.build, MANIFEST_FILE));
    const fifth = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.ok(![first, second, third].some((report) => report.publish.build === fifth.publish.build), 'a fresh folder');
    assert.equal(fifth.publish.removed, 1);
    assert.deepEqual((await readdir(`${site}.builds`)).sort(), [third, fourth, fifth].map((report) => path.basename(report.publish.build)).sort());
  });

  test('a pinned build (a remote deploy reads its bodies) is neither brought up to date nor removed until unpinned', async () => {
    const site = path.join(work, 'pinned', 'site');
    const first = await build({ releasesDir: SAMPLE_RELEASES, site });
    const files = await tree(first.publish.build);
    const unpin = pinBuild(first.publish.build);
    const later = [];
    for (let i = 0; i < 3; i++) later.push(await build({ releasesDir: SAMPLE_RELEASES, site }));
    assert.ok(!later.some((report) => report.publish.build === first.publish.build));
    assert.deepEqual(await tree(first.publish.build), files, 'the pinned build as it was');
    assert.equal((await readdir(`${site}.builds`)).length, 4, 'three builds kept, and the pinned one');
    unpin();
    const inode = (await lstat(first.publish.build)).ino;
    const next = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.equal((await lstat(next.publish.build)).ino, inode, 'unpinned, it is the oldest: brought up to date in place');
    assert.equal((await readdir(`${site}.builds`)).length, 3);
  });

  test('spare builds, linked copies of the current one, are what the next two builds bring up to date in place; the build before the current one stays', async () => {
    const site = path.join(work, 'spare', 'site');
    assert.equal(await spareBuilds({ site }), 0, 'no site yet');
    const first = await build({ releasesDir: SAMPLE_RELEASES, site });
    const served = await tree(first.publish.build);
    assert.equal(await spareBuilds({ site }), 2);
    assert.equal(await currentBuild(site), first.publish.build, 'still served');
    const spares = (await readdir(`${site}.builds`)).map((name) => path.join(`${site}.builds`, name)).filter((build) => build !== first.publish.build);
    assert.equal(spares.length, 2);
    const published = async (build: string) => (await lstat(path.join(build, MANIFEST_FILE))).mtimeMs;
    for (const spare of spares) {
      assert.deepEqual(await tree(spare), served, 'the same files');
      const key = path.join('public', 'index.json');
      assert.equal((await lstat(path.join(spare, key))).ino, (await lstat(path.join(first.publish.build, key))).ino, 'linked, not copied');
      assert.notEqual((await lstat(path.join(spare, MANIFEST_FILE))).ino, (await lstat(path.join(first.publish.build, MANIFEST_FILE))).ino, 'but its own site.json');
      assert.ok((await published(spare)) < (await published(first.publish.build)), 'dated before the current build');
    }
    assert.equal(await spareBuilds({ site }), 0, 'the site has its three builds');
    const [older, newer] = (await Promise.all(spares.map(async (spare) => ({ spare, at: await published(spare) })))).sort((a, b) => a.at - b.at).map(({ spare }) => spare);
    const inodes = await Promise.all([older!, newer!].map(async (spare) => (await lstat(spare)).ino));
    const second = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.equal((await lstat(second.publish.build)).ino, inodes[0], 'the older spare, brought up to date in place');
    assert.equal(second.publish.removed, 0);
    const third = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.equal((await lstat(third.publish.build)).ino, inodes[1], 'then the other; the first build is the one before the second');
    assert.deepEqual((await readdir(`${site}.builds`)).sort(), [first, second, third].map((report) => path.basename(report.publish.build)).sort());
    assert.deepEqual(await tree(third.publish.build), await tree(first.publish.build), 'nothing changed, the same site');
  });

  test('a rebuild with nothing changed writes only the build manifest and route table', async () => {
    const site = path.join(work, 'same', 'site');
    const first = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.equal(first.publish.written, first.files);
    const second = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.equal(second.publish.written, 0);
    assert.equal(second.publish.unchanged, second.files);
  });

  test('a build manifest another process replaced is read again, not taken from memory', async () => {
    const site = path.join(work, 'replaced-manifest', 'site');
    for (let i = 0; i < 3; i++) await build({ releasesDir: SAMPLE_RELEASES, site });
    // The next build brings the oldest of the three up to date: its manifest now says index.json differs.
    const current = await currentBuild(site);
    const folders = (await readdir(`${site}.builds`)).map((name) => path.join(`${site}.builds`, name)).filter((folder) => folder !== current);
    const dated = await Promise.all(folders.map(async (folder) => ({ folder, mtime: (await lstat(path.join(folder, MANIFEST_FILE))).mtimeMs })));
    const oldest = dated.sort((a, b) => a.mtime - b.mtime)[0]!.folder;
    const manifest = JSON.parse(await readFile(path.join(oldest, MANIFEST_FILE), 'utf8')) as SiteManifest;
    manifest.files['index.json']!.sha256 = '0'.repeat(64);
    await writeFile(`${path.join(oldest, MANIFEST_FILE)}.tmp`, JSON.stringify(manifest));
    await rename(`${path.join(oldest, MANIFEST_FILE)}.tmp`, path.join(oldest, MANIFEST_FILE));
    // Still the oldest: its manifest's mtime is what dates a build.
    const past = new Date(Date.now() - 3_600_000);
    await utimes(path.join(oldest, MANIFEST_FILE), past, past);
    const report = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.equal(report.publish.written, 1, 'index.json, which that manifest says differs');
    const again = await build({ releasesDir: SAMPLE_RELEASES, site });
    assert.equal(again.publish.written, 0);
  });

  test('adding a release writes only the files it affects', async () => {
    const store = path.join(work, 'store');
    await cp(SAMPLE_RELEASES, store, { recursive: true });
    const site = path.join(work, 'grow', 'site');
    await build({ releasesDir: store, site });
    const first = (await currentBuild(site))!;
    const before = await tree(first);
    const release = JSON.parse(await readFile(path.join(store, 'agent-as-code', '1.12.2.json'), 'utf8'));
    release.version = '1.12.3';
    release.published_at = '2024-03-01T00:00:00Z';
    release.artifacts = release.artifacts.slice(0, 1).map((artifact: { filename: string; blob: string }) => ({
      ...artifact,
      filename: artifact.filename.replace('1.12.2', '1.12.3'),
      blob: artifact.blob.replace('1.12.2', '1.12.3').replace('/2/', '/3/'),
    }));
    await writeFile(path.join(store, 'agent-as-code', '1.12.3.json'), JSON.stringify(release));
    const report = await build({ releasesDir: store, site });
    const after = await tree((await currentBuild(site))!);
    const changedFiles = [...after.keys()].filter((file) => !before.get(file)?.equals(after.get(file)!)).sort();
    // The route table's shards (routes/): those holding the new release's paths change with it.
    const changedShards = changedFiles.filter((file) => file.startsWith(`${ROUTE_SHARDS_DIR}/`));
    assert.ok(changedShards.length >= 1);
    // The others are not written again: the new folder links them from the build before.
    const second = (await currentBuild(site))!;
    const kept = [...after.keys()].filter((file) => file.startsWith(`${ROUTE_SHARDS_DIR}/`) && !changedShards.includes(file));
    assert.ok(kept.length > 0);
    for (const shard of kept) assert.equal((await lstat(path.join(second, shard))).ino, (await lstat(path.join(first, shard))).ino, `${shard} linked`);
    const changed = changedFiles.filter((file) => !changedShards.includes(file));
    const base = 'public/binary/releases/agent-as-code';
    assert.deepEqual(changed, [
      MANIFEST_FILE,
      `${base}/1/12/agent_as_code_1.12.3_SHA256SUMS`,
      `${base}/1/12/index.html`,
      `${base}/1/12/index.json`,
      `${base}/index.html`,
      `${base}/index.json`,
      `${base}/versions.json`,
      // 1.12.3 ships a Windows archive only: the Scoop manifest names it; install.sh and the
      // Homebrew formula keep 1.12.2, the newest release they can install.
      'public/scoop/bucket/agent-as-code.json',
      // 1.12.3 becomes the newest stable release the site-wide indexes name.
      'public/binary/releases/index.html',
      'public/binary/releases/index.json',
      'public/index.html',
      'public/index.json',
      ROUTES_FILE,
      // The file facts' one shard at this size (files/): the new files' facts are in it.
      `${FILE_SHARDS_DIR}/000.json`,
    ].sort());
    assert.equal(report.publish.written, changed.length - 3, 'site.json, its shard and routes.json are not site files');
  });

  test('refuses to replace a directory it did not create', async () => {
    const site = path.join(work, 'foreign');
    await mkdir(site, { recursive: true });
    await assert.rejects(build({ releasesDir: SAMPLE_RELEASES, site }), /directory mirror did not create/);
  });
});

describe('the route table in shards', () => {
  test('every path of routes.json is in the shard its hash names, and the index holds the rest', async () => {
    const paths: Record<string, PathTarget> = {};
    for (let i = 0; i < 1000; i++) paths[`/binary/releases/x/${i}/`] = { type: 'redirect', location: `/x/${i}` };
    const table: RouteTable = { version: 1, paths, endpoints: [], fallbacks: [{ prefix: '/', shape: 'flat', message: 'Not found' }], errorCacheControl: 'no-store' };
    const files = routeShards(table);
    const index = JSON.parse(files.get(ROUTE_SHARD_INDEX)!.body) as RouteShardIndex;
    const { shards, ...indexed } = index;
    const { paths: _paths, ...rest } = table;
    assert.equal(shards, 4);
    assert.equal(files.size, 1 + shards);
    assert.deepEqual(indexed, rest);
    const found = new Map<string, PathTarget>();
    for (const [name, { body, sha256 }] of files) if (name !== ROUTE_SHARD_INDEX) for (const [key, target] of Object.entries(JSON.parse(body) as Record<string, PathTarget>)) {
      assert.equal(sha256, createHash('sha256').update(body).digest('hex'));
      assert.equal(shardOf(key, index.shards), name);
      found.set(key, target);
    }
    assert.deepEqual(Object.fromEntries(found), paths);
  });

  test('a path\'s member found in a shard\'s bytes (as njs reads it) is what parsing the shard gives, awkward paths included', () => {
    const paths: Record<string, PathTarget> = {};
    for (let i = 0; i < 1000; i++) paths[`/binary/releases/x/${i}/`] = { type: 'redirect', location: `/binary/releases/x/${i + 1}/` };
    // A path inside another's name, in a value, after an escaped quote, with braces and non-ASCII characters.
    paths['/a/'] = { type: 'file', key: 'a/index.json', html: 'a/index.html' };
    paths['/q"/a/'] = { type: 'redirect', location: '/a/' };
    paths['/q\\"/a/'] = { type: 'redirect', location: '/{"/a/":}' };
    paths['/café/{x}/'] = { type: 'blob', blob: 'releases/1/0/0/x.zip', sha256: '0'.repeat(64), size: 1, contentType: 'application/zip', filename: 'x.zip' } as PathTarget;
    const table: RouteTable = { version: 1, paths, endpoints: [], fallbacks: [], errorCacheControl: 'no-store' };
    const files = routeShards(table);
    const shards = (JSON.parse(files.get(ROUTE_SHARD_INDEX)!.body) as RouteShardIndex).shards;
    const missing = ['/nope/', '/a', 'a/', '/binary/releases/x/1000/', '/q/a/', '/"/a/'];
    for (const wanted of [...Object.keys(paths), ...missing]) {
      const body = files.get(shardOf(wanted, shards))!.body;
      assert.deepEqual(shardMember(Buffer.from(body), wanted), ownMember(JSON.parse(body) as Record<string, PathTarget>, wanted), wanted);
    }
    // All of them in one shard, whatever their hashes.
    const awkward = Object.fromEntries(Object.entries(paths).filter(([wanted]) => !wanted.startsWith('/binary/')));
    for (const wanted of [...Object.keys(awkward), ...missing]) assert.deepEqual(shardMember(Buffer.from(JSON.stringify(awkward)), wanted), awkward[wanted], wanted);
    // A name given twice: the last, as JSON.parse keeps it.
    assert.deepEqual(shardMember(Buffer.from('{"/a/":{"type":"redirect","location":"/1"},"/a/":{"type":"redirect","location":"/2"}}'), '/a/'), { type: 'redirect', location: '/2' });
  });

  test('a shard filled by the same parts as last time is the same file, not hashed again, its text joined when read; one a new part fills is new', () => {
    const table = (paths: Record<string, PathTarget>): RouteTable => ({ version: 1, paths, endpoints: [], fallbacks: [], errorCacheControl: 'no-store' });
    const big: Record<string, PathTarget> = {};
    for (let i = 0; i < 1000; i++) big[`/binary/releases/x/${i}/`] = { type: 'redirect', location: `/x/${i}` };
    const small: Record<string, PathTarget> = { '/one': { type: 'redirect', location: '/1' } };
    const first = routeShards(table({ ...big, ...small }), [big, small]);
    const texts = new Map([...first].map(([name, file]) => [name, file.body]));
    const again = routeShards(table({ ...big, ...small }), [big, small]);
    for (const [name, file] of first) if (name !== ROUTE_SHARD_INDEX) assert.equal(again.get(name), file, `${name}: the same object`);
    const changed: Record<string, PathTarget> = { '/one': { type: 'redirect', location: '/2' } };
    const next = routeShards(table({ ...big, ...changed }), [big, changed]);
    const filled = shardOf('/one', 4);
    for (const [name, file] of next) {
      if (name === ROUTE_SHARD_INDEX) continue;
      if (name === filled) {
        assert.notEqual(file, first.get(name));
        assert.equal((JSON.parse(file.body) as Record<string, { location: string }>)['/one']!.location, '/2');
      } else {
        assert.equal(file, first.get(name), `${name}: the same object`);
        assert.equal(file.body, texts.get(name), `${name}: the same text, joined again`);
        assert.equal(file.sha256, createHash('sha256').update(file.body).digest('hex'));
      }
    }
  });

  test('written in pieces (a build without a memory), the table and its shards are the same bytes as written whole', () => {
    const parts: Record<string, PathTarget>[] = [{}, {}, {}];
    for (let i = 0; i < 1500; i++) parts[i % 2 === 0 ? 0 : 2]![`/binary/releases/x/${i}/`] = { type: 'redirect', location: `/x/${i}` };
    const table: RouteTable = { version: 1, paths: Object.assign({}, ...parts), endpoints: [], fallbacks: [{ prefix: '/', shape: 'flat', message: 'Not found' }], errorCacheControl: 'no-store' };
    // Two shards a pass: four passes over the parts for the eight shards.
    const shards = new Map(routeShardsOnce(table, parts, 2));
    const routes = [...routeTablePieces(table, parts, { once: true })].join('');
    assert.equal(routes, routeTableJson(table, parts));
    assert.equal(JSON.parse(routes).paths['/binary/releases/x/1499/'].location, '/x/1499');
    assert.deepEqual(shards, new Map([...routeShards(table, parts)].map(([name, { body }]) => [name, body])));
    assert.equal(shards.size, 1 + 8);
  });

  test('spilled as it renders (a build without a memory), the table and its shards are the same bytes as written whole, and the parts read back', async () => {
    const parts: Record<string, PathTarget>[] = [{}, {}, {}, { '/ünïcode/✓': { type: 'file', key: 'ünïcode/✓' } }];
    // Past a megabyte of members: routes.json in more than one piece.
    for (let i = 0; i < 20_000; i++) parts[i % 2 === 0 ? 0 : 2]![`/binary/releases/x/${i}/`] = { type: 'redirect', location: `/x/${i}` };
    const table: RouteTable = { version: 1, paths: Object.assign({}, ...parts), endpoints: [], fallbacks: [{ prefix: '/', shape: 'flat', message: 'Not found' }], errorCacheControl: 'no-store' };
    const file = path.join(work, 'spill');
    const spill = openRouteSpill(file);
    for (const part of parts) spill.add(part);
    const { paths: _paths, ...rules } = table;
    const pieces = [...spill.table(rules)];
    assert.ok(pieces.length > 3, `${pieces.length} pieces`);
    assert.equal(pieces.join(''), routeTableJson(table, parts));
    // Three shards a pass: several passes over the spill.
    const shards = [...spill.shards(rules, 3)];
    assert.ok(shards.length > 7, `${shards.length} shards`);
    assert.deepEqual(new Map(shards), new Map([...routeShards(table, parts)].map(([name, { body }]) => [name, body])));
    // The empty part leaves no trace.
    assert.deepEqual([...spill.parts()], parts.filter((part) => Object.keys(part).length > 0));
    spill.close();
    await assert.rejects(lstat(file), { code: 'ENOENT' });
  });

  test('a spill gives back without a body the shards that hold what they held in the previous build, and the others as made whole', () => {
    const rules = { version: 1 as const, endpoints: [], fallbacks: [{ prefix: '/', shape: 'flat' as const, message: 'Not found' }], errorCacheControl: 'no-store' };
    const kept: Record<string, PathTarget> = {};
    for (let i = 0; i < 5000; i++) kept[`/binary/releases/x/${i}/`] = { type: 'redirect', location: `/x/${i}` };
    const before = { '/a/1': { type: 'file', key: 'a/1' }, '/a/2': { type: 'file', key: 'a/2' } } satisfies Record<string, PathTarget>;
    const after = { '/a/1': { type: 'file', key: 'a/1' }, '/a/3': { type: 'file', key: 'a/3' } } satisfies Record<string, PathTarget>;
    const first = openRouteSpill(path.join(work, 'spill-before'));
    first.add(kept);
    first.add(before);
    const made = [...first.shards(rules)];
    first.close();
    const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
    const hashes = Object.fromEntries(made.map(([name, body]) => [name, sha256(body!)]));
    const count = made.length - 1;
    assert.ok(count >= 16, `${count} shards`);

    // The next build: the first part given back by a memo (as lines), the second rendered again.
    const spill = openRouteSpill(path.join(work, 'spill-after'));
    spill.addLines(Object.keys(kept).map((p) => spillLine(p, kept[p]!)));
    spill.add(after);
    const whole = new Map(spill.shards(rules));
    const replaced = new Set(Object.keys(before).map((p) => pathHash(p) % 4096));
    const shards = [...spill.shards(rules, 3, { count, hashes, replaced })];
    assert.deepEqual(shards.map(([name]) => name), [...whole.keys()]);
    const touched = new Set([...Object.keys(before), ...Object.keys(after)].map((p) => shardOf(p, count)));
    for (const [name, body] of shards) {
      if (name === ROUTE_SHARD_INDEX || touched.has(name)) assert.equal(body, whole.get(name), `${name}: made`);
      else {
        assert.equal(body, undefined, `${name}: not made`);
        assert.equal(hashes[name], sha256(whole.get(name)!), `${name}: unchanged`);
      }
    }
    assert.ok(touched.size <= 3 && shards.filter(([, body]) => body === undefined).length === count - touched.size);
    // Another shard count: every shard is made.
    assert.ok([...spill.shards(rules, 3, { count: count * 2, hashes, replaced })].every(([, body]) => body !== undefined));
    spill.close();
  });

  test('a spill refuses a path an earlier part claimed, and takes two paths whose hashes collide for two', () => {
    for (const hash of [undefined, () => [7, 7] as [number, number]]) {
      const spill = openRouteSpill(path.join(work, 'spill-twice'), { hash });
      spill.add({ '/a': { type: 'file', key: 'a' }, '/a/': { type: 'file', key: 'a/' }, '/"a":': { type: 'file', key: 'b' } });
      spill.add({ '/b': { type: 'file', key: 'b' } });
      assert.throws(() => spill.add({ '/c': { type: 'file', key: 'c' }, '/a/': { type: 'redirect', location: '/' } }), { message: 'Two routes for /a/' });
      spill.close();
    }
  });

  test('the sidecar answers every path the same from the shards as from routes.json, and a build without shards is read whole', async () => {
    const site = path.join(work, 'shards', 'site');
    await build({ releasesDir: SAMPLE_RELEASES, site });
    const folder = (await currentBuild(site))!;
    const table = JSON.parse(await readFile(path.join(folder, ROUTES_FILE), 'utf8')) as RouteTable;
    const whole = tableSource(table);
    const sharded = (await createSiteSource({ site }).current()).source;
    assert.ok(Object.keys(table.paths).length > 30);
    for (const key of [...Object.keys(table.paths), '/no/such/path']) assert.deepEqual(sharded.path(key), whole.path(key), key);
    assert.deepEqual(sharded.fallbacks(), whole.fallbacks());

    // The file facts too: from their shards, and from site.json for a build without them.
    const { files } = JSON.parse(await readFile(path.join(folder, MANIFEST_FILE), 'utf8')) as SiteManifest;
    const facts = (await createSiteSource({ site }).current()).facts;
    const expected = (key: string) => (Object.hasOwn(files, key) ? files[key] : undefined);
    for (const key of [...Object.keys(files), 'no/such/file', '__proto__']) assert.deepEqual(facts(key), expected(key), key);

    await rm(path.join(folder, ROUTE_SHARDS_DIR), { recursive: true });
    await rm(path.join(folder, FILE_SHARDS_DIR), { recursive: true });
    const unsharded = await createSiteSource({ site }).current();
    for (const key of Object.keys(table.paths)) assert.deepEqual(unsharded.source.path(key), whole.path(key), key);
    for (const key of [...Object.keys(files), 'no/such/file', '__proto__']) assert.deepEqual(unsharded.facts(key), expected(key), key);
  });

  test('the file facts are in shards by a hash of the key, which site.json lists in order; a reused folder keeps only its own number of shards', async () => {
    const larger = path.join(work, 'facts-store');
    await writeSyntheticStore(larger, { majors: 1, minors: 40, patches: 10 });
    const site = path.join(work, 'facts', 'site');
    // The first build has more shards than the rest; the fourth brings its folder up to date.
    for (const [i, releasesDir] of [larger, SAMPLE_RELEASES, SAMPLE_RELEASES, SAMPLE_RELEASES].entries()) {
      await build({ releasesDir, site });
      const folder = (await currentBuild(site))!;
      const manifest = JSON.parse(await readFile(path.join(folder, MANIFEST_FILE), 'utf8')) as SiteManifest;
      const names = (await readdir(path.join(folder, FILE_SHARDS_DIR))).sort();
      const count = fileShardCount(manifest.files);
      if (i === 0) assert.ok(count >= 2, `${count} shards`);
      assert.deepEqual(names, Array.from({ length: count }, (_, n) => shardName(n)), `build ${i + 1}`);
      assert.deepEqual(Object.keys(manifest.fileShards!).sort(), names);
      const joined: SiteManifest['files'] = {};
      for (const name of names) {
        const body = await readFile(path.join(folder, FILE_SHARDS_DIR, name));
        assert.equal(createHash('sha256').update(body).digest('hex'), manifest.fileShards![name], name);
        const shard = JSON.parse(body.toString()) as SiteManifest['files'];
        for (const key of Object.keys(shard)) {
          assert.equal(shardOf(key, count), name, key);
          assert.deepEqual(shardMember(body, key), shard[key]);
        }
        Object.assign(joined, shard);
      }
      assert.deepEqual(joined, manifest.files, `build ${i + 1}`);
      assert.deepEqual(Object.keys(manifest.files), Object.keys(joined), 'site.json lists the files shard by shard');
    }
  });

  test('past wholeTableMaxPaths a build writes no routes.json, even in a reused folder that had one, and readRoutes joins the shards', async () => {
    const small = path.join(work, 'whole', 'site');
    await build({ releasesDir: SAMPLE_RELEASES, site: small });
    const table = await readRoutes((await currentBuild(small))!);
    const paths = Object.keys(table.paths).length;
    const site = path.join(work, 'large', 'site');
    // The first build under the limit; the fourth brings the first's folder up to date (three builds are kept).
    const folders: string[] = [];
    for (const [i, wholeTableMaxPaths] of [paths, paths - 1, 0, 0].entries()) {
      await build({ releasesDir: SAMPLE_RELEASES, site, wholeTableMaxPaths });
      const folder = (await currentBuild(site))!;
      folders.push(folder);
      assert.equal(existsSync(path.join(folder, ROUTES_FILE)), i === 0, `build ${i + 1}`);
      assert.deepEqual(await readRoutes(folder), table, `build ${i + 1}`);
    }
    assert.ok(!(await readdir(`${site}.builds`)).includes(path.basename(folders[0]!)), 'the first folder was reused');
    // A build with a memory (the sidecar's) keeps its parts, and counts their paths the same way.
    const remembered = path.join(work, 'remembered', 'site');
    await build({ releasesDir: SAMPLE_RELEASES, site: remembered, wholeTableMaxPaths: paths - 1 }, createBuildMemory());
    assert.ok(!existsSync(path.join((await currentBuild(remembered))!, ROUTES_FILE)));
    assert.deepEqual(await readRoutes((await currentBuild(remembered))!), table);
    // The sidecar and nginx read the shards; nothing else needs the whole table.
    const source = (await createSiteSource({ site }).current()).source;
    for (const key of Object.keys(table.paths)) assert.deepEqual(source.path(key), tableSource(table).path(key), key);
  });
});
