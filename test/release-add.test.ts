// `release add`: hashes files into the blob store and writes the release file, through the API
// (addRelease) and the CLI; never overwrites a published artifact.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { LoadError, loadCatalog } from '../generator/load/index.ts';
import { resolveChannel, type Catalog, type Product } from '../generator/model/catalog.ts';
import { ReleaseConflictError, addRelease, blobKeyFor, type AddReleaseOptions, type ArtifactInput } from '../generator/release-add.ts';
import { createFsBlobStore } from '../generator/stores/blob-fs.ts';
import { BlobConflictError, type BlobStore } from '../generator/stores/blob-store.ts';
import { copySampleStore, listFiles, removeDir, runCli, sha256, tempDir, type ReleaseJson } from './helpers/store.ts';

const exec = promisify(execFile);
const PUBLISHED_AT = '2025-03-01T12:00:00Z';

/** The digest coreutils computes, as an independent check of the tool's hashing. */
async function sha256sum(file: string): Promise<string> {
  const { stdout } = await exec('sha256sum', [file]);
  return stdout.split(' ')[0]!;
}

const productOf = (catalog: Catalog, name: string): Product => {
  const product = catalog.products.find((candidate) => candidate.name === name);
  assert.ok(product, `product ${name} is in the catalog`);
  return product;
};

let dir: string;
let releasesDir: string;
let dataDir: string;
let blobsDir: string;
let inputs: string;
let blobs: BlobStore;

beforeEach(async () => {
  dir = await tempDir('mirror-add-');
  releasesDir = path.join(dir, 'releases');
  dataDir = path.join(dir, 'data');
  blobsDir = path.join(dataDir, 'blobs');
  inputs = path.join(dir, 'inputs');
  await copySampleStore(releasesDir);
  await mkdir(inputs);
  blobs = createFsBlobStore({ root: blobsDir });
});
afterEach(() => removeDir(dir));

/** Writes an input file with random content; returns its path and bytes. */
async function artifactFile(name: string, size = 1000): Promise<{ path: string; bytes: Buffer }> {
  const file = path.join(inputs, name);
  const bytes = randomBytes(size);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
  return { path: file, bytes };
}

function add(product: string, version: string, files: ArtifactInput[], extra: Partial<AddReleaseOptions> = {}) {
  return addRelease({ releasesDir, blobs, product, version, files, publishedAt: PUBLISHED_AT, ...extra });
}

const releaseFile = (product: string, version: string) => path.join(releasesDir, product, `${version}.json`);
const readRelease = async (product: string, version: string): Promise<ReleaseJson> => JSON.parse(await readFile(releaseFile(product, version), 'utf8'));

/** The state `release add` may change: every file of the store and of the blob store, with contents. */
async function snapshot(): Promise<Record<string, string>> {
  const state: Record<string, string> = {};
  for (const file of await listFiles(releasesDir)) state[`releases/${file}`] = sha256(await readFile(path.join(releasesDir, file)));
  for (const file of await listFiles(blobsDir)) state[`blobs/${file}`] = sha256(await readFile(path.join(blobsDir, file)));
  return state;
}

