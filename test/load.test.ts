// The manifest loader: the sample store loads into the model; every bad input is reported, all at
// once, with its file and JSON path.
import assert from 'node:assert/strict';
import { readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { LoadError, formatProblem, loadCatalog, type Problem } from '../generator/load/index.ts';
import { formatOf, resolveChannel, type Catalog, type Product } from '../generator/model/catalog.ts';
import { rpmMetadata } from '../generator/packages/rpm.ts';
import {
  SAMPLE_RELEASES,
  agentArtifact,
  binaryArtifact,
  copySampleStore,
  release,
  removeDir,
  runCli,
  tempDir,
  writeJson,
  writeSmallStore,
  type ReleaseJson,
} from './helpers/store.ts';

const productOf = (catalog: Catalog, name: string): Product => {
  const product = catalog.products.find((candidate) => candidate.name === name);
  assert.ok(product, `product ${name} is in the catalog`);
  return product;
};

async function readJson<T = any>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, 'utf8')) as T;
}

async function editJson<T = any>(file: string, edit: (data: T) => void): Promise<void> {
  const data = await readJson<T>(file);
  edit(data);
  await writeJson(file, data);
}

/** The LoadError loadCatalog throws for `dir`; fails the test when it resolves or throws something else. */
async function loadError(dir: string): Promise<LoadError> {
  try {
    await loadCatalog(dir);
  } catch (error) {
    assert.ok(error instanceof LoadError, `expected a LoadError, got ${String(error)}`);
    return error;
  }
  assert.fail('loadCatalog resolved, expected a LoadError');
}

interface ExpectedProblem {
  /** Relative to the store. */
  file: string;
  path: string;
  message: RegExp;
}

/** Asserts the store fails to load with exactly these problems (in any order). */
async function assertProblems(dir: string, expected: ExpectedProblem[]): Promise<Problem[]> {
  const error = await loadError(dir);
  const key = (problem: { file: string; path: string }) => `${problem.file}\u0000${problem.path}`;
  const actual = error.problems.map((problem) => ({ ...problem, file: path.relative(dir, problem.file) })).sort((a, b) => key(a).localeCompare(key(b)));
  const wanted = [...expected].sort((a, b) => key(a).localeCompare(key(b)));
  assert.deepEqual(
    actual.map(({ file, path: at }) => ({ file, path: at })),
    wanted.map(({ file, path: at }) => ({ file, path: at })),
    `problems reported:\n${error.message}`,
  );
  actual.forEach((problem, i) => assert.match(problem.message, wanted[i]!.message, `${problem.file}: ${problem.path}`));
  return error.problems;
}

describe('loadCatalog: the sample store', () => {
  let catalog: Catalog;
  beforeEach(async () => {
    catalog = await loadCatalog(SAMPLE_RELEASES);
  });

  test('reads the site settings from mirror.json', () => {
    assert.deepEqual(catalog.site, { title: 'Release Mirror', baseUrl: '' });
  });

  test('lists the products sorted by name with their settings', () => {
    assert.deepEqual(
      catalog.products.map(({ name, title, layout, filePrefix, homepage }) => ({ name, title, layout, filePrefix, homepage })),
      [
        { name: 'agent-as-code', title: 'Agent as Code', layout: 'binary', filePrefix: 'agent_as_code', homepage: 'https://github.com/example/agent-as-code' },
        { name: 'mirror-agent', title: 'Mirror Agent', layout: 'binary', filePrefix: 'mirror_agent', homepage: 'https://github.com/example/mirror-agent' },
        { name: 'scalepad-agent', title: 'Scalepad Agent', layout: 'agent', filePrefix: 'scalepad_agent', homepage: null },
      ],
    );
  });

  test('lists each product’s releases in ascending semver order', () => {
    assert.deepEqual(productOf(catalog, 'agent-as-code').releases.map((r) => r.version), ['1.0.0', '1.1.0', '1.12.2', '1.13.0-beta.1']);
    assert.deepEqual(productOf(catalog, 'scalepad-agent').releases.map((r) => r.version), ['1.8.2', '1.8.3', '1.9.0-rc.1']);
  });

  test('splits versions into major, minor, patch and a prerelease flag', () => {
    const beta = productOf(catalog, 'agent-as-code').releases.find((r) => r.version === '1.13.0-beta.1')!;
    assert.deepEqual([beta.major, beta.minor, beta.patch, beta.prerelease], [1, 13, 0, true]);
    const stable = productOf(catalog, 'agent-as-code').releases.find((r) => r.version === '1.12.2')!;
    assert.deepEqual([stable.major, stable.minor, stable.patch, stable.prerelease], [1, 12, 2, false]);
  });

  test('carries every artifact of every release file into the model', async () => {
    for (const product of catalog.products) {
      for (const release of product.releases) {
        const data = await readJson<ReleaseJson>(path.join(SAMPLE_RELEASES, product.name, `${release.version}.json`));
        assert.equal(release.publishedAt, data.published_at);
        assert.equal(release.notesUrl, data.notes_url);
        assert.equal(release.status, 'active');
        assert.deepEqual(
          release.artifacts,
          data.artifacts.map((a) => ({
            platform: a.platform,
            arch: a.arch,
            format: formatOf(a.filename),
            filename: a.filename,
            size: a.size,
            sha256: a.sha256,
            contentType: a.content_type,
            blob: a.blob,
            ...(a.deb ? { deb: a.deb } : {}),
            // The stored header leaves empty fields out; the schema fills them in.
            ...(a.rpm ? { rpm: rpmMetadata.parse(a.rpm) } : {}),
          })),
          `${product.name} ${release.version}`,
        );
      }
    }
  });

  test('a release without channels is in stable and latest, a prerelease only in latest', () => {
    const channels = (product: string) => Object.fromEntries(productOf(catalog, product).releases.map((r) => [r.version, r.channels]));
    assert.deepEqual(channels('agent-as-code'), {
      '1.0.0': ['stable', 'latest'],
      '1.1.0': ['stable', 'latest'],
      '1.12.2': ['stable', 'latest'],
      '1.13.0-beta.1': ['latest'],
    });
    assert.deepEqual(channels('scalepad-agent'), { '1.8.2': ['stable', 'latest'], '1.8.3': ['stable', 'latest'], '1.9.0-rc.1': ['latest'] });
  });

  test('channel stable resolves to the newest release, latest to the newest prerelease', () => {
    assert.equal(resolveChannel(productOf(catalog, 'agent-as-code'), 'stable')?.version, '1.12.2');
    assert.equal(resolveChannel(productOf(catalog, 'agent-as-code'), 'latest')?.version, '1.13.0-beta.1');
    assert.equal(resolveChannel(productOf(catalog, 'scalepad-agent'), 'stable')?.version, '1.8.3');
    assert.equal(resolveChannel(productOf(catalog, 'scalepad-agent'), 'latest')?.version, '1.9.0-rc.1');
  });
});

