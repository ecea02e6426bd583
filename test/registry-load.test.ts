// Loading registry packages from `releases/registry/@<scope>/<name>/<version>.json`: order, the
// store without a registry, one version by its address, and every problem reported at once.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { LoadError, formatProblem, loadCatalog } from '../generator/load/index.ts';
import { loadRegistry, loadRegistryVersion } from '../generator/load/registry.ts';
import { latestVersion } from '../generator/model/registry.ts';
import { agentJson, versionFilePath, versionJson, writeVersionFile } from './helpers/registry-store.ts';
import { binaryArtifact, removeDir, tempDir, writeSmallStore } from './helpers/store.ts';

/** Every problem the loader reports, formatted, relative to the store. */
async function problemsOf(load: Promise<unknown>, dir: string): Promise<string[]> {
  try {
    await load;
  } catch (error) {
    if (!(error instanceof LoadError)) throw error;
    return error.problems.map((problem) => formatProblem({ ...problem, file: path.relative(dir, problem.file) }));
  }
  assert.fail('expected a LoadError');
}

describe('loadRegistry: a valid registry', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('mirror-registry-load-');
  });
  afterEach(() => removeDir(dir));

  test('a store without registry/ has an empty registry, in loadCatalog too', async () => {
    assert.deepEqual(await loadRegistry(dir), []);
    await writeSmallStore(dir);
    assert.deepEqual((await loadCatalog(dir)).registry, []);
  });

  test('packages are sorted by scope then name, versions by semver precedence, unpublished ones included', async () => {
    for (const [scope, name] of [['zed', 'alpha'], ['alice', 'zeta'], ['alice', 'mail-agent'], ['alice-co', 'a']] as const) {
      await writeVersionFile(dir, versionJson(scope, name, '1.0.0'));
    }
    for (const version of ['1.10.0', '1.2.0', '1.2.0-beta.1', '1.9.9']) await writeVersionFile(dir, versionJson('alice', 'mail-agent', version));
    await writeVersionFile(dir, versionJson('alice', 'mail-agent', '2.0.0', { status: 'unpublished', unpublished_at: '2026-01-02T00:00:00.000Z' }));

    const registry = await loadRegistry(dir);
    assert.deepEqual(registry.map((pkg) => `@${pkg.scope}/${pkg.name}`), ['@alice/mail-agent', '@alice/zeta', '@alice-co/a', '@zed/alpha']);
    const mail = registry[0]!;
    assert.deepEqual(mail.versions.map((version) => version.version), ['1.0.0', '1.2.0-beta.1', '1.2.0', '1.9.9', '1.10.0', '2.0.0']);
    assert.equal(mail.versions.at(-1)!.status, 'unpublished');
    assert.equal(mail.versions.at(-1)!.unpublishedAt, '2026-01-02T00:00:00.000Z');
    assert.equal(latestVersion(mail)!.version, '1.10.0', 'the newest active version is the latest');
    assert.deepEqual((await loadCatalog(dir)).registry, registry, 'loadCatalog reads the same registry');
  });

  test('a version carries its file\'s facts and the agent with its defaults', async () => {
    const data = versionJson('alice', 'mail-agent', '1.0.0', { agent: { name: 'mail-agent', version: '1.0.0', description: 'Mail', category: 'communication', runtime: 'node' } });
    await writeVersionFile(dir, data);
    const [pkg] = await loadRegistry(dir);
    assert.deepEqual(pkg!.versions[0], {
      scope: 'alice',
      name: 'mail-agent',
      version: '1.0.0',
      publishedAt: '2026-01-01T00:00:00.000Z',
      status: 'active',
      unpublishedAt: undefined,
      tarball: data.tarball,
      author: data.author,
      agent: {
        name: 'mail-agent',
        version: '1.0.0',
        description: 'Mail',
        category: 'communication',
        tags: [],
        license: null,
        repository: null,
        permissions: { filesystem: false, network: false, execute_commands: false },
        mcp_servers: [],
        examples: [],
      },
      readme: data.readme,
    });
  });

  test('dot files (the writer\'s temporary files) are skipped; an empty package directory is no package', async () => {
    await writeVersionFile(dir, versionJson('alice', 'mail-agent', '1.0.0'));
    await writeFile(versionFilePath(dir, 'alice', 'mail-agent', '.1.1.0.json.1234.tmp'), '{ half');
    await writeFile(path.join(dir, 'registry', '.DS_Store'), 'x');
    await mkdir(path.join(dir, 'registry', '@alice', 'empty'));
    const registry = await loadRegistry(dir);
    assert.deepEqual(registry.map((pkg) => [pkg.name, pkg.versions.map((version) => version.version)]), [['mail-agent', ['1.0.0']]]);
  });

  test('loadRegistryVersion reads one version; undefined for one the store lacks or an address that is not a name', async () => {
    await writeVersionFile(dir, versionJson('alice', 'mail-agent', '1.0.0'));
    assert.equal((await loadRegistryVersion(dir, 'alice', 'mail-agent', '1.0.0'))?.version, '1.0.0');
    assert.equal(await loadRegistryVersion(dir, 'alice', 'mail-agent', '1.0.1'), undefined);
    assert.equal(await loadRegistryVersion(dir, 'bob', 'mail-agent', '1.0.0'), undefined);
    for (const [scope, name, version] of [['..', 'x', '1.0.0'], ['@alice', 'mail-agent', '1.0.0'], ['alice', '../alice/mail-agent', '1.0.0'], ['alice', 'mail-agent', '1.0'], ['alice', 'mail-agent', '../1.0.0']]) {
      assert.equal(await loadRegistryVersion(dir, scope!, name!, version!), undefined, `${scope}/${name}/${version}`);
    }
  });

  test('loadRegistryVersion throws LoadError for an invalid file', async () => {
    await writeVersionFile(dir, versionJson('alice', 'mail-agent', '1.0.0', { published_at: 'yesterday' }));
    assert.deepEqual(await problemsOf(loadRegistryVersion(dir, 'alice', 'mail-agent', '1.0.0'), dir), ['registry/@alice/mail-agent/1.0.0.json: published_at: Invalid ISO datetime']);
  });
});

