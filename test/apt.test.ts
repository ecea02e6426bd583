// The apt repository: its files as rendered (hashes, by-hash copies, routes, suites, determinism),
// then apt-get itself against the signed sample over HTTP, in a scratch directory that leaves
// the machine's apt alone: update, list, download byte for byte, and refusal of a changed InRelease;
// then the same build served by nginx with its generated config.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { loadCatalog } from '../generator/load/index.ts';
import type { Catalog, Product } from '../generator/model/catalog.ts';
import { APT_ROOT, renderAptRepository } from '../generator/render/packages/apt.ts';
import type { SiteFile } from '../generator/render/site-file.ts';
import { startEvilMirror } from './helpers/evil-mirror.ts';
import { startNginx, whyNginxCannotRun, type RunningNginx } from './helpers/nginx.ts';
import { SAMPLE_BLOBS, SAMPLE_RELEASES, startSampleSite, type SampleSite } from './helpers/sample-site.ts';
import { removeDir, tempDir } from './helpers/store.ts';

const PRODUCT = 'mirror-agent';

describe('the apt repository as rendered', () => {
  let catalog: Catalog;
  let product: Product;
  before(async () => {
    catalog = await loadCatalog(SAMPLE_RELEASES);
    product = catalog.products.find((candidate) => candidate.name === PRODUCT)!;
  });
  const render = (products = [product]) => renderAptRepository(products, catalog.site);
  const body = (files: SiteFile[], key: string) => {
    const file = files.find((candidate) => candidate.key === key);
    assert.ok(file, `${key} is rendered`);
    return Buffer.from(file.body);
  };

  test('Release names every index by its SHA-256 and size, and each has a by-hash copy', () => {
    const { files, paths } = render();
    for (const suite of ['stable', 'latest']) {
      const release = body(files, `${APT_ROOT}/dists/${suite}/Release`).toString();
      const lines = [...release.matchAll(/^ ([0-9a-f]{64}) +(\d+) (\S+)$/gm)];
      assert.deepEqual(lines.map((line) => line[3]), ['main/binary-amd64/Packages', 'main/binary-amd64/Packages.gz', 'main/binary-arm64/Packages', 'main/binary-arm64/Packages.gz']);
      for (const [, hash, size, name] of lines) {
        const index = body(files, `${APT_ROOT}/dists/${suite}/${name}`);
        assert.equal(createHash('sha256').update(index).digest('hex'), hash, `${suite}/${name}: hash`);
        assert.equal(index.length, Number(size), `${suite}/${name}: size`);
        const byHash = `${APT_ROOT}/dists/${suite}/${path.dirname(name!)}/by-hash/SHA256/${hash}`;
        assert.deepEqual(body(files, byHash), index, `${byHash} is a copy`);
        assert.equal(files.find((file) => file.key === byHash)!.cacheControl, 'public, max-age=31536000, immutable');
      }
      assert.match(release, /^Suite: \w+\nCodename: \w+\nDate: Thu, 20 Jun 2024 08:15:00 UTC\n/m);
      assert.match(release, /^Acquire-By-Hash: yes$/m);
      const file = files.find((candidate) => candidate.key === `${APT_ROOT}/dists/${suite}/Release`)!;
      assert.deepEqual(file.signedInto, { armored: `${APT_ROOT}/dists/${suite}/Release.gpg`, clearsigned: `${APT_ROOT}/dists/${suite}/InRelease` });
      assert.equal(file.signAt, '2024-06-20T08:15:00.000Z');
    }
    for (const file of files) assert.deepEqual(paths[`/${file.key}`], { type: 'file', key: file.key }, `${file.key} is routed`);
  });

  test('Packages.gz is Packages gzipped without a name or a date', () => {
    const { files } = render();
    const packages = body(files, `${APT_ROOT}/dists/stable/main/binary-amd64/Packages`);
    const gzipped = body(files, `${APT_ROOT}/dists/stable/main/binary-amd64/Packages.gz`);
    assert.deepEqual(gunzipSync(gzipped), packages);
    assert.equal(gzipped.readUInt32LE(4), 0, 'no modification time');
    assert.equal(gzipped[3]! & 0x08, 0, 'no file name');
  });

  test('stable lists the stable releases, latest every active one; every version stays listed', () => {
    const { files } = render();
    const versions = (suite: string) => [...body(files, `${APT_ROOT}/dists/${suite}/main/binary-amd64/Packages`).toString().matchAll(/^Version: (.+)$/gm)].map((match) => match[1]);
    assert.deepEqual(versions('stable'), ['1.0.0', '1.1.0']);
    assert.deepEqual(versions('latest'), ['1.0.0', '1.1.0', '1.2.0~rc.1']);
    const yanked: Product = { ...product, releases: product.releases.map((release) => (release.version === '1.1.0' ? { ...release, status: 'yanked' } : release)) };
    const withYank = render([yanked]);
    assert.deepEqual([...body(withYank.files, `${APT_ROOT}/dists/stable/main/binary-amd64/Packages`).toString().matchAll(/^Version: (.+)$/gm)].map((match) => match[1]), ['1.0.0']);
    assert.equal(withYank.paths[`/${APT_ROOT}/pool/main/m/mirror-agent/mirror-agent_1.1.0_amd64.deb`]?.type, 'blob', 'a yanked package stays downloadable');
  });

  test('a paragraph is the control fields, then Filename, Size and SHA256 of the pool file, served from the blob', () => {
    const { files, paths } = render();
    const packages = body(files, `${APT_ROOT}/dists/stable/main/binary-arm64/Packages`).toString();
    const paragraph = packages.split('\n\n')[1]!;
    const artifact = product.releases.find((release) => release.version === '1.1.0')!.artifacts.find((candidate) => candidate.format === 'deb' && candidate.arch === 'arm64')!;
    assert.equal(
      paragraph,
      [
        'Package: mirror-agent',
        'Version: 1.1.0',
        'Architecture: arm64',
        'Maintainer: Example Releases <releases@example.com>',
        'Installed-Size: 1',
        'Section: utils',
        'Priority: optional',
        'Homepage: https://github.com/example/mirror-agent',
        'Description: sample agent of the release mirror',
        ' A tiny shell program that prints its version, packaged to show the',
        " mirror's apt and yum repositories.",
        ' .',
        ' It does nothing else.',
        'Filename: pool/main/m/mirror-agent/mirror-agent_1.1.0_arm64.deb',
        `Size: ${artifact.size}`,
        `SHA256: ${artifact.sha256}`,
        '',
      ].join('\n'),
    );
    assert.deepEqual(paths[`/${APT_ROOT}/pool/main/m/mirror-agent/mirror-agent_1.1.0_arm64.deb`], {
      type: 'blob',
      blob: artifact.blob,
      filename: artifact.filename,
      contentType: 'application/vnd.debian.binary-package',
      size: artifact.size,
      sha256: artifact.sha256,
    });
  });

  test('renders the same bytes twice, and nothing without a product that asks for apt', () => {
    const once = render();
    const twice = render();
    assert.deepEqual(twice.files.map((file) => [file.key, Buffer.from(file.body)]), once.files.map((file) => [file.key, Buffer.from(file.body)]));
    assert.deepEqual(render([]), { files: [], paths: {} });
  });

  test('pool directories follow Debian: lib packages by four letters, epochs dropped, `all` packages listed; a mismatched architecture is refused', () => {
    const renamed = (name: string, architecture: string): Product => ({
      ...product,
      releases: product.releases.slice(0, 1).map((release) => ({
        ...release,
        artifacts: release.artifacts.filter((artifact) => artifact.format === 'deb' && artifact.arch === 'amd64').map((artifact) => ({ ...artifact, deb: { control: { ...artifact.deb!.control, Package: name, Architecture: architecture, Version: '2:1.0.0' } } })),
      })),
    });
    assert.ok(render([renamed('libmirror1', 'amd64')]).paths[`/${APT_ROOT}/pool/main/libm/libmirror1/libmirror1_1.0.0_amd64.deb`], 'lib prefix, epoch dropped');
    const all = render([renamed('mirror-agent', 'all')]);
    assert.ok(all.paths[`/${APT_ROOT}/pool/main/m/mirror-agent/mirror-agent_1.0.0_all.deb`]);
    assert.match(body(all.files, `${APT_ROOT}/dists/stable/main/binary-amd64/Packages`).toString(), /^Architecture: all$/m, 'an `all` package is in its artifact architecture\'s index');
    assert.throws(() => render([renamed('mirror-agent', 'arm64')]), /mirror_agent_1\.0\.0_linux_amd64\.deb is listed for amd64 but its control file says `Architecture: arm64`/);
  });
});