describe('loadCatalog: a valid store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('mirror-load-');
    await writeSmallStore(dir);
  });
  afterEach(() => removeDir(dir));

  test('the small fixture store loads', async () => {
    const catalog = await loadCatalog(dir);
    assert.deepEqual(catalog.site, { title: 'Small', baseUrl: 'https://releases.example.com' });
    assert.deepEqual(catalog.products.map((p) => p.name), ['desk', 'tool']);
  });

  test('products are sorted by name whatever the directory order', async () => {
    for (const name of ['zeta', 'alpha', 'mid-product']) await writeJson(path.join(dir, name, 'product.json'), { name, title: name, layout: 'binary' });
    const catalog = await loadCatalog(dir);
    assert.deepEqual(catalog.products.map((p) => p.name), ['alpha', 'desk', 'mid-product', 'tool', 'zeta']);
  });

  test('releases are ordered by semver precedence, not by file name', async () => {
    for (const version of ['0.9.0', '1.2.0', '1.10.0', '1.10.0-rc.2', '1.10.0-rc.10', '1.9.0-alpha', '10.0.0']) {
      await writeJson(path.join(dir, 'tool', `${version}.json`), release(version, [binaryArtifact('tool', version, 'linux', 'amd64')]));
    }
    const catalog = await loadCatalog(dir);
    assert.deepEqual(
      productOf(catalog, 'tool').releases.map((r) => r.version),
      ['0.9.0', '1.0.0', '1.1.0', '1.2.0', '1.9.0-alpha', '1.10.0-rc.2', '1.10.0-rc.10', '1.10.0', '10.0.0'],
    );
  });

  test('platform and architecture aliases are normalised to canonical names', async () => {
    const aliased = (platform: string, arch: string, canonical: string) => ({ ...binaryArtifact('tool', '1.2.0', canonical.split('/')[0]!, canonical.split('/')[1]!), platform, arch });
    await writeJson(
      path.join(dir, 'tool', '1.2.0.json'),
      release('1.2.0', [aliased('macos', 'x86_64', 'darwin/amd64'), aliased('osx', 'aarch64', 'darwin/arm64'), aliased('win', 'x64', 'windows/amd64'), aliased('win', 'i386', 'windows/386'), aliased('linux', 'x86', 'linux/386')]),
    );
    await editJson<ReleaseJson>(path.join(dir, 'desk', '2.0.0.json'), (data) => {
      data.artifacts[1]!.platform = 'macos';
      data.artifacts.push({ ...agentArtifact('2.0.0', 'darwin', 'amd64'), platform: 'osx', arch: 'x86_64' });
    });
    const catalog = await loadCatalog(dir);
    const targets = productOf(catalog, 'tool').releases.find((r) => r.version === '1.2.0')!.artifacts.map((a) => `${a.platform}/${a.arch}`);
    assert.deepEqual(targets, ['darwin/amd64', 'darwin/arm64', 'windows/amd64', 'windows/386', 'linux/386']);
    const desk = productOf(catalog, 'desk').releases[0]!.artifacts.map((a) => `${a.platform}/${a.arch}`);
    assert.deepEqual(desk, ['windows/amd64', 'darwin/arm64', 'darwin/amd64']);
  });

  test('optional fields take their defaults', async () => {
    await rm(path.join(dir, 'mirror.json'));
    await writeJson(path.join(dir, 'my-cli', 'product.json'), { name: 'my-cli', title: 'My CLI', layout: 'binary' });
    const artifacts = [
      { ...binaryArtifact('my_cli', '1.0.0', 'linux', 'amd64'), filename: 'my_cli_1.0.0_linux_amd64.tar.gz', content_type: undefined },
      { ...binaryArtifact('my_cli', '1.0.0', 'linux', 'arm64'), filename: 'my_cli_1.0.0_linux_arm64.bin', content_type: undefined },
    ];
    await writeJson(path.join(dir, 'my-cli', '1.0.0.json'), { version: '1.0.0', published_at: '2024-05-01T10:00:00+02:00', artifacts });
    const catalog = await loadCatalog(dir);
    assert.deepEqual(catalog.site, { title: 'Releases', baseUrl: '' });
    const product = productOf(catalog, 'my-cli');
    assert.equal(product.filePrefix, 'my_cli');
    assert.equal(product.description, '');
    assert.equal(product.homepage, null);
    const only = product.releases[0]!;
    assert.equal(only.notesUrl, null);
    assert.equal(only.status, 'active');
    assert.deepEqual(only.channels, ['stable', 'latest']);
    assert.deepEqual(only.artifacts.map((a) => a.contentType), ['application/gzip', 'application/octet-stream']);
  });

  test('explicit channels are kept and decide what a channel resolves to', async () => {
    await writeJson(path.join(dir, 'tool', '1.2.0.json'), release('1.2.0', [binaryArtifact('tool', '1.2.0', 'linux', 'amd64')], { channels: ['latest'] }));
    await writeJson(path.join(dir, 'tool', '1.3.0-rc.1.json'), release('1.3.0-rc.1', [binaryArtifact('tool', '1.3.0-rc.1', 'linux', 'amd64')]));
    const tool = productOf(await loadCatalog(dir), 'tool');
    assert.deepEqual(tool.releases.find((r) => r.version === '1.2.0')!.channels, ['latest']);
    assert.deepEqual(tool.releases.find((r) => r.version === '1.3.0-rc.1')!.channels, ['latest']);
    assert.equal(resolveChannel(tool, 'stable')?.version, '1.1.0');
    assert.equal(resolveChannel(tool, 'latest')?.version, '1.3.0-rc.1');
  });

  test('a yanked release stays in the catalog but no channel resolves to it', async () => {
    await editJson<ReleaseJson>(path.join(dir, 'tool', '1.1.0.json'), (data) => {
      data.status = 'yanked';
    });
    await writeJson(path.join(dir, 'tool', '1.2.0-rc.1.json'), release('1.2.0-rc.1', [binaryArtifact('tool', '1.2.0-rc.1', 'linux', 'amd64')], { status: 'yanked' }));
    const tool = productOf(await loadCatalog(dir), 'tool');
    assert.deepEqual(tool.releases.map((r) => [r.version, r.status]), [['1.0.0', 'active'], ['1.1.0', 'yanked'], ['1.2.0-rc.1', 'yanked']]);
    assert.equal(resolveChannel(tool, 'stable')?.version, '1.0.0');
    assert.equal(resolveChannel(tool, 'latest')?.version, '1.0.0');
  });

  test('when every release is yanked no channel resolves', async () => {
    for (const version of ['1.0.0', '1.1.0']) {
      await editJson<ReleaseJson>(path.join(dir, 'tool', `${version}.json`), (data) => {
        data.status = 'yanked';
      });
    }
    const tool = productOf(await loadCatalog(dir), 'tool');
    assert.equal(resolveChannel(tool, 'stable'), undefined);
    assert.equal(resolveChannel(tool, 'latest'), undefined);
  });

  test('dot files, leftover temporary files and the reserved registry directory are ignored', async () => {
    await writeFile(path.join(dir, '.DS_Store'), 'x');
    await writeFile(path.join(dir, 'tool', '.1.2.0.json.0b1c.tmp'), '{ half a file');
    await mkdir(path.join(dir, 'registry', '@alice', 'mail-agent'), { recursive: true });
    await writeFile(path.join(dir, 'registry', '@alice', 'mail-agent', '.1.0.0.json.0b1c.tmp'), '{ half a file');
    const catalog = await loadCatalog(dir);
    assert.deepEqual(catalog.products.map((p) => p.name), ['desk', 'tool']);
    assert.deepEqual(catalog.registry, []);
    assert.deepEqual(productOf(catalog, 'tool').releases.map((r) => r.version), ['1.0.0', '1.1.0']);
  });

  test('the same blob key with the same content in two releases is allowed', async () => {
    await editJson<ReleaseJson>(path.join(dir, 'tool', '1.1.0.json'), (data) => {
      const shared = binaryArtifact('tool', '1.0.0', 'linux', 'amd64');
      data.artifacts[0]!.blob = shared.blob;
      data.artifacts[0]!.sha256 = shared.sha256;
    });
    await loadCatalog(dir);
  });
});