describe('addRelease: a new release', () => {
  test('hashes the files, stores the blobs and writes the release file', async () => {
    const linux = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip', 4096);
    const mac = await artifactFile('agent_as_code_2.0.0_darwin_arm64.zip', 777);
    const result = await add('agent-as-code', '2.0.0', [{ path: linux.path }, { path: mac.path }], { notesUrl: 'https://example.com/notes/2.0.0' });

    assert.equal(result.created, true);
    assert.equal(result.file, releaseFile('agent-as-code', '2.0.0'));
    const expected = [
      {
        platform: 'linux',
        arch: 'amd64',
        filename: 'agent_as_code_2.0.0_linux_amd64.zip',
        size: 4096,
        sha256: await sha256sum(linux.path),
        content_type: 'application/zip',
        blob: 'releases/2/0/0/agent_as_code_2.0.0_linux_amd64.zip',
      },
      {
        platform: 'darwin',
        arch: 'arm64',
        filename: 'agent_as_code_2.0.0_darwin_arm64.zip',
        size: 777,
        sha256: await sha256sum(mac.path),
        content_type: 'application/zip',
        blob: 'releases/2/0/0/agent_as_code_2.0.0_darwin_arm64.zip',
      },
    ];
    assert.deepEqual(result.artifacts, expected);
    assert.deepEqual(await readRelease('agent-as-code', '2.0.0'), {
      version: '2.0.0',
      published_at: PUBLISHED_AT,
      notes_url: 'https://example.com/notes/2.0.0',
      status: 'active',
      artifacts: expected,
    });
    assert.deepEqual(await readFile(path.join(blobsDir, expected[0]!.blob)), linux.bytes);
    assert.deepEqual(await readFile(path.join(blobsDir, expected[1]!.blob)), mac.bytes);
  });

  test('the store loads afterwards and the new release is the stable one', async () => {
    const file = await artifactFile('agent_as_code_2.0.0_windows_amd64.zip');
    await add('agent-as-code', '2.0.0', [{ path: file.path }]);
    const product = productOf(await loadCatalog(releasesDir), 'agent-as-code');
    assert.deepEqual(product.releases.map((r) => r.version), ['2.0.0']);
    const [added] = product.releases;
    assert.deepEqual(added!.channels, ['stable', 'latest']);
    assert.deepEqual(added!.artifacts.map((a) => [a.platform, a.arch, a.sha256, a.size]), [['windows', 'amd64', await sha256sum(file.path), 1000]]);
    assert.equal(resolveChannel(product, 'stable')?.version, '2.0.0');
  });

  test('the release file is written without leftovers next to it', async () => {
    const file = await artifactFile('agent_as_code_2.0.0_windows_amd64.zip');
    await add('agent-as-code', '2.0.0', [{ path: file.path }]);
    assert.deepEqual((await readdir(path.join(releasesDir, 'agent-as-code'))).sort(), ['2.0.0.json', 'product.json']);
    assert.deepEqual(await readdir(path.join(blobsDir, '.tmp')), []);
  });

  test('a prerelease goes to channel latest only and its blobs under <patch>-<prerelease>', async () => {
    const file = await artifactFile('agent_as_code_2.1.0-rc.1_linux_arm64.zip');
    const result = await add('agent-as-code', '2.1.0-rc.1', [{ path: file.path }]);
    assert.equal(result.artifacts[0]!.blob, 'releases/2/1/0-rc.1/agent_as_code_2.1.0-rc.1_linux_arm64.zip');
    assert.equal('channels' in (await readRelease('agent-as-code', '2.1.0-rc.1')), false);
    const product = productOf(await loadCatalog(releasesDir), 'agent-as-code');
    assert.deepEqual(product.releases[0]!.channels, ['latest']);
    assert.equal(resolveChannel(product, 'stable'), undefined);
    assert.equal(resolveChannel(product, 'latest')?.version, '2.1.0-rc.1');
  });

  test('explicit channels are written to the release file', async () => {
    const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await add('agent-as-code', '2.0.0', [{ path: file.path }], { channels: ['latest'] });
    assert.deepEqual((await readRelease('agent-as-code', '2.0.0')).channels, ['latest']);
    assert.equal(resolveChannel(productOf(await loadCatalog(releasesDir), 'agent-as-code'), 'stable'), undefined);
  });

  test('infers platform and architecture from aliases in the file name', async () => {
    const a = await artifactFile('ScalepadAgent-2.0.0-macos-arm64.pkg');
    const b = await artifactFile('ScalepadAgent-2.0.0-win-x64.msi');
    const result = await add('scalepad-agent', '2.0.0', [{ path: a.path }, { path: b.path }]);
    assert.deepEqual(result.artifacts.map((x) => `${x.platform}/${x.arch}`), ['darwin/arm64', 'windows/amd64']);
  });

  test('the agent layout keys blobs as agent/<platform>[/<arch>]/<version>/<file>', async () => {
    const pkg = await artifactFile('arm/ScalepadAgent-2.0.0.pkg');
    const pkgIntel = await artifactFile('intel/ScalepadAgent-2.0.0.pkg');
    const msi = await artifactFile('ScalepadAgent-2.0.0.msi');
    const result = await add('scalepad-agent', '2.0.0', [
      { path: pkg.path, platform: 'darwin', arch: 'arm64' },
      { path: pkgIntel.path, platform: 'macos', arch: 'x86_64' },
      { path: msi.path, platform: 'windows', arch: 'amd64', contentType: 'application/octet-stream' },
    ]);
    assert.deepEqual(
      result.artifacts.map((x) => [x.platform, x.arch, x.blob, x.content_type]),
      [
        ['darwin', 'arm64', 'agent/macos/arm64/2.0.0/ScalepadAgent-2.0.0.pkg', 'application/octet-stream'],
        ['darwin', 'amd64', 'agent/macos/x86_64/2.0.0/ScalepadAgent-2.0.0.pkg', 'application/octet-stream'],
        ['windows', 'amd64', 'agent/windows/2.0.0/ScalepadAgent-2.0.0.msi', 'application/octet-stream'],
      ],
    );
    assert.deepEqual(await readFile(path.join(blobsDir, 'agent/macos/x86_64/2.0.0/ScalepadAgent-2.0.0.pkg')), pkgIntel.bytes);
    assert.deepEqual(await readFile(path.join(blobsDir, 'agent/macos/arm64/2.0.0/ScalepadAgent-2.0.0.pkg')), pkg.bytes);
    await loadCatalog(releasesDir);
  });

  test('blobKeyFor follows the layout', () => {
    assert.equal(blobKeyFor({ layout: 'binary' }, '1.13.0-beta.1', 'linux', 'amd64', 'f.zip'), 'releases/1/13/0-beta.1/f.zip');
    assert.equal(blobKeyFor({ layout: 'agent' }, '1.8.3', 'windows', 'amd64', 'A.msi'), 'agent/windows/1.8.3/A.msi');
    assert.equal(blobKeyFor({ layout: 'agent' }, '1.8.3', 'darwin', 'amd64', 'A.pkg'), 'agent/macos/x86_64/1.8.3/A.pkg');
  });
});

