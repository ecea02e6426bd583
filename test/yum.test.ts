// The yum repositories: their files as rendered (hash-named indexes, repomd.xml, channels, routes,
// determinism), then Debian's dnf against a signed store served over HTTP, in a scratch install
// root that leaves the machine alone: makecache, download byte for byte, install, and refusal of a
// changed repomd.xml or package.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { loadCatalog } from '../generator/load/index.ts';
import type { Catalog, Product } from '../generator/model/catalog.ts';
import { LOCAL_ORIGIN } from '../generator/render/packages/origin.ts';
import { RPM_ROOT, renderRpmRepositories } from '../generator/render/packages/rpm.ts';
import { CACHE_IMMUTABLE, CACHE_SHORT, type SiteFile } from '../generator/render/site-file.ts';
import { startEvilMirror, type EvilMirror } from './helpers/evil-mirror.ts';
import { buildRpm, exec, whyRpmCannotRun } from './helpers/rpmbuild.ts';
import { SAMPLE_BLOBS, startSampleSite, type SampleSite } from './helpers/sample-site.ts';
import { copySampleStore, removeDir, runCli, sha256, tempDir, writeJson } from './helpers/store.ts';

const PRODUCT = 'yumtool';
const REPOSITORY = 'yumtool-releases';
/** version, publication, rpm's spelling of the version (a prerelease sorts first with ~) */
const RELEASES = [
  ['1.0.0', '2024-03-01T09:00:00Z', '1.0.0'],
  ['1.1.0', '2024-05-10T14:30:00Z', '1.1.0'],
  ['1.2.0-rc.1', '2024-06-20T08:15:00Z', '1.2.0~rc.1'],
] as const;

const skip = whyRpmCannotRun(['rpmbuild', 'rpm', 'dnf']);

let dir: string;
let releasesDir: string;
let blobsDir: string;
/** The package file of each release, by version. */
const packages = new Map<string, string>();

before(async () => {
  if (skip) return;
  dir = await tempDir('mirror-yum-');
  releasesDir = path.join(dir, 'releases');
  blobsDir = path.join(dir, 'data', 'blobs');
  await copySampleStore(releasesDir, { releases: true });
  await cp(SAMPLE_BLOBS, blobsDir, { recursive: true });
  await writeJson(path.join(releasesDir, PRODUCT, 'product.json'), {
    name: PRODUCT,
    title: 'Yum tool',
    layout: 'binary',
    file_prefix: PRODUCT,
    packages: { outputs: ['rpm'], rpm: { repository: REPOSITORY } },
  });
  for (const [version, publishedAt, rpmVersion] of RELEASES) {
    const built = await buildRpm(dir, { name: PRODUCT, version: rpmVersion, preamble: ['AutoReqProv: no'], changelog: [`* Mon Jan 01 2024 Someone <a@example.com> - ${rpmVersion}-1`, `- Release ${version} <&>`] });
    // Artifacts are named `<file_prefix>_<version>_<platform>_<arch>.<ext>`.
    const file = path.join(dir, `${PRODUCT}_${version}_linux_amd64.rpm`);
    await cp(built, file);
    packages.set(version, file);
    const added = await runCli(['release', 'add', '--releases', releasesDir, '--product', PRODUCT, '--version', version, '--published-at', publishedAt, file], { MIRROR_DATA_DIR: path.dirname(blobsDir) });
    assert.equal(added.code, 0, added.stderr);
  }
});
after(() => (dir ? removeDir(dir) : undefined));