describe('apt-get against the signed sample', { skip: whyAptCannotRun() }, () => {
  let site: SampleSite;
  let work: string;
  before(async () => {
    site = await startSampleSite(SAMPLE_RELEASES, SAMPLE_BLOBS, { signed: true });
    work = await tempDir('mirror-apt-');
    const key = await fetch(`${site.url}/.well-known/pgp-keys.gpg`);
    assert.equal(key.status, 200);
    await writeFile(path.join(work, 'key.gpg'), Buffer.from(await key.arrayBuffer()));
  });
  after(async () => {
    await site?.close();
    if (work) await removeDir(work);
    assert.deepEqual(site?.errors ?? [], [], 'the server logged no error');
  });

  test('stable: update, every version listed, download gives the newest stable .deb byte for byte', async () => {
    const apt = await aptClient(path.join(work, 'stable'), path.join(work, 'key.gpg'), `${site.url}/${APT_ROOT}`, 'stable', 'amd64');
    const update = await apt.run('apt-get', ['-o', 'Debug::Acquire::http=true', 'update']);
    assert.equal(update.code, 0, update.stderr);
    assert.doesNotMatch(update.stdout + update.stderr, /^(W|E):/m, 'no warning or error');
    assert.match(update.stderr, /GET \/apt\/dists\/stable\/main\/binary-amd64\/by-hash\/SHA256\/[0-9a-f]{64} /, 'the index comes by hash');
    const madison = await apt.run('apt-cache', ['madison', PRODUCT]);
    assert.deepEqual([...madison.stdout.matchAll(/\| +(\S+) \|/g)].map((match) => match[1]), ['1.1.0', '1.0.0']);
    const download = await apt.run('apt-get', ['download', PRODUCT]);
    assert.equal(download.code, 0, download.stderr);
    assert.deepEqual(await readdir(apt.downloads), ['mirror-agent_1.1.0_amd64.deb']);
    assert.deepEqual(await readFile(path.join(apt.downloads, 'mirror-agent_1.1.0_amd64.deb')), await readFile(path.join(SAMPLE_BLOBS, 'releases/1/1/0/mirror_agent_1.1.0_linux_amd64.deb')));
  });

  test('latest on arm64: the prerelease, whose version has a `~`', async () => {
    const apt = await aptClient(path.join(work, 'latest'), path.join(work, 'key.gpg'), `${site.url}/${APT_ROOT}`, 'latest', 'arm64');
    const update = await apt.run('apt-get', ['update']);
    assert.equal(update.code, 0, update.stderr);
    const download = await apt.run('apt-get', ['-o', 'Debug::Acquire::http=true', 'download', `${PRODUCT}:arm64`]);
    // apt percent-encodes the `~`; every adapter decodes the path before it looks the route up.
    assert.match(download.stderr, /GET \/apt\/pool\/main\/m\/mirror-agent\/mirror-agent_1\.2\.0%7erc\.1_arm64\.deb /);
    assert.equal(download.code, 0, download.stderr);
    const [file] = await readdir(apt.downloads);
    assert.equal(file, 'mirror-agent_1.2.0~rc.1_arm64.deb');
    assert.deepEqual(await readFile(path.join(apt.downloads, file!)), await readFile(path.join(SAMPLE_BLOBS, 'releases/1/2/0-rc.1/mirror_agent_1.2.0-rc.1_linux_arm64.deb')));
  });

  test('one changed byte in InRelease: update refuses the repository and writes no package list', async () => {
    const evil = await startEvilMirror(site.url);
    try {
      const inRelease = Buffer.from(await (await fetch(`${site.url}/${APT_ROOT}/dists/stable/InRelease`)).arrayBuffer());
      const at = inRelease.indexOf('main/binary-amd64/Packages\n') - 2;
      inRelease[at] = inRelease[at] === 0x31 ? 0x32 : 0x31;
      evil.substitute(`/${APT_ROOT}/dists/stable/InRelease`, inRelease);
      const apt = await aptClient(path.join(work, 'tampered'), path.join(work, 'key.gpg'), `${evil.url}/${APT_ROOT}`, 'stable', 'amd64');
      const update = await apt.run('apt-get', ['update']);
      assert.notEqual(update.code, 0, 'apt-get update fails');
      assert.match(update.stderr, /BADSIG/);
      assert.match(update.stderr, /is not signed/);
      const lists = await readdir(path.join(apt.dir, 'state', 'lists'));
      assert.deepEqual(lists.filter((name) => name.includes('Packages')), [], 'no Packages list written');
      const download = await apt.run('apt-get', ['download', PRODUCT]);
      assert.notEqual(download.code, 0, 'nothing to download');
    } finally {
      await evil.close();
    }
  });
});