describe('addRelease: an existing release', () => {
  test('adds a new platform to an existing version, keeping its published_at', async () => {
    const linux = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await add('agent-as-code', '2.0.0', [{ path: linux.path }]);
    const mac = await artifactFile('agent_as_code_2.0.0_darwin_arm64.zip');
    const result = await add('agent-as-code', '2.0.0', [{ path: mac.path }], { publishedAt: '2030-01-01T00:00:00Z' });
    assert.equal(result.created, false);
    const data = await readRelease('agent-as-code', '2.0.0');
    assert.equal(data.published_at, PUBLISHED_AT);
    assert.deepEqual(data.artifacts.map((a) => a.filename), ['agent_as_code_2.0.0_linux_amd64.zip', 'agent_as_code_2.0.0_darwin_arm64.zip']);
    assert.deepEqual(data.artifacts[1]!.sha256, await sha256sum(mac.path));
    const release = productOf(await loadCatalog(releasesDir), 'agent-as-code').releases[0]!;
    assert.deepEqual(release.artifacts.map((a) => `${a.platform}/${a.arch}`), ['linux/amd64', 'darwin/arm64']);
  });

  test('adding to an existing version cannot change its channels or notes URL', async () => {
    const linux = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await add('agent-as-code', '2.0.0', [{ path: linux.path }]);
    const before = await readRelease('agent-as-code', '2.0.0');
    const mac = await artifactFile('agent_as_code_2.0.0_darwin_arm64.zip');
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: mac.path }], { channels: ['latest'] }), /its channels cannot be changed/);
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: mac.path }], { notesUrl: 'https://example.com/other' }), /its notes URL cannot be changed/);
    assert.deepEqual(await readRelease('agent-as-code', '2.0.0'), before);
  });

  test('adds a platform to a release of the sample store', async () => {
    await copySampleStore(releasesDir + '-full', { releases: true });
    releasesDir = releasesDir + '-full';
    const file = await artifactFile('agent_as_code_1.13.0-beta.1_darwin_amd64.zip');
    const result = await add('agent-as-code', '1.13.0-beta.1', [{ path: file.path }]);
    assert.equal(result.created, false);
    const release = productOf(await loadCatalog(releasesDir), 'agent-as-code').releases.find((r) => r.version === '1.13.0-beta.1')!;
    assert.equal(release.artifacts.length, 5);
    assert.equal(release.artifacts[4]!.blob, 'releases/1/13/0-beta.1/agent_as_code_1.13.0-beta.1_darwin_amd64.zip');
  });

  test('refuses to overwrite an artifact: ReleaseConflictError, release file and blob unchanged', async () => {
    const original = await artifactFile('first/agent_as_code_2.0.0_linux_amd64.zip');
    await add('agent-as-code', '2.0.0', [{ path: original.path }]);
    const before = await snapshot();
    const replacement = await artifactFile('second/agent_as_code_2.0.0_linux_amd64.zip');
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: replacement.path }]), (error: Error) => {
      assert.ok(error instanceof ReleaseConflictError, String(error));
      assert.match(error.message, /agent-as-code 2\.0\.0 already has agent_as_code_2\.0\.0_linux_amd64\.zip \(linux\/amd64\); published artifacts are never overwritten/);
      return true;
    });
    assert.deepEqual(await snapshot(), before);
    assert.deepEqual(await readFile(path.join(blobsDir, 'releases/2/0/0/agent_as_code_2.0.0_linux_amd64.zip')), original.bytes);
  });

  test('refuses the same bytes again too (the artifact exists)', async () => {
    const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await add('agent-as-code', '2.0.0', [{ path: file.path }]);
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: file.path }]), ReleaseConflictError);
  });

  test('refuses a second file for a taken target in the agent layout, whatever its name', async () => {
    const first = await artifactFile('ScalepadAgent-2.0.0.msi');
    await add('scalepad-agent', '2.0.0', [{ path: first.path, platform: 'windows', arch: 'amd64' }]);
    const before = await snapshot();
    const second = await artifactFile('ScalepadAgent-2.0.0-signed.msi');
    await assert.rejects(add('scalepad-agent', '2.0.0', [{ path: second.path, platform: 'win', arch: 'x64' }]), ReleaseConflictError);
    assert.deepEqual(await snapshot(), before);
  });

  test('refuses the whole batch when one of its files conflicts', async () => {
    const linux = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await add('agent-as-code', '2.0.0', [{ path: linux.path }]);
    const before = await snapshot();
    const mac = await artifactFile('agent_as_code_2.0.0_darwin_arm64.zip');
    const again = await artifactFile('again/agent_as_code_2.0.0_linux_amd64.zip');
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: mac.path }, { path: again.path }]), ReleaseConflictError);
    assert.deepEqual(await snapshot(), before);
  });

  test('when a blob cannot be stored, the release file is not written', async () => {
    const linux = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    const mac = await artifactFile('agent_as_code_2.0.0_darwin_arm64.zip');
    const failing: BlobStore = {
      ...blobs,
      async putFile(key, file, expected) {
        if (key.includes('darwin')) throw new Error('disk full');
        return blobs.putFile(key, file, expected);
      },
    };
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: linux.path }, { path: mac.path }], { blobs: failing }), /disk full/);
    assert.deepEqual((await readdir(path.join(releasesDir, 'agent-as-code'))).sort(), ['product.json']);
  });

  test('when a blob cannot be stored for an existing release, its file is unchanged', async () => {
    const linux = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await add('agent-as-code', '2.0.0', [{ path: linux.path }]);
    const before = await readFile(releaseFile('agent-as-code', '2.0.0'), 'utf8');
    const mac = await artifactFile('agent_as_code_2.0.0_darwin_arm64.zip');
    const failing: BlobStore = { ...blobs, putFile: async () => Promise.reject(new Error('disk full')) };
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: mac.path }], { blobs: failing }), /disk full/);
    assert.equal(await readFile(releaseFile('agent-as-code', '2.0.0'), 'utf8'), before);
  });

  test('other bytes already under the blob key: BlobConflictError and no release file', async () => {
    const stray = await artifactFile('stray.zip');
    await blobs.putFile('releases/2/0/0/agent_as_code_2.0.0_linux_amd64.zip', stray.path, { sha256: sha256(stray.bytes), size: stray.bytes.length });
    const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: file.path }]), BlobConflictError);
    assert.deepEqual((await readdir(path.join(releasesDir, 'agent-as-code'))).sort(), ['product.json']);
    assert.deepEqual(await readFile(path.join(blobsDir, 'releases/2/0/0/agent_as_code_2.0.0_linux_amd64.zip')), stray.bytes);
  });

  test('the same bytes already under the blob key are reused', async () => {
    const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await blobs.putFile('releases/2/0/0/agent_as_code_2.0.0_linux_amd64.zip', file.path, { sha256: sha256(file.bytes), size: file.bytes.length });
    const result = await add('agent-as-code', '2.0.0', [{ path: file.path }]);
    assert.equal(result.created, true);
    await loadCatalog(releasesDir);
  });

  test('concurrent adds of different platforms to one release keep both artifacts', async () => {
    const linux = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await add('agent-as-code', '2.0.0', [{ path: linux.path }]);
    const mac = await artifactFile('agent_as_code_2.0.0_darwin_arm64.zip');
    const win = await artifactFile('agent_as_code_2.0.0_windows_amd64.zip');
    const outcomes = await Promise.allSettled([add('agent-as-code', '2.0.0', [{ path: mac.path }]), add('agent-as-code', '2.0.0', [{ path: win.path }])]);
    const data = await readRelease('agent-as-code', '2.0.0');
    const succeeded = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    // Every add that reported success must be in the file (a refused one is acceptable).
    assert.equal(data.artifacts.length, 1 + succeeded, `${succeeded} adds succeeded, file lists ${data.artifacts.map((a) => a.filename).join(', ')}`);
  });
});