describe('loadRegistry: problems', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('mirror-registry-bad-');
  });
  afterEach(() => removeDir(dir));

  test('every problem of every file at once, each with its file and JSON path', async () => {
    const broken = versionFilePath(dir, 'alice', 'broken', '1.0.0.json');
    await mkdir(path.dirname(broken), { recursive: true });
    await writeFile(broken, '{ "scope": ');
    await writeVersionFile(dir, versionJson('bob', 'mail-agent', '1.0.0'), { scope: 'alice' });
    await writeVersionFile(dir, versionJson('alice', 'other', '1.0.0'), { name: 'mail-agent', file: '1.0.1.json' });
    await writeVersionFile(dir, versionJson('alice', 'cat', '1.0.0', { agent: agentJson('cat', '1.0.0', { category: 'games' }) }));
    await writeVersionFile(dir, versionJson('alice', 'semver', '1.2', { agent: agentJson('semver', '1.2') }));
    const badHash = versionJson('alice', 'hash', '1.0.0');
    await writeVersionFile(dir, { ...badHash, tarball: { ...(badHash.tarball as object), sha256: 'ABC' }, extra: 1 });
    await writeVersionFile(dir, versionJson('alice', 'gone', '1.0.0', { status: 'unpublished' }));
    await writeVersionFile(dir, versionJson('alice', 'agent', '1.0.0', { agent: agentJson('agent-x', '1.0.1', { tags: 'many', surprise: true }) }));
    await writeVersionFile(dir, versionJson('alice', 'owner', '1.0.0', { author: { username: 'mallory', display_name: 'M', avatar_url: '', github_id: 2 } }));

    assert.deepEqual(await problemsOf(loadRegistry(dir), dir), [
      'registry/@alice/agent/1.0.0.json: agent: field \'tags\' must be an array, got string',
      'registry/@alice/agent/1.0.0.json: agent.name: must equal the package name `agent`, got `agent-x`',
      'registry/@alice/agent/1.0.0.json: agent.version: must equal the version `1.0.0`, got `1.0.1`',
      `registry/@alice/broken/1.0.0.json: not valid JSON (${jsonError('{ "scope": ')})`,
      'registry/@alice/cat/1.0.0.json: agent: unknown category \'games\'; expected one of productivity, devtools, communication, data, research, security, finance, other',
      'registry/@alice/gone/1.0.0.json: unpublished_at: missing: an unpublished version records when it was unpublished',
      'registry/@alice/hash/1.0.0.json: tarball.sha256: not a 64-character lower-case hex string',
      'registry/@alice/hash/1.0.0.json: extra: unknown field',
      'registry/@alice/mail-agent/1.0.0.json: scope: must match the directory `@alice`, got `bob`',
      'registry/@alice/mail-agent/1.0.1.json: name: must match the directory `mail-agent`, got `other`',
      'registry/@alice/mail-agent/1.0.1.json: version: must match the file name `1.0.1.json`, got `1.0.0`',
      'registry/@alice/owner/1.0.0.json: author.username: must be the scope\'s owner `alice`: only they publish under @alice, got `mallory`',
      'registry/@alice/semver/1.2.json: version: must be a semantic version such as 1.12.2 or 1.13.0-beta.1',
      'registry/@alice/semver/1.2.json: agent: version \'1.2\' is not valid semver',
    ]);
  });

  test('what is not a scope, package or version file is reported', async () => {
    await writeVersionFile(dir, versionJson('alice', 'mail-agent', '1.0.0'));
    await writeFile(path.join(dir, 'registry', 'README.md'), 'x');
    await mkdir(path.join(dir, 'registry', 'bob', 'agent'), { recursive: true });
    await mkdir(path.join(dir, 'registry', '@Bob'), { recursive: true });
    await writeFile(path.join(dir, 'registry', '@alice', 'notes.txt'), 'x');
    await writeFile(versionFilePath(dir, 'alice', 'mail-agent', '1.0.0.yaml'), 'x');
    const problems = await problemsOf(loadRegistry(dir), dir);
    // In the order of the walk: names sorted by code unit, so `@Bob` before `@alice` before `README.md`.
    assert.deepEqual(problems.map((problem) => problem.replace(/: unexpected entry: .*/, '')), ['registry/@Bob', 'registry/@alice/mail-agent/1.0.0.yaml', 'registry/@alice/notes.txt', 'registry/README.md', 'registry/bob']);
    assert.match(problems[0]!, /registry\/ holds one `@<scope>` directory per scope/);
    assert.match(problems[1]!, /a package directory holds <version>.json files/);
    assert.match(problems[2]!, /a scope directory holds one directory per package/);
  });

  test('loadCatalog reports registry problems with the products\' and checks blob keys across both', async () => {
    await writeSmallStore(dir);
    const artifact = binaryArtifact('tool', '1.0.0', 'linux', 'amd64');
    const clash = versionJson('alice', 'mail-agent', '1.0.0');
    await writeVersionFile(dir, { ...clash, tarball: { ...(clash.tarball as object), blob: artifact.blob } });
    await writeVersionFile(dir, versionJson('alice', 'cat', '1.0.0', { agent: agentJson('cat', '1.0.0', { category: 'games' }) }));
    await writeFile(path.join(dir, 'tool', '1.1.0.json'), '[]');
    const problems = await problemsOf(loadCatalog(dir), dir);
    assert.deepEqual(problems, [
      'tool/1.1.0.json: Invalid input: expected object, received array',
      'registry/@alice/cat/1.0.0.json: agent: unknown category \'games\'; expected one of productivity, devtools, communication, data, research, security, finance, other',
      `registry/@alice/mail-agent/1.0.0.json: tarball.blob: \`${artifact.blob}\` is also used by ${path.join(dir, 'tool', '1.0.0.json')} with other content`,
    ]);
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}