describe('the yum repositories as rendered', { skip }, () => {
  let catalog: Catalog;
  let product: Product;
  before(async () => {
    catalog = await loadCatalog(releasesDir);
    product = catalog.products.find((candidate) => candidate.name === PRODUCT)!;
  });
  const render = () => renderRpmRepositories([product], catalog.site);
  const body = (files: SiteFile[], key: string) => {
    const file = files.find((candidate) => candidate.key === key);
    assert.ok(file, `${key} is rendered`);
    return Buffer.from(file.body);
  };
  const indexes = (files: SiteFile[], channel: string) => {
    const repomd = body(files, `${RPM_ROOT}/${channel}/repodata/repomd.xml`).toString();
    return [...repomd.matchAll(/<data type="(\w+)">\s*<checksum type="sha256">(\w+)<\/checksum>\s*<open-checksum type="sha256">(\w+)<\/open-checksum>\s*<location href="([^"]+)"\/>\s*<timestamp>(\d+)<\/timestamp>\s*<size>(\d+)<\/size>\s*<open-size>(\d+)<\/open-size>/g)].map(
      ([, type, checksum, openChecksum, href, timestamp, size, openSize]) => ({ type: type!, checksum, openChecksum, href: href!, timestamp: Number(timestamp), size: Number(size), openSize: Number(openSize) }),
    );
  };
  const xmlOf = (files: SiteFile[], channel: string, type: string) => {
    const index = indexes(files, channel).find((entry) => entry.type === type)!;
    return gunzipSync(body(files, `${RPM_ROOT}/${channel}/${index.href}`)).toString();
  };

  test('repomd.xml names each index by the SHA-256 and size of its bytes, before and after gzip', () => {
    const { files, paths } = render();
    for (const channel of ['stable', 'latest']) {
      const entries = indexes(files, channel);
      assert.deepEqual(entries.map((entry) => entry.type), ['primary', 'filelists', 'other']);
      for (const entry of entries) {
        assert.equal(entry.href, `repodata/${entry.checksum}-${entry.type}.xml.gz`, 'the name carries the hash');
        const gz = body(files, `${RPM_ROOT}/${channel}/${entry.href}`);
        const open = gunzipSync(gz);
        assert.deepEqual([sha256(gz), gz.length, sha256(open), open.length], [entry.checksum, entry.size, entry.openChecksum, entry.openSize]);
        const file = files.find((candidate) => candidate.key === `${RPM_ROOT}/${channel}/${entry.href}`)!;
        assert.equal(file.cacheControl, CACHE_IMMUTABLE);
      }
      const repomd = files.find((candidate) => candidate.key === `${RPM_ROOT}/${channel}/repodata/repomd.xml`)!;
      const newest = channel === 'stable' ? '2024-05-10T14:30:00Z' : '2024-06-20T08:15:00Z';
      assert.equal(repomd.signAt, newest, 'signed with the date of the newest release in the channel');
      assert.deepEqual(repomd.signedInto, { armored: `${RPM_ROOT}/${channel}/repodata/repomd.xml.asc` });
      assert.equal(repomd.cacheControl, CACHE_SHORT);
      const seconds = String(Date.parse(newest) / 1000);
      assert.match(repomd.body as string, new RegExp(`<revision>${seconds}</revision>`));
      assert.ok(entries.every((entry) => entry.timestamp === Number(seconds)));
    }
    for (const file of files) assert.deepEqual(paths[`/${file.key}`], { type: 'file', key: file.key }, `${file.key} is routed`);
  });

  test('the indexes are gzipped without a name or a date, and render to the same bytes again', () => {
    const first = render();
    for (const file of first.files.filter((candidate) => candidate.key.endsWith('.xml.gz'))) {
      const gz = Buffer.from(file.body);
      assert.equal(gz[3]! & 0x08, 0, `${file.key}: no file name`);
      assert.equal(gz.readUInt32LE(4), 0, `${file.key}: mtime is zero`);
    }
    assert.deepEqual(render(), first);
  });

  test('each channel lists the active releases in it, and names their packages where the binary layout serves them', () => {
    const { files, paths } = render();
    const listed = (channel: string) => [...xmlOf(files, channel, 'primary').matchAll(/<version epoch="0" ver="([^"]+)" rel="1"\/>/g)].map((match) => match[1]);
    assert.deepEqual(listed('stable'), ['1.0.0', '1.1.0']);
    assert.deepEqual(listed('latest'), ['1.0.0', '1.1.0', '1.2.0~rc.1']);
    for (const release of product.releases) {
      const artifact = release.artifacts[0]!;
      for (const channel of release.channels) {
        // From /rpm/<channel>/ up to the site's root: both channels share the one route to each blob.
        const href = `../../binary/releases/${PRODUCT}/${release.major}/${release.minor}/${artifact.filename}`;
        assert.match(xmlOf(files, channel, 'primary'), new RegExp(`<location href="${href.replaceAll('.', '\\.')}"/>`), 'relative to the base');
      }
    }
    assert.doesNotMatch(xmlOf(files, 'stable', 'primary'), /1\.2\.0-rc\.1_linux/, 'a prerelease is not in stable');
    assert.deepEqual(Object.keys(paths).filter((key) => key.endsWith('.rpm')), [], 'no route of its own per package');
    assert.ok(!files.some((file) => file.key.endsWith('.rpm')), 'packages are never copied into the site');
  });

  test('primary, filelists and other carry the header fields, escaped', () => {
    const { files } = render();
    const artifact = product.releases[1]!.artifacts[0]!;
    const rpm = artifact.rpm!;
    const primary = xmlOf(files, 'stable', 'primary');
    assert.match(primary, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<metadata xmlns="http:\/\/linux.duke.edu\/metadata\/common" xmlns:rpm="http:\/\/linux.duke.edu\/metadata\/rpm" packages="2">\n/);
    assert.ok(primary.includes(`<checksum type="sha256" pkgid="YES">${artifact.sha256}</checksum>`));
    assert.ok(primary.includes(`<size package="${artifact.size}" installed="${rpm.installed_size}" archive="${rpm.archive_size}"/>`));
    assert.ok(primary.includes(`<rpm:header-range start="${rpm.header_range.start}" end="${rpm.header_range.end}"/>`));
    assert.ok(primary.includes(`<time file="${Date.parse('2024-05-10T14:30:00Z') / 1000}" build="${rpm.buildtime}"/>`));
    assert.ok(primary.includes('<rpm:entry name="yumtool" flags="EQ" epoch="0" ver="1.1.0" rel="1"/>'));
    assert.ok(primary.includes(`<file>/usr/bin/${PRODUCT}</file>`));
    const filelists = xmlOf(files, 'stable', 'filelists');
    assert.ok(filelists.includes(`<package pkgid="${artifact.sha256}" name="yumtool" arch="x86_64">\n  <version epoch="0" ver="1.1.0" rel="1"/>\n  <file>/usr/bin/yumtool</file>\n</package>`));
    const other = xmlOf(files, 'stable', 'other');
    assert.ok(other.includes('<changelog author="Someone &lt;a@example.com&gt; - 1.1.0-1" date="1704110400">- Release 1.1.0 &lt;&amp;&gt;</changelog>'));
  });

  test('a .repo file per repository id points dnf at the channel and the site keys', () => {
    const { files } = render();
    assert.equal(
      body(files, `${RPM_ROOT}/stable/${REPOSITORY}.repo`).toString(),
      [`[${REPOSITORY}]`, 'name=Release Mirror (stable)', `baseurl=${LOCAL_ORIGIN}/rpm/stable/`, 'enabled=1', 'repo_gpgcheck=1', 'gpgcheck=0', `gpgkey=${LOCAL_ORIGIN}/.well-known/pgp-keys.asc`, ''].join('\n'),
    );
    const withOrigin = renderRpmRepositories([product], { ...catalog.site, baseUrl: 'https://releases.example.com' });
    assert.match(body(withOrigin.files, `${RPM_ROOT}/latest/${REPOSITORY}.repo`).toString(), /^baseurl=https:\/\/releases\.example\.com\/rpm\/latest\/$/m);
  });

  test('a channel without packages is an empty repository, dated by the product', () => {
    const prereleaseOnly = { ...product, releases: product.releases.filter((release) => release.prerelease) };
    const { files } = renderRpmRepositories([prereleaseOnly], catalog.site);
    assert.match(xmlOf(files, 'stable', 'primary'), /packages="0">\n<\/metadata>\n$/);
    assert.equal(files.find((file) => file.key === `${RPM_ROOT}/stable/repodata/repomd.xml`)!.signAt, '2024-06-20T08:15:00Z');
  });

  test('without a product asking for rpm, nothing is rendered', () => {
    assert.deepEqual(renderRpmRepositories([], catalog.site), { files: [], paths: {} });
  });
});