describe('addRelease: refused input', () => {
  for (const version of ['v2.0.0', '2.0', '2.0.0.0', '', '2.0.0+build']) {
    test(`refuses the invalid version ${JSON.stringify(version)} and writes nothing`, async () => {
      const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
      const before = await snapshot();
      await assert.rejects(add('agent-as-code', version, [{ path: file.path }]), /to be a semantic version such as 1\.12\.2/);
      assert.deepEqual(await snapshot(), before);
    });
  }

  test('refuses an unknown product, naming the known ones', async () => {
    const file = await artifactFile('nope_2.0.0_linux_amd64.zip');
    const before = await snapshot();
    await assert.rejects(add('nope', '2.0.0', [{ path: file.path }]), /^Error: Unknown product `nope`; the store has `agent-as-code`, `mirror-agent`, `scalepad-agent`$/);
    assert.deepEqual(await snapshot(), before);
  });

  test('refuses a call without files', async () => {
    await assert.rejects(add('agent-as-code', '2.0.0', []), /at least one artifact file/);
  });

  test('refuses a file whose platform cannot be inferred', async () => {
    const file = await artifactFile('agent_as_code_2.0.0.zip');
    const before = await snapshot();
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: file.path }]), /cannot tell the platform from the file name; write it as FILE#PLATFORM\/ARCH/);
    assert.deepEqual(await snapshot(), before);
  });

  test('refuses a file whose architecture cannot be inferred', async () => {
    const file = await artifactFile('agent_as_code_2.0.0_linux.zip');
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: file.path }]), /cannot tell the architecture from the file name/);
  });

  test('refuses an unknown platform given explicitly', async () => {
    const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: file.path, platform: 'plan9', arch: 'amd64' }]), /unknown platform `plan9`/);
  });

  test('refuses a file name that does not match the binary layout, before storing any blob', async () => {
    const good = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    const bad = await artifactFile('tool_2.0.0_linux_arm64.zip');
    const before = await snapshot();
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: good.path }, { path: bad.path }]), (error: Error) => {
      assert.ok(error instanceof LoadError, String(error));
      assert.deepEqual(error.problems, [
        { file: releaseFile('agent-as-code', '2.0.0'), path: 'artifacts[1].filename', message: 'must start with `agent_as_code_2.0.0_linux_arm64.`, got `tool_2.0.0_linux_arm64.zip`' },
      ]);
      return true;
    });
    assert.deepEqual(await snapshot(), before);
  });

  test('refuses a file named for another version', async () => {
    const file = await artifactFile('agent_as_code_1.0.0_linux_amd64.zip');
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: file.path }]), LoadError);
  });

  test('refuses two files for one target in one call', async () => {
    const zip = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    const tgz = await artifactFile('agent_as_code_2.0.0_linux_amd64.tar.gz');
    const before = await snapshot();
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: zip.path }, { path: tgz.path }]), LoadError);
    assert.deepEqual(await snapshot(), before);
  });

  test('refuses a linux file for the agent layout', async () => {
    const file = await artifactFile('ScalepadAgent-2.0.0.deb');
    await assert.rejects(add('scalepad-agent', '2.0.0', [{ path: file.path, platform: 'linux', arch: 'amd64' }]), LoadError);
  });

  test('refuses a prerelease in channel stable', async () => {
    const file = await artifactFile('agent_as_code_2.0.0-rc.1_linux_amd64.zip');
    await assert.rejects(add('agent-as-code', '2.0.0-rc.1', [{ path: file.path }], { channels: ['stable'] }), LoadError);
  });

  test('refuses an invalid published-at', async () => {
    const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: file.path }], { publishedAt: 'now' }), LoadError);
  });

  test('reads only the product it adds to: a broken release file elsewhere is for the build to report', async () => {
    await writeFile(path.join(releasesDir, 'agent-as-code', '1.0.0.json'), '{');
    const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    const result = await add('agent-as-code', '2.0.0', [{ path: file.path }]);
    assert.equal(result.created, true);
    assert.equal((await listFiles(blobsDir)).length, 1);
    await assert.rejects(loadCatalog(releasesDir), LoadError);
  });

  test('refuses a product whose product.json does not load', async () => {
    await writeFile(path.join(releasesDir, 'agent-as-code', 'product.json'), '{');
    const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: file.path }]), LoadError);
    assert.deepEqual(await listFiles(blobsDir), []);
  });

  test('refuses a missing input file', async () => {
    await assert.rejects(add('agent-as-code', '2.0.0', [{ path: path.join(inputs, 'agent_as_code_2.0.0_linux_amd64.zip') }]), { code: 'ENOENT' });
  });
});