describe('apt-get against the signed sample served by nginx', { skip: whyAptCannotRun() || whyNginxCannotRun() }, () => {
  let site: SampleSite;
  let nginx: RunningNginx;
  let work: string;
  before(async () => {
    // The sidecar builds and signs the site; nginx serves that build, the sidecar only answers for comparison.
    site = await startSampleSite(SAMPLE_RELEASES, SAMPLE_BLOBS, { signed: true });
    nginx = await startNginx(site.site);
    work = await tempDir('mirror-apt-nginx-');
    const key = await fetch(`${nginx.url}/.well-known/pgp-keys.gpg`);
    assert.equal(key.status, 200);
    await writeFile(path.join(work, 'key.gpg'), Buffer.from(await key.arrayBuffer()));
  });
  after(async () => {
    await nginx?.close();
    await site?.close();
    if (work) await removeDir(work);
    assert.deepEqual(site?.errors ?? [], [], 'the sidecar logged no error');
  });

  test('update by hash from nginx, then download gives the bytes the sidecar serves', async () => {
    const apt = await aptClient(path.join(work, 'stable'), path.join(work, 'key.gpg'), `${nginx.url}/${APT_ROOT}`, 'stable', 'amd64');
    const update = await apt.run('apt-get', ['-o', 'Debug::Acquire::http=true', 'update']);
    assert.equal(update.code, 0, `${update.stderr}\nnginx log:\n${nginx.log().slice(-2000)}`);
    assert.doesNotMatch(update.stdout + update.stderr, /^(W|E):/m, 'no warning or error');
    assert.match(update.stderr, /GET \/apt\/dists\/stable\/InRelease /);
    assert.match(update.stderr, /GET \/apt\/dists\/stable\/main\/binary-amd64\/by-hash\/SHA256\/[0-9a-f]{64} /, 'the index comes by hash');
    const download = await apt.run('apt-get', ['download', PRODUCT]);
    assert.equal(download.code, 0, `${download.stderr}\nnginx log:\n${nginx.log().slice(-2000)}`);
    assert.deepEqual(await readdir(apt.downloads), ['mirror-agent_1.1.0_amd64.deb']);
    const downloaded = await readFile(path.join(apt.downloads, 'mirror-agent_1.1.0_amd64.deb'));
    assert.deepEqual(downloaded, await readFile(path.join(SAMPLE_BLOBS, 'releases/1/1/0/mirror_agent_1.1.0_linux_amd64.deb')));
    const fromSidecar = await fetch(`${site.url}/${APT_ROOT}/pool/main/m/mirror-agent/mirror-agent_1.1.0_amd64.deb`);
    assert.equal(fromSidecar.status, 200);
    assert.deepEqual(downloaded, Buffer.from(await fromSidecar.arrayBuffer()), 'the same bytes as the sidecar');
    for (const file of ['InRelease', 'Release', 'Release.gpg']) {
      const [fromNginx, fromSidecarFile] = await Promise.all([nginx.url, site.url].map(async (base) => Buffer.from(await (await fetch(`${base}/${APT_ROOT}/dists/stable/${file}`)).arrayBuffer())));
      assert.deepEqual(fromNginx, fromSidecarFile, `${file}: the same bytes as the sidecar`);
    }
  });

  test('latest on arm64: the prerelease whose `~` apt percent-encodes', async () => {
    const apt = await aptClient(path.join(work, 'latest'), path.join(work, 'key.gpg'), `${nginx.url}/${APT_ROOT}`, 'latest', 'arm64');
    const update = await apt.run('apt-get', ['update']);
    assert.equal(update.code, 0, update.stderr);
    const download = await apt.run('apt-get', ['-o', 'Debug::Acquire::http=true', 'download', `${PRODUCT}:arm64`]);
    assert.match(download.stderr, /GET \/apt\/pool\/main\/m\/mirror-agent\/mirror-agent_1\.2\.0%7erc\.1_arm64\.deb /);
    assert.equal(download.code, 0, `${download.stderr}\nnginx log:\n${nginx.log().slice(-2000)}`);
    assert.deepEqual(await readdir(apt.downloads), ['mirror-agent_1.2.0~rc.1_arm64.deb']);
    assert.deepEqual(await readFile(path.join(apt.downloads, 'mirror-agent_1.2.0~rc.1_arm64.deb')), await readFile(path.join(SAMPLE_BLOBS, 'releases/1/2/0-rc.1/mirror_agent_1.2.0-rc.1_linux_arm64.deb')));
  });
});