describe('loadCatalog: bad inputs', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('mirror-load-bad-');
    await writeSmallStore(dir);
  });
  afterEach(() => removeDir(dir));

  const tool100 = () => path.join(dir, 'tool', '1.0.0.json');
  const editArtifact = (index: number, edit: (artifact: Record<string, unknown>) => void) =>
    editJson<ReleaseJson>(tool100(), (data) => edit(data.artifacts[index]!));

  test('a store directory that does not exist', async () => {
    const missing = path.join(dir, 'nope');
    const error = await loadError(missing);
    assert.deepEqual(error.problems, [{ file: missing, path: '', message: 'cannot read the manifest store (ENOENT)' }]);
  });

  test('invalid JSON in a release file', async () => {
    await writeFile(path.join(dir, 'tool', '1.1.0.json'), '{ "version": "1.1.0", ');
    await assertProblems(dir, [{ file: 'tool/1.1.0.json', path: '', message: /^not valid JSON \(/ }]);
  });

  test('invalid JSON in product.json and mirror.json', async () => {
    await writeFile(path.join(dir, 'tool', 'product.json'), "{ name: 'tool' }");
    await writeFile(path.join(dir, 'mirror.json'), '');
    await assertProblems(dir, [
      { file: 'mirror.json', path: '', message: /^not valid JSON/ },
      { file: 'tool/product.json', path: '', message: /^not valid JSON/ },
    ]);
  });

  test('a product directory without product.json', async () => {
    await rm(path.join(dir, 'tool', 'product.json'));
    await assertProblems(dir, [{ file: 'tool/product.json', path: '', message: /^missing$/ }]);
  });

  test('release files of a product without product.json are still validated', async () => {
    await rm(path.join(dir, 'tool', 'product.json'));
    await editArtifact(0, (artifact) => {
      artifact.size = -1;
    });
    await assertProblems(dir, [
      { file: 'tool/product.json', path: '', message: /^missing$/ },
      { file: 'tool/1.0.0.json', path: 'artifacts[0].size', message: /./ },
    ]);
  });

  test('a product name that differs from its directory', async () => {
    await writeJson(path.join(dir, 'tool', 'product.json'), { name: 'other', title: 'Tool', layout: 'binary', file_prefix: 'tool' });
    await assertProblems(dir, [{ file: 'tool/product.json', path: 'name', message: /^must equal the directory name `tool`, got `other`$/ }]);
  });

  test('a product name that is not a slug, an unknown layout and a bad file_prefix', async () => {
    await writeJson(path.join(dir, 'tool', 'product.json'), { name: 'Tool', title: '', layout: 'docker', file_prefix: 'Tool-' });
    await assertProblems(dir, [
      { file: 'tool/product.json', path: 'name', message: /lower-case letters, digits and dashes/ },
      { file: 'tool/product.json', path: 'title', message: /./ },
      { file: 'tool/product.json', path: 'layout', message: /./ },
      { file: 'tool/product.json', path: 'file_prefix', message: /lower-case letters, digits and underscores/ },
    ]);
  });

  test('unknown fields in every kind of file', async () => {
    await editJson(path.join(dir, 'mirror.json'), (data) => {
      data.theme = 'dark';
    });
    await editJson(path.join(dir, 'tool', 'product.json'), (data) => {
      data.owner = 'me';
    });
    await editJson<ReleaseJson>(tool100(), (data) => {
      data.changelog = 'x';
      data.artifacts[1]!.checksum = 'x';
    });
    await assertProblems(dir, [
      { file: 'mirror.json', path: 'theme', message: /^unknown field$/ },
      { file: 'tool/product.json', path: 'owner', message: /^unknown field$/ },
      { file: 'tool/1.0.0.json', path: 'changelog', message: /^unknown field$/ },
      { file: 'tool/1.0.0.json', path: 'artifacts[1].checksum', message: /^unknown field$/ },
    ]);
  });

  test('a base_url with a path or a trailing slash', async () => {
    await writeJson(path.join(dir, 'mirror.json'), { title: 'x', base_url: 'https://releases.example.com/' });
    await assertProblems(dir, [{ file: 'mirror.json', path: 'base_url', message: /origin/ }]);
  });

  for (const version of ['1.1', 'v1.1.0', '1.1.0+build.5', '01.1.0']) {
    test(`an invalid semantic version: ${version}`, async () => {
      await writeJson(path.join(dir, 'tool', `${version}.json`), release(version, [binaryArtifact('tool', '1.1.0', 'linux', 'amd64')]));
      await assertProblems(dir, [{ file: `tool/${version}.json`, path: 'version', message: /must be a semantic version/ }]);
    });
  }

  test('a version that differs from the file name', async () => {
    await writeJson(path.join(dir, 'tool', '1.1.0.json'), release('1.1.1', [binaryArtifact('tool', '1.1.1', 'linux', 'amd64')]));
    await assertProblems(dir, [{ file: 'tool/1.1.0.json', path: 'version', message: /^must match the file name `1\.1\.0\.json`, got `1\.1\.1`$/ }]);
  });

  for (const [name, sha256] of [
    ['too short', 'abc123'],
    ['upper-case hex', 'A'.repeat(64)],
    ['not hex', 'g'.repeat(64)],
    ['65 characters', 'a'.repeat(65)],
  ] as const) {
    test(`a bad sha256: ${name}`, async () => {
      await editArtifact(2, (artifact) => {
        artifact.sha256 = sha256;
      });
      await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[2].sha256', message: /^not a 64-character lower-case hex string$/ }]);
    });
  }

  for (const [name, size] of [
    ['negative', -1],
    ['not an integer', 10.5],
    ['a string', '10'],
  ] as const) {
    test(`a bad size: ${name}`, async () => {
      await editArtifact(0, (artifact) => {
        artifact.size = size;
      });
      await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[0].size', message: /./ }]);
    });
  }

  test('an unknown platform', async () => {
    await editArtifact(1, (artifact) => {
      artifact.platform = 'plan9';
    });
    await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[1].platform', message: /^unknown platform `plan9`; expected one of linux, darwin, windows$/ }]);
  });

  test('an unknown architecture', async () => {
    await editArtifact(1, (artifact) => {
      artifact.arch = 'mips';
    });
    await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[1].arch', message: /^unknown architecture `mips`; expected one of amd64, arm64, 386$/ }]);
  });

  test('platform names are case-sensitive', async () => {
    await editArtifact(0, (artifact) => {
      artifact.platform = 'Linux';
    });
    await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[0].platform', message: /unknown platform `Linux`/ }]);
  });

  for (const filename of ['sub/tool_1.0.0_linux_amd64.zip', '../tool_1.0.0_linux_amd64.zip', '..', '.tool_1.0.0_linux_amd64.zip', 'tool 1.0.0.zip', '']) {
    test(`an unsafe filename: ${JSON.stringify(filename)}`, async () => {
      await editArtifact(0, (artifact) => {
        artifact.filename = filename;
      });
      await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[0].filename', message: /must be a plain file name/ }]);
    });
  }

  for (const blob of ['releases/../../etc/passwd', '/releases/1/0/0/tool.zip', 'releases//tool.zip', 'releases/1/0/0/', '..', 'releases/.hidden/tool.zip']) {
    test(`an unsafe blob key: ${JSON.stringify(blob)}`, async () => {
      await editArtifact(0, (artifact) => {
        artifact.blob = blob;
      });
      await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[0].blob', message: /no `\.\.`, no leading `\/`/ }]);
    });
  }

  test('two artifacts for one platform and architecture', async () => {
    await editJson<ReleaseJson>(tool100(), (data) => {
      data.artifacts.push({ ...binaryArtifact('tool', '1.0.0', 'linux', 'amd64'), filename: 'tool_1.0.0_linux_amd64.tar.gz', blob: 'releases/1/0/0/tool_1.0.0_linux_amd64.tar.gz' });
    });
    await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[3]', message: /^a second artifact for linux\/amd64$/ }]);
  });

  test('two artifacts for one target spelled with different aliases', async () => {
    await editJson<ReleaseJson>(tool100(), (data) => {
      data.artifacts.push({ ...binaryArtifact('tool', '1.0.0', 'darwin', 'arm64'), platform: 'macos', arch: 'aarch64', filename: 'tool_1.0.0_darwin_arm64.tar.gz', blob: 'releases/1/0/0/x.tar.gz' });
    });
    await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[3]', message: /^a second artifact for darwin\/arm64$/ }]);
  });

  test('the same filename listed twice', async () => {
    await editJson<ReleaseJson>(tool100(), (data) => {
      data.artifacts.push({ ...data.artifacts[0]!, blob: 'releases/1/0/0/copy.zip' });
    });
    await assertProblems(dir, [
      { file: 'tool/1.0.0.json', path: 'artifacts[3]', message: /^a second artifact for linux\/amd64$/ },
      { file: 'tool/1.0.0.json', path: 'artifacts[3].filename', message: /^`tool_1\.0\.0_linux_amd64\.zip` is listed twice$/ },
    ]);
  });

  for (const [name, filename] of [
    ['another product prefix', 'other_1.0.0_windows_amd64.zip'],
    ['another version', 'tool_1.0.1_windows_amd64.zip'],
    ['another architecture', 'tool_1.0.0_windows_arm64.zip'],
    ['an alias instead of the canonical platform', 'tool_1.0.0_win_amd64.zip'],
    ['no extension', 'tool_1.0.0_windows_amd64'],
    ['no dot before the extension', 'tool_1.0.0_windows_amd64zip'],
  ] as const) {
    test(`a binary-layout filename with ${name}`, async () => {
      await editArtifact(2, (artifact) => {
        artifact.filename = filename;
      });
      await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[2].filename', message: new RegExp(`^must start with \`tool_1\\.0\\.0_windows_amd64\\.\`, got \`${filename.replaceAll('.', '\\.')}\`$`) }]);
    });
  }

  test('the binary-layout filename follows file_prefix when it is set', async () => {
    await writeJson(path.join(dir, 'tool', 'product.json'), { name: 'tool', title: 'Tool', layout: 'binary', file_prefix: 'tool_cli' });
    await rm(path.join(dir, 'tool', '1.0.0.json'));
    await assertProblems(dir, [{ file: 'tool/1.1.0.json', path: 'artifacts[0].filename', message: /^must start with `tool_cli_1\.1\.0_linux_amd64\.`/ }]);
  });

  test('a prerelease in channel stable', async () => {
    await writeJson(path.join(dir, 'tool', '1.2.0-rc.1.json'), release('1.2.0-rc.1', [binaryArtifact('tool', '1.2.0-rc.1', 'linux', 'amd64')], { channels: ['stable', 'latest'] }));
    await assertProblems(dir, [{ file: 'tool/1.2.0-rc.1.json', path: 'channels', message: /^a prerelease cannot be in channel `stable`$/ }]);
  });

  test('an unknown channel', async () => {
    await editJson<ReleaseJson>(tool100(), (data) => {
      data.channels = ['stable', 'beta'];
    });
    await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'channels[1]', message: /./ }]);
  });

  test('an unknown status', async () => {
    await editJson<ReleaseJson>(tool100(), (data) => {
      (data as Record<string, unknown>).status = 'deleted';
    });
    await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'status', message: /./ }]);
  });

  test('a release without artifacts', async () => {
    await editJson<ReleaseJson>(tool100(), (data) => {
      data.artifacts = [];
    });
    await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts', message: /^a release needs at least one artifact$/ }]);
  });

  test('a release without required fields', async () => {
    await writeJson(tool100(), { version: '1.0.0' });
    await assertProblems(dir, [
      { file: 'tool/1.0.0.json', path: 'published_at', message: /./ },
      { file: 'tool/1.0.0.json', path: 'artifacts', message: /./ },
    ]);
  });

  for (const publishedAt of ['2024-01-01', 'yesterday', '2024-13-01T00:00:00Z', '2024-01-01 10:00:00Z', '']) {
    test(`an invalid published_at: ${JSON.stringify(publishedAt)}`, async () => {
      await editJson<ReleaseJson>(tool100(), (data) => {
        data.published_at = publishedAt;
      });
      await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'published_at', message: /./ }]);
    });
  }

  test('one blob key with different sha256 in two releases of one product', async () => {
    await editJson<ReleaseJson>(path.join(dir, 'tool', '1.1.0.json'), (data) => {
      data.artifacts[0]!.blob = binaryArtifact('tool', '1.0.0', 'linux', 'amd64').blob;
    });
    const [problem] = await assertProblems(dir, [{ file: 'tool/1.1.0.json', path: 'artifacts[0].blob', message: /^`releases\/1\/0\/0\/tool_1\.0\.0_linux_amd64\.zip` is also used by .* with other content$/ }]);
    assert.ok(problem!.message.includes(path.join(dir, 'tool', '1.0.0.json')), problem!.message);
  });

  test('one blob key with different sha256 in two products', async () => {
    await editJson<ReleaseJson>(path.join(dir, 'desk', '2.0.0.json'), (data) => {
      data.artifacts[0]!.blob = binaryArtifact('tool', '1.1.0', 'linux', 'amd64').blob;
    });
    // desk sorts before tool, so the tool release is the second user of the key.
    await assertProblems(dir, [{ file: 'tool/1.1.0.json', path: 'artifacts[0].blob', message: /is also used by .*desk.*2\.0\.0\.json with other content$/ }]);
  });

  for (const [platform, arch] of [
    ['linux', 'amd64'],
    ['windows', 'arm64'],
    ['windows', '386'],
    ['darwin', '386'],
  ] as const) {
    test(`a ${platform}/${arch} artifact in the agent layout`, async () => {
      await editJson<ReleaseJson>(path.join(dir, 'desk', '2.0.0.json'), (data) => {
        data.artifacts.push({ ...agentArtifact('2.0.0', 'windows', 'amd64'), platform, arch, filename: 'Desk-extra.bin', blob: 'agent/extra/Desk-extra.bin' });
      });
      await assertProblems(dir, [
        { file: 'desk/2.0.0.json', path: 'artifacts[2]', message: new RegExp(`^the agent layout publishes windows/amd64, darwin/arm64 and darwin/amd64 only, got ${platform}/${arch}$`) },
      ]);
    });
  }

  test('the agent layout does not constrain file names', async () => {
    await editJson<ReleaseJson>(path.join(dir, 'desk', '2.0.0.json'), (data) => {
      data.artifacts[0]!.filename = 'Anything-at-all.exe';
    });
    await loadCatalog(dir);
  });

  test('two products with the agent layout', async () => {
    await writeJson(path.join(dir, 'desk2', 'product.json'), { name: 'desk2', title: 'Desk 2', layout: 'agent' });
    await assertProblems(dir, [{ file: 'desk2/product.json', path: 'layout', message: /^only one product can use the agent layout; `desk` already does$/ }]);
  });

  test('a stray file in a product directory', async () => {
    await writeFile(path.join(dir, 'tool', 'README.md'), '# tool');
    await assertProblems(dir, [{ file: 'tool/README.md', path: '', message: /^unexpected file/ }]);
  });

  test('a stray file at the top of the store', async () => {
    await writeFile(path.join(dir, 'notes.txt'), 'x');
    await assertProblems(dir, [{ file: 'notes.txt', path: '', message: /^unexpected file/ }]);
  });

  test('a directory inside a product directory', async () => {
    await mkdir(path.join(dir, 'tool', 'old'));
    await assertProblems(dir, [{ file: 'tool/old', path: '', message: /^unexpected file/ }]);
  });

  test('package settings: an unknown output, a bad package name, a bad apt component, each at its JSON path', async () => {
    await editJson(path.join(dir, 'tool', 'product.json'), (data) => {
      data.packages = { outputs: ['homebrew', 'snap'], name: 'Tool Name', apt: { component: 'Main Stuff' } };
    });
    await assertProblems(dir, [
      { file: 'tool/product.json', path: 'packages.outputs[1]', message: /install-script/ },
      { file: 'tool/product.json', path: 'packages.name', message: /^must be lower-case letters, digits and `\+\.-`/ },
      { file: 'tool/product.json', path: 'packages.apt.component', message: /^must be lower-case letters, digits and dashes$/ },
    ]);
  });

  test('package settings: package-manager outputs on a desktop-agent product', async () => {
    await editJson(path.join(dir, 'desk', 'product.json'), (data) => {
      data.packages = { outputs: ['scoop'] };
    });
    await assertProblems(dir, [{ file: 'desk/product.json', path: 'packages.outputs', message: /^package-manager outputs are for binary-layout products$/ }]);
  });

  test('package settings: an output listed twice', async () => {
    await editJson(path.join(dir, 'tool', 'product.json'), (data) => {
      data.packages = { outputs: ['scoop', 'scoop'] };
    });
    await assertProblems(dir, [{ file: 'tool/product.json', path: 'packages.outputs', message: /^lists an output twice$/ }]);
  });

  test('a .deb of a product with the apt output needs the control fields release add reads from it', async () => {
    await editJson(path.join(dir, 'tool', 'product.json'), (data) => {
      data.packages = { outputs: ['apt'] };
    });
    await editJson<ReleaseJson>(tool100(), (data) => {
      data.artifacts.push({ ...binaryArtifact('tool', '1.0.0', 'linux', 'amd64'), filename: 'tool_1.0.0_linux_amd64.deb', blob: 'releases/1/0/0/tool_1.0.0_linux_amd64.deb' });
    });
    await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[3]', message: /^a \.deb needs its control fields/ }]);
  });

  test('an archive and a .deb for one platform sit side by side; two .debs for it do not', async () => {
    await editJson<ReleaseJson>(tool100(), (data) => {
      const deb = { ...binaryArtifact('tool', '1.0.0', 'linux', 'amd64'), filename: 'tool_1.0.0_linux_amd64.deb', blob: 'releases/1/0/0/tool_1.0.0_linux_amd64.deb' };
      data.artifacts.push(deb, { ...deb, filename: 'tool_1.0.0_linux_amd64.2.deb', blob: 'releases/1/0/0/tool_1.0.0_linux_amd64.2.deb' });
    });
    await assertProblems(dir, [{ file: 'tool/1.0.0.json', path: 'artifacts[4]', message: /^a second \.deb artifact for linux\/amd64$/ }]);
  });

  test('every problem of several broken files is reported in one LoadError', async () => {
    await writeFile(path.join(dir, 'notes.txt'), 'x');
    await editJson(path.join(dir, 'mirror.json'), (data) => {
      data.theme = 'dark';
    });
    await editJson<ReleaseJson>(tool100(), (data) => {
      data.artifacts[0]!.size = -5;
      data.artifacts[2]!.sha256 = 'F'.repeat(64);
    });
    await writeFile(path.join(dir, 'tool', '1.1.0.json'), '{');
    await editJson<ReleaseJson>(path.join(dir, 'desk', '2.0.0.json'), (data) => {
      data.artifacts.push({ ...agentArtifact('2.0.0', 'windows', 'amd64'), platform: 'linux', filename: 'desk.deb', blob: 'agent/linux/desk.deb' });
    });
    await writeJson(path.join(dir, 'tool', '1.2.0-rc.1.json'), release('1.2.0-rc.1', [binaryArtifact('tool', '1.2.0-rc.1', 'linux', 'arm64')], { channels: ['stable'] }));

    const problems = await assertProblems(dir, [
      { file: 'notes.txt', path: '', message: /^unexpected file/ },
      { file: 'mirror.json', path: 'theme', message: /^unknown field$/ },
      { file: 'tool/1.0.0.json', path: 'artifacts[0].size', message: /./ },
      { file: 'tool/1.0.0.json', path: 'artifacts[2].sha256', message: /^not a 64-character lower-case hex string$/ },
      { file: 'tool/1.1.0.json', path: '', message: /^not valid JSON/ },
      { file: 'desk/2.0.0.json', path: 'artifacts[2]', message: /got linux\/amd64$/ },
      { file: 'tool/1.2.0-rc.1.json', path: 'channels', message: /^a prerelease cannot be in channel `stable`$/ },
    ]);
    // Files are reported by their full path.
    for (const problem of problems) assert.ok(path.isAbsolute(problem.file) && problem.file.startsWith(dir), problem.file);
  });

  test('the message counts the problems and lists each as `<file>: <path>: <message>`', async () => {
    await writeFile(path.join(dir, 'notes.txt'), 'x');
    await editJson<ReleaseJson>(tool100(), (data) => {
      data.artifacts[2]!.sha256 = 'abc';
    });
    const error = await loadError(dir);
    assert.equal(error.name, 'LoadError');
    const [heading, ...lines] = error.message.split('\n');
    assert.equal(heading, '2 problems in the manifest store:');
    assert.deepEqual(lines.sort(), [
      `${path.join(dir, 'notes.txt')}: unexpected file: the store holds mirror.json and one directory per product`,
      `${path.join(dir, 'tool', '1.0.0.json')}: artifacts[2].sha256: not a 64-character lower-case hex string`,
    ].sort());
  });

  test('a single problem is counted in the singular', async () => {
    await writeFile(path.join(dir, 'notes.txt'), 'x');
    const error = await loadError(dir);
    assert.match(error.message, /^1 problem in the manifest store:\n/);
  });
});