describe('addRelease: inferring the target from the file name', () => {
  test('x86_64 in a file name means amd64', async () => {
    const file = await artifactFile('ScalepadAgent-2.0.0-macos-x86_64.pkg');
    const result = await add('scalepad-agent', '2.0.0', [{ path: file.path }]);
    assert.deepEqual(result.artifacts.map((a) => `${a.platform}/${a.arch}`), ['darwin/amd64']);
  });

  test('a version number that looks like an architecture does not decide it', async () => {
    const file = await artifactFile('agent_as_code_1.0.386_linux_amd64.zip');
    const result = await add('agent-as-code', '1.0.386', [{ path: file.path }]);
    assert.deepEqual(result.artifacts.map((a) => `${a.platform}/${a.arch}`), ['linux/amd64']);
  });
});

describe('mirror release add (CLI)', () => {
  const env = () => ({ MIRROR_RELEASES: releasesDir, MIRROR_DATA_DIR: dataDir });

  test('adds a binary-layout release, inferring the targets from the names', async () => {
    const linux = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    const mac = await artifactFile('agent_as_code_2.0.0_darwin_arm64.zip');
    const result = await runCli(['release', 'add', '--product', 'agent-as-code', '--version', '2.0.0', '--published-at', PUBLISHED_AT, linux.path, mac.path], env());
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.equal(lines[0], `created ${releaseFile('agent-as-code', '2.0.0')}`);
    assert.equal(lines[1], `  ${await sha256sum(linux.path)}  agent_as_code_2.0.0_linux_amd64.zip  (linux/amd64, 1000 bytes)`);
    assert.equal(lines[2], `  ${await sha256sum(mac.path)}  agent_as_code_2.0.0_darwin_arm64.zip  (darwin/arm64, 1000 bytes)`);
    const data = await readRelease('agent-as-code', '2.0.0');
    assert.equal(data.published_at, PUBLISHED_AT);
    assert.deepEqual(await readFile(path.join(blobsDir, 'releases/2/0/0/agent_as_code_2.0.0_linux_amd64.zip')), linux.bytes);
    assert.deepEqual(productOf(await loadCatalog(releasesDir), 'agent-as-code').releases.map((r) => r.version), ['2.0.0']);
  });

  test('accepts FILE#PLATFORM/ARCH and repeated --channel', async () => {
    const pkg = await artifactFile('ScalepadAgent-2.0.0.pkg');
    const msi = await artifactFile('ScalepadAgent-2.0.0.msi');
    const result = await runCli(
      ['release', 'add', '--product', 'scalepad-agent', '--version', '2.0.0', '--channel', 'latest', '--channel', 'stable', `${pkg.path}#darwin/arm64`, `${msi.path}#windows/amd64`],
      env(),
    );
    assert.equal(result.code, 0, result.stderr);
    const data = await readRelease('scalepad-agent', '2.0.0');
    assert.deepEqual(data.channels, ['latest', 'stable']);
    assert.deepEqual(
      data.artifacts.map((a) => [a.platform, a.arch, a.blob, a.sha256]),
      [
        ['darwin', 'arm64', 'agent/macos/arm64/2.0.0/ScalepadAgent-2.0.0.pkg', await sha256sum(pkg.path)],
        ['windows', 'amd64', 'agent/windows/2.0.0/ScalepadAgent-2.0.0.msi', await sha256sum(msi.path)],
      ],
    );
    assert.deepEqual(await readFile(path.join(blobsDir, 'agent/macos/arm64/2.0.0/ScalepadAgent-2.0.0.pkg')), pkg.bytes);
    const product = productOf(await loadCatalog(releasesDir), 'scalepad-agent');
    assert.equal(resolveChannel(product, 'stable')?.version, '2.0.0');
  });

  test('a second add to the same version prints `updated`', async () => {
    const linux = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    const mac = await artifactFile('agent_as_code_2.0.0_darwin_arm64.zip');
    assert.equal((await runCli(['release', 'add', '--product', 'agent-as-code', '--version', '2.0.0', linux.path], env())).code, 0);
    const result = await runCli(['release', 'add', '--product', 'agent-as-code', '--version', '2.0.0', mac.path], env());
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^updated /);
    assert.equal((await readRelease('agent-as-code', '2.0.0')).artifacts.length, 2);
  });

  test('exits 1 on a conflict and leaves the store alone', async () => {
    const first = await artifactFile('first/agent_as_code_2.0.0_linux_amd64.zip');
    assert.equal((await runCli(['release', 'add', '--product', 'agent-as-code', '--version', '2.0.0', first.path], env())).code, 0);
    const before = await snapshot();
    const second = await artifactFile('second/agent_as_code_2.0.0_linux_amd64.zip');
    const result = await runCli(['release', 'add', '--product', 'agent-as-code', '--version', '2.0.0', second.path], env());
    assert.equal(result.code, 1);
    assert.match(result.stderr, /published artifacts are never overwritten/);
    assert.deepEqual(await snapshot(), before);
  });

  test('exits 1 and prints the problem for a file name outside the layout', async () => {
    const file = await artifactFile('other_2.0.0_linux_amd64.zip');
    const result = await runCli(['release', 'add', '--product', 'agent-as-code', '--version', '2.0.0', file.path], env());
    assert.equal(result.code, 1);
    assert.ok(result.stderr.includes(`${releaseFile('agent-as-code', '2.0.0')}: artifacts[0].filename: must start with \`agent_as_code_2.0.0_linux_amd64.\``), result.stderr);
    assert.deepEqual(await listFiles(blobsDir), []);
  });

  test('exits 1 for an invalid version or an unknown product', async () => {
    const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    const badVersion = await runCli(['release', 'add', '--product', 'agent-as-code', '--version', 'v2.0.0', file.path], env());
    assert.equal(badVersion.code, 1);
    assert.match(badVersion.stderr, /semantic version/);
    const badProduct = await runCli(['release', 'add', '--product', 'nope', '--version', '2.0.0', file.path], env());
    assert.equal(badProduct.code, 1);
    assert.match(badProduct.stderr, /Unknown product `nope`/);
  });

  test('exits 2 with usage for a missing --product, a bad --channel or a bad FILE#spec', async () => {
    const file = await artifactFile('agent_as_code_2.0.0_linux_amd64.zip');
    for (const args of [
      ['--version', '2.0.0', file.path],
      ['--product', 'agent-as-code', '--version', '2.0.0', '--channel', 'beta', file.path],
      ['--product', 'agent-as-code', '--version', '2.0.0', `${file.path}#linux`],
    ]) {
      const result = await runCli(['release', 'add', ...args], env());
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /Usage|mirror release add/);
    }
    assert.deepEqual(await listFiles(blobsDir), []);
    assert.deepEqual((await readdir(path.join(releasesDir, 'agent-as-code'))).sort(), ['product.json']);
  });
});