interface AptClient {
  dir: string;
  /** Where `apt-get download` puts packages. */
  downloads: string;
  run(command: 'apt-get' | 'apt-cache', args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * apt with every directory in `dir`: its own sources, lists, cache and an empty dpkg status,
 * reading none of the machine's configuration (APT_CONFIG, empty configuration parts).
 */
async function aptClient(dir: string, key: string, url: string, suite: string, arch: string): Promise<AptClient> {
  const downloads = path.join(dir, 'downloads');
  for (const sub of ['state/lists/partial', 'cache/archives/partial', 'parts', 'preferences.d', 'sources.list.d', 'trusted.gpg.d', 'downloads']) await mkdir(path.join(dir, sub), { recursive: true });
  await writeFile(path.join(dir, 'status'), '');
  await writeFile(path.join(dir, 'sources.list'), `deb [signed-by=${key}] ${url} ${suite} main\n`);
  const settings: Record<string, string> = {
    'Dir::Etc::Parts': path.join(dir, 'parts'),
    'Dir::Etc::SourceList': path.join(dir, 'sources.list'),
    'Dir::Etc::SourceParts': path.join(dir, 'sources.list.d'),
    'Dir::Etc::Preferences': path.join(dir, 'preferences'),
    'Dir::Etc::PreferencesParts': path.join(dir, 'preferences.d'),
    'Dir::Etc::Trusted': path.join(dir, 'trusted.gpg'),
    'Dir::Etc::TrustedParts': path.join(dir, 'trusted.gpg.d'),
    'Dir::State': path.join(dir, 'state'),
    'Dir::State::Lists': path.join(dir, 'state', 'lists'),
    'Dir::State::status': path.join(dir, 'status'),
    'Dir::Cache': path.join(dir, 'cache'),
    'Debug::NoLocking': '1',
    'APT::Architecture': arch,
    'APT::Architectures': arch,
    // The scratch directories belong to this user; apt's `_apt` sandbox user could not write them.
    'APT::Sandbox::User': 'root',
    'Acquire::Languages': 'none',
    'Acquire::http::Proxy': 'DIRECT',
    'Acquire::Retries': '0',
  };
  const config = path.join(dir, 'apt.conf');
  await writeFile(config, Object.entries(settings).map(([name, value]) => `${name} "${value}";\n`).join(''));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', APT_CONFIG: config, LC_ALL: 'C' };
  return {
    dir,
    downloads,
    run: (command, args) =>
      new Promise((resolve, reject) => {
        execFile(command, args, { cwd: downloads, env, timeout: 60_000 }, (error, stdout, stderr) => {
          if (error && typeof error.code !== 'number') return reject(error);
          resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
        });
      }),
  };
}

/** A reason to skip, or false. CI's machine is Debian, where apt-get is always there and a missing one fails the run. */
function whyAptCannotRun(): string | false {
  const reason = spawnSync('apt-get', ['--version']).error ? 'apt-get is not installed (a Debian or Ubuntu machine has it)' : false;
  if (reason && process.env.CI) throw new Error(`CI must run the apt-get suite, but ${reason}`);
  return reason;
}