describe('formatProblem', () => {
  test('joins file, JSON path and message', () => {
    assert.equal(formatProblem({ file: '/s/tool/1.0.0.json', path: 'artifacts[2].sha256', message: 'bad' }), '/s/tool/1.0.0.json: artifacts[2].sha256: bad');
  });

  test('leaves out an empty JSON path', () => {
    assert.equal(formatProblem({ file: '/s/tool/product.json', path: '', message: 'missing' }), '/s/tool/product.json: missing');
  });
});

describe('mirror build with a bad store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('mirror-build-bad-');
    await writeSmallStore(path.join(dir, 'releases'));
  });
  afterEach(() => removeDir(dir));

  test('exits 1, prints every problem on stderr and publishes nothing', async () => {
    const store = path.join(dir, 'releases');
    await writeFile(path.join(store, 'notes.txt'), 'x');
    await editJson<ReleaseJson>(path.join(store, 'tool', '1.0.0.json'), (data) => {
      data.artifacts[2]!.sha256 = 'abc';
    });
    const result = await runCli(['build', '--releases', store, '--out', path.join(dir, 'site')]);
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /2 problems in the manifest store:/);
    assert.ok(result.stderr.includes(`${path.join(store, 'tool', '1.0.0.json')}: artifacts[2].sha256: not a 64-character lower-case hex string`), result.stderr);
    assert.ok(result.stderr.includes(`${path.join(store, 'notes.txt')}: unexpected file`), result.stderr);
    assert.equal(result.stdout, '');
    await assert.rejects(stat(path.join(dir, 'site')), { code: 'ENOENT' });
  });

  test('the same store without the problems builds (exit 0)', async () => {
    const result = await runCli(['build', '--releases', path.join(dir, 'releases'), '--out', path.join(dir, 'site')]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^built 2 products, 3 releases/);
    await stat(path.join(dir, 'site'));
  });

  test('the sample store copied as is builds (exit 0)', async () => {
    await copySampleStore(path.join(dir, 'sample'), { releases: true });
    const result = await runCli(['build', '--releases', path.join(dir, 'sample'), '--out', path.join(dir, 'site')]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^built 3 products, 10 releases/);
  });
});