describe('dnf against the signed store', { skip }, () => {
  let site: SampleSite;
  let evil: EvilMirror;
  before(async () => {
    site = await startSampleSite(releasesDir, blobsDir, { signed: true });
    evil = await startEvilMirror(site.url);
  });
  after(async () => {
    await evil?.close();
    await site?.close();
    assert.deepEqual(site?.errors ?? [], [], 'the server logged no error');
  });

  /** Runs dnf on a scratch install root and cache, with the site's .repo file pointed at `origin`. */
  async function dnf(origin: string, channel: string, args: string[], root?: string): Promise<{ code: number; output: string; root: string }> {
    const scratch = root ?? (await mkdtemp(path.join(dir, 'dnf-')));
    const reposDir = path.join(scratch, 'repos.d');
    await mkdir(reposDir, { recursive: true });
    const repo = await (await fetch(`${site.url}/${RPM_ROOT}/${channel}/${REPOSITORY}.repo`)).text();
    await writeFile(path.join(reposDir, `${REPOSITORY}.repo`), repo.replaceAll(LOCAL_ORIGIN, origin));
    const options = ['-y', '--releasever=1', `--installroot=${path.join(scratch, 'root')}`, `--setopt=cachedir=${path.join(scratch, 'cache')}`, `--setopt=reposdir=${reposDir}`, '--setopt=skip_if_unavailable=False'];
    try {
      const { stdout, stderr } = await exec('dnf', [...options, ...args], { timeout: 120_000 });
      return { code: 0, output: stdout + stderr, root: scratch };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      if (typeof failed.code !== 'number') throw error;
      return { code: failed.code, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}`, root: scratch };
    }
  }

  test('makecache checks repomd.xml.asc with the site key, and download brings the newest stable package byte for byte', async () => {
    const cache = await dnf(site.url, 'stable', ['makecache']);
    assert.equal(cache.code, 0, cache.output);
    assert.match(cache.output, /Importing GPG key/);
    const destination = path.join(cache.root, 'downloads');
    const download = await dnf(site.url, 'stable', ['install', '--downloadonly', `--destdir=${destination}`, PRODUCT], cache.root);
    assert.equal(download.code, 0, download.output);
    assert.deepEqual(await readdir(destination), [`${PRODUCT}_1.1.0_linux_amd64.rpm`]);
    assert.deepEqual(await readFile(path.join(destination, `${PRODUCT}_1.1.0_linux_amd64.rpm`)), await readFile(packages.get('1.1.0')!));
  });

  test('install puts the package in the install root; the latest channel has the prerelease', async () => {
    const stable = await dnf(site.url, 'stable', ['install', PRODUCT]);
    assert.equal(stable.code, 0, stable.output);
    assert.equal(await readFile(path.join(stable.root, 'root/usr/bin', PRODUCT), 'utf8'), '#!/bin/sh\necho 1.1.0\n');
    const latest = await dnf(site.url, 'latest', ['install', PRODUCT]);
    assert.equal(latest.code, 0, latest.output);
    assert.equal(await readFile(path.join(latest.root, 'root/usr/bin', PRODUCT), 'utf8'), '#!/bin/sh\necho 1.2.0~rc.1\n');
  });

  test('a repomd.xml changed by one byte is refused', async () => {
    const repomdPath = `/${RPM_ROOT}/stable/repodata/repomd.xml`;
    const honest = Buffer.from(await (await fetch(site.url + repomdPath)).arrayBuffer());
    const changed = Buffer.from(honest);
    const at = changed.indexOf('<revision>') + '<revision>'.length;
    changed[at] = changed[at] === 0x31 ? 0x32 : 0x31;
    evil.substitute(repomdPath, changed);
    try {
      const result = await dnf(evil.url, 'stable', ['makecache']);
      assert.notEqual(result.code, 0, result.output);
      assert.match(result.output, /repomd\.xml GPG signature verification error: Bad GPG signature/);
    } finally {
      evil.reset();
    }
  });

  test('a package changed on the way is refused by its checksum in primary.xml', async () => {
    // dnf resolves the href against the base, as a browser would: the request names the binary layout's path.
    const packagePath = `/binary/releases/${PRODUCT}/1/1/${PRODUCT}_1.1.0_linux_amd64.rpm`;
    const honest = await readFile(packages.get('1.1.0')!);
    const changed = Buffer.from(honest);
    changed[changed.length - 1] = honest.at(-1)! ^ 0xff;
    evil.substitute(packagePath, changed);
    try {
      const destination = path.join(dir, 'tampered-downloads');
      const result = await dnf(evil.url, 'stable', ['install', '--downloadonly', `--destdir=${destination}`, PRODUCT]);
      assert.notEqual(result.code, 0, result.output);
      assert.match(result.output, new RegExp(`checksum doesn't match\\. Calculated: ${sha256(changed)}\\(sha256\\) +Expected: ${sha256(honest)}`));
      assert.deepEqual(await readdir(destination).catch(() => []), [], 'nothing was kept');
    } finally {
      evil.reset();
    }
  });
});
