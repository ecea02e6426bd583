// `mirror release add --goreleaser DIST`: GoReleaser's archives, platforms and checksums.
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { SAMPLE_RELEASES, listFiles, removeDir, runCli, sha256, tempDir } from './helpers/store.ts';

let work: string;
let env: Record<string, string>;
beforeEach(async () => {
  work = await tempDir('mirror-goreleaser-');
  await mkdir(path.join(work, 'releases', 'agent-as-code'), { recursive: true });
  await cp(path.join(SAMPLE_RELEASES, 'agent-as-code', 'product.json'), path.join(work, 'releases', 'agent-as-code', 'product.json'));
  env = { MIRROR_RELEASES: path.join(work, 'releases'), MIRROR_DATA_DIR: path.join(work, 'data') };
});
afterEach(async () => {
  await removeDir(work);
});

/** A dist folder as GoReleaser leaves it: archives, a binary, the checksums file, artifacts.json and metadata.json. */
async function writeDist(options: { corrupt?: string } = {}): Promise<{ dist: string; sums: Map<string, string> }> {
  const dist = path.join(work, 'dist');
  await mkdir(path.join(dist, 'agent_linux_amd64_v1'), { recursive: true });
  const targets = [['linux', 'amd64'], ['darwin', 'arm64'], ['windows', 'amd64'], ['freebsd', 'amd64']];
  const artifacts: object[] = [];
  const sums = new Map<string, string>();
  for (const [goos, goarch] of targets) {
    const name = `agent_as_code_2.0.0_${goos}_${goarch}.zip`;
    const bytes = `archive for ${goos}/${goarch}\n`;
    await writeFile(path.join(dist, name), bytes);
    sums.set(name, sha256(name === options.corrupt ? 'other bytes' : bytes));
    artifacts.push({ name, path: `dist/${name}`, goos, goarch, internal_type: 1, type: 'Archive', extra: { Format: 'zip', ID: 'default' } });
  }
  await writeFile(path.join(dist, 'agent_linux_amd64_v1', 'agent_as_code'), 'binary');
  artifacts.push({ name: 'agent_as_code', path: 'dist/agent_linux_amd64_v1/agent_as_code', goos: 'linux', goarch: 'amd64', goamd64: 'v1', type: 'Binary' });
  const checksums = 'agent_as_code_2.0.0_checksums.txt';
  await writeFile(path.join(dist, checksums), [...sums].map(([name, sum]) => `${sum}  ${name}\n`).join(''));
  artifacts.push({ name: checksums, path: `dist/${checksums}`, type: 'Checksum', extra: {} });
  await writeFile(path.join(dist, 'artifacts.json'), JSON.stringify(artifacts));
  await writeFile(path.join(dist, 'metadata.json'), JSON.stringify({ project_name: 'agent_as_code', tag: 'v2.0.0', previous_tag: 'v1.12.2', version: '2.0.0', commit: 'abc' }));
  return { dist, sums };
}

describe('release add --goreleaser', () => {
  test('adds every archive of a published platform, at the version of metadata.json, with its checksum', async () => {
    const { dist, sums } = await writeDist();
    const result = await runCli(['release', 'add', '--product', 'agent-as-code', '--goreleaser', dist], env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /skipped agent_as_code_2\.0\.0_freebsd_amd64\.zip: freebsd\/amd64 is not a published platform/);
    const release = JSON.parse(await readFile(path.join(work, 'releases', 'agent-as-code', '2.0.0.json'), 'utf8'));
    assert.deepEqual(
      release.artifacts.map((artifact: { filename: string; platform: string; arch: string; sha256: string }) => [artifact.filename, `${artifact.platform}/${artifact.arch}`, artifact.sha256]),
      [
        ['agent_as_code_2.0.0_linux_amd64.zip', 'linux/amd64', sums.get('agent_as_code_2.0.0_linux_amd64.zip')],
        ['agent_as_code_2.0.0_darwin_arm64.zip', 'darwin/arm64', sums.get('agent_as_code_2.0.0_darwin_arm64.zip')],
        ['agent_as_code_2.0.0_windows_amd64.zip', 'windows/amd64', sums.get('agent_as_code_2.0.0_windows_amd64.zip')],
      ],
    );
    assert.equal((await listFiles(path.join(work, 'data', 'blobs'))).filter((file) => !file.startsWith('.')).length, 3);
  });

  test('an archive that does not match the checksums file stops the add before anything is written', async () => {
    const { dist } = await writeDist({ corrupt: 'agent_as_code_2.0.0_darwin_arm64.zip' });
    const result = await runCli(['release', 'add', '--product', 'agent-as-code', '--goreleaser', dist], env);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /agent_as_code_2\.0\.0_darwin_arm64\.zip: sha256 is [0-9a-f]{64}, but the checksums file says [0-9a-f]{64}/);
    assert.deepEqual(await listFiles(path.join(work, 'releases', 'agent-as-code')), ['product.json']);
    assert.deepEqual(await listFiles(path.join(work, 'data', 'blobs')), []);
  });

  test('a folder without artifacts.json is refused with a clear message', async () => {
    const result = await runCli(['release', 'add', '--product', 'agent-as-code', '--goreleaser', work], env);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /artifacts\.json is missing: point --goreleaser at GoReleaser's dist folder/);
  });
});
