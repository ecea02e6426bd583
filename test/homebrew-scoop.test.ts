// The Homebrew formula and the Scoop manifest, checked by what reads them: Ruby, with a stand-in for
// Homebrew's formula DSL that evaluates the formula on each (os, cpu) and runs its install and test
// steps; and Scoop's own JSON schema (schemas/scoop-manifest.schema.json is ScoopInstaller/Scoop's
// schema.json as of commit 7e3dc73, unchanged). Both must name the latest stable release's archives.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { loadCatalog } from '../generator/load/index.ts';
import { loadTemplates } from '../generator/load/templates.ts';
import { resolveChannel, type Artifact, type Catalog, type Product, type Release } from '../generator/model/catalog.ts';
import type { Arch, Platform } from '../generator/model/platforms.ts';
import { render, type RenderedSite } from '../generator/render/index.ts';
import { formulaClassName, homebrewDesc, renderHomebrewFormula } from '../generator/render/packages/homebrew.ts';
import { LOCAL_ORIGIN } from '../generator/render/packages/origin.ts';
import { renderScoopManifest } from '../generator/render/packages/scoop.ts';
import type { LayoutOutput } from '../generator/render/binary.ts';
import { SAMPLE_BLOBS } from './helpers/sample-site.ts';
import { REPO, SAMPLE_RELEASES, removeDir, sha256, tempDir } from './helpers/store.ts';

const run = promisify(execFile);

/** What the stand-in records for one machine. */
interface Evaluation {
  os: 'macos' | 'linux';
  cpu: 'intel' | 'arm';
  class: string;
  desc: string;
  homepage: string;
  version: string;
  license: string | null;
  urls: string[];
  sha256s: string[];
}

/** The parts of a Scoop manifest these tests read. */
interface ScoopManifest {
  version: string;
  license: string;
  bin: string;
  architecture: Record<string, { url: string; hash: string }>;
  checkver: { url: string; jsonpath: string };
  autoupdate: { architecture: Record<string, { url: string }>; hash: { url: string } };
}

const MACHINES: { os: Evaluation['os']; cpu: Evaluation['cpu']; platform: Platform; arch: Arch }[] = [
  { os: 'macos', cpu: 'intel', platform: 'darwin', arch: 'amd64' },
  { os: 'macos', cpu: 'arm', platform: 'darwin', arch: 'arm64' },
  { os: 'linux', cpu: 'intel', platform: 'linux', arch: 'amd64' },
  { os: 'linux', cpu: 'arm', platform: 'linux', arch: 'arm64' },
];

// Loads the formula once per machine, the way Homebrew's on_macos/on_linux and on_intel/on_arm
// blocks run only on their own system, and records the url and sha256 each machine is given.
// With `install`, it then installs from the current directory into a prefix and runs `test do`.
const HOMEBREW_STAND_IN = String.raw`
require "json"
require "fileutils"
require "pathname"

class BinPath < Pathname
  def install(*paths)
    mkpath
    paths.each do |path|
      raise "bin.install: #{path} is not in the archive" unless File.exist?(path)
      FileUtils.mv(path, join(File.basename(path)))
    end
  end
end

class Formula
  SYSTEM = {}
  RECORD = {}

  class << self
    def inherited(subclass)
      super
      RECORD[:class] = subclass.name
    end

    def desc(text) = RECORD[:desc] = text
    def homepage(url) = RECORD[:homepage] = url
    def version(text) = RECORD[:version] = text
    def license(text) = RECORD[:license] = text
    def url(value) = RECORD[:urls] << value
    def sha256(value) = RECORD[:sha256s] << value
    def depends_on(*) = nil
    def test(&block) = RECORD[:test] = block

    def on_macos
      yield if SYSTEM[:os] == "macos"
    end

    def on_linux
      yield if SYSTEM[:os] == "linux"
    end

    def on_intel
      yield if SYSTEM[:cpu] == "intel"
    end

    def on_arm
      yield if SYSTEM[:cpu] == "arm"
    end

    def evaluate(file, os, cpu)
      SYSTEM.replace(os: os, cpu: cpu)
      RECORD.replace(urls: [], sha256s: [], license: nil)
      load file
      formula = Object.const_get(RECORD[:class])
      Object.send(:remove_const, RECORD[:class])
      formula
    end
  end

  def initialize(prefix)
    @prefix = Pathname(prefix)
  end

  def bin = BinPath.new(@prefix.join("bin"))
  def version = RECORD[:version]

  def shell_output(command, status = 0)
    output = IO.popen(["/bin/sh", "-c", command], err: [:child, :out], &:read)
    raise "#{command} exited with #{$?.exitstatus}, expected #{status}" unless $?.exitstatus == status
    output
  end

  def assert_match(expected, actual)
    pattern = expected.is_a?(Regexp) ? expected : Regexp.new(Regexp.escape(expected))
    raise "expected #{actual.inspect} to match #{pattern.inspect}" unless pattern.match?(actual)
  end
end

file, mode, *rest = ARGV
if mode == "install"
  os, cpu, prefix = rest
  formula = Formula.evaluate(file, os, cpu).new(prefix)
  formula.install
  formula.instance_exec(&Formula::RECORD[:test])
  puts JSON.generate(installed: Dir.children(formula.bin).sort)
else
  evaluations = [%w[macos intel], %w[macos arm], %w[linux intel], %w[linux arm]].map do |os, cpu|
    Formula.evaluate(file, os, cpu)
    { os: os, cpu: cpu, **Formula::RECORD.except(:test) }
  end
  puts JSON.generate(evaluations)
end
`;

let catalog: Catalog;
let product: Product;
let stable: Release;
let site: RenderedSite;
let dir: string;

before(async () => {
  catalog = await loadCatalog(SAMPLE_RELEASES);
  product = catalog.products.find((candidate) => candidate.name === 'agent-as-code')!;
  stable = resolveChannel(product, 'stable')!;
  site = render(catalog, await loadTemplates());
  dir = await tempDir('homebrew-scoop-');
  await writeFile(path.join(dir, 'stand-in.rb'), HOMEBREW_STAND_IN);
});
after(() => removeDir(dir));

function archive(release: Release, platform: Platform, arch: Arch): Artifact {
  const found = release.artifacts.find((artifact) => artifact.format === 'archive' && artifact.platform === platform && artifact.arch === arch);
  assert.ok(found, `the sample's ${release.version} has a ${platform}/${arch} archive`);
  return found;
}

/** The bytes the rendered site serves at an absolute URL of the sample, through its route table. */
async function served(url: string): Promise<{ sha256: string; blob: string } | { body: string }> {
  assert.ok(url.startsWith(`${LOCAL_ORIGIN}/`), `${url} is on the sample's origin`);
  const target = site.routes.paths[url.slice(LOCAL_ORIGIN.length)];
  assert.ok(target, `${url} has a route`);
  if (target.type === 'blob') return { sha256: sha256(await readFile(path.join(SAMPLE_BLOBS, target.blob))), blob: target.blob };
  assert.equal(target.type, 'file', `${url} is a file or a blob`);
  const file = site.files.find((candidate) => candidate.key === (target.type === 'file' ? target.key : ''));
  assert.ok(file, `${url}'s file is rendered`);
  return { body: String(file.body) };
}

function onlyFile(output: LayoutOutput): { key: string; body: string } {
  assert.equal(output.files.length, 1);
  const [file] = output.files;
  assert.deepEqual(Object.keys(output.paths), [`/${file!.key}`]);
  return { key: file!.key, body: String(file!.body) };
}

async function evaluateFormula(body: string): Promise<Evaluation[]> {
  const file = path.join(dir, `formula-${Math.random().toString(36).slice(2)}.rb`);
  await writeFile(file, body);
  const syntax = await run('ruby', ['-c', file]);
  assert.match(syntax.stdout, /Syntax OK/);
  const { stdout } = await run('ruby', [path.join(dir, 'stand-in.rb'), file]);
  return JSON.parse(stdout) as Evaluation[];
}

describe('Homebrew formula', () => {
  test('gives each os and cpu the latest stable archive, with its sha256, as Ruby reads it', async () => {
    const formula = onlyFile(renderHomebrewFormula(product, catalog.site));
    assert.equal(formula.key, 'homebrew/Formula/agent-as-code.rb');
    assert.equal(stable.version, '1.12.2', 'the sample has a newer prerelease, which the formula must not pick');

    const evaluations = await evaluateFormula(formula.body);
    for (const machine of MACHINES) {
      const evaluation = evaluations.find(({ os, cpu }) => os === machine.os && cpu === machine.cpu)!;
      const expected = archive(stable, machine.platform, machine.arch);
      const url = `${LOCAL_ORIGIN}/binary/releases/agent-as-code/1/12/${expected.filename}`;
      assert.deepEqual(evaluation.urls, [url], `${machine.os}/${machine.cpu} gets one url`);
      assert.deepEqual(evaluation.sha256s, [expected.sha256], `${machine.os}/${machine.cpu} gets one sha256`);
      assert.deepEqual(await served(url), { sha256: expected.sha256, blob: expected.blob }, `${url} serves the bytes its sha256 names`);
      assert.deepEqual(
        { class: evaluation.class, desc: evaluation.desc, homepage: evaluation.homepage, version: evaluation.version, license: evaluation.license },
        {
          class: 'AgentAsCode',
          desc: 'Build, test and ship AI agents from declarative definitions',
          homepage: 'https://github.com/example/agent-as-code',
          version: '1.12.2',
          license: 'Apache-2.0',
        },
      );
    }
  });

  test('installs the binary from the archive, and its test passes', { skip: hostMachine() ? false : `no Linux archive for ${process.platform}/${process.arch}` }, async () => {
    const machine = hostMachine()!;
    const formula = path.join(dir, 'install.rb');
    await writeFile(formula, onlyFile(renderHomebrewFormula(product, catalog.site)).body);
    // Homebrew unpacks the download and runs `install` inside it.
    const buildpath = path.join(dir, 'build');
    await mkdir(buildpath, { recursive: true });
    await run('unzip', ['-q', path.join(SAMPLE_BLOBS, archive(stable, 'linux', machine.arch).blob), '-d', buildpath]);
    const { stdout } = await run('ruby', [path.join(dir, 'stand-in.rb'), formula, 'install', 'linux', machine.cpu, path.join(dir, 'prefix')], { cwd: buildpath });
    assert.deepEqual(JSON.parse(stdout), { installed: ['agent_as_code'] });
  });

  test('leaves out the block of a missing archive, falls back past a Windows-only release, and renders nothing without a macOS or Linux archive', async () => {
    const withoutMacArm = withStableArtifacts(product, (artifact) => !(artifact.platform === 'darwin' && artifact.arch === 'arm64'));
    const evaluations = await evaluateFormula(onlyFile(renderHomebrewFormula(withoutMacArm, catalog.site)).body);
    assert.deepEqual(
      evaluations.map(({ os, cpu, urls }) => `${os}/${cpu}: ${urls.length}`),
      ['macos/intel: 1', 'macos/arm: 0', 'linux/intel: 1', 'linux/arm: 1'],
    );

    const windowsOnlyLatest = withStableArtifacts(product, (artifact) => artifact.platform === 'windows');
    const previous = product.releases.filter((release) => release !== stable && release.channels.includes('stable')).at(-1)!;
    assert.match(String(onlyFile(renderHomebrewFormula(windowsOnlyLatest, catalog.site)).body), new RegExp(`version "${previous.version.replaceAll('.', '\\.')}"`));
    const windowsOnly = { ...product, releases: product.releases.map((release) => ({ ...release, artifacts: release.artifacts.filter((artifact) => artifact.platform === 'windows') })) };
    assert.deepEqual(renderHomebrewFormula(windowsOnly, catalog.site), { files: [], paths: {} });
    assert.deepEqual(renderHomebrewFormula({ ...product, releases: product.releases.filter((release) => release.prerelease) }, catalog.site), { files: [], paths: {} });
  });

  test('uses the site base_url and quotes what Ruby would interpolate', async () => {
    const odd = { ...product, homepage: 'https://example.com/#{`id`}', packages: { ...product.packages, license: null } };
    const evaluations = await evaluateFormula(onlyFile(renderHomebrewFormula(odd, { ...catalog.site, baseUrl: 'https://releases.example.com' })).body);
    assert.equal(evaluations[0]!.homepage, 'https://example.com/#{`id`}');
    assert.equal(evaluations[0]!.license, null);
    assert.ok(evaluations.every(({ urls }) => urls[0]!.startsWith('https://releases.example.com/binary/releases/agent-as-code/1/12/')));
  });

  test("class name and desc follow Homebrew's rules", () => {
    assert.equal(formulaClassName('agent-as-code'), 'AgentAsCode');
    assert.equal(formulaClassName('php@8.1'), 'PhpAT81');
    assert.equal(formulaClassName('foo+bar_baz'), 'FooxbarBaz');
    assert.equal(homebrewDesc('The agent-as-code CLI: build, test and ship AI agents.', ['agent-as-code']), 'Build, test and ship AI agents');
    assert.equal(homebrewDesc('A tool that mirrors releases.', ['mirror']), 'Tool that mirrors releases');
    assert.equal(homebrewDesc('Mirror - fast release mirroring', ['mirror']), 'Fast release mirroring');
    assert.equal(homebrewDesc('Agents for everyone', ['agent']), 'Agents for everyone');
    assert.equal(homebrewDesc('Agent as Code', ['agent-as-code', 'Agent as Code']), 'Agent as Code');
    const long = homebrewDesc(`${'word '.repeat(30)}end.`, ['x']);
    assert.ok(long.length <= 80 && !long.endsWith(' '), `got ${JSON.stringify(long)}`);
  });
});

describe('Scoop manifest', () => {
  // The sample's Windows builds; it has no windows/arm64 one, so `arm64` is left out.
  const SCOOP_ARCHES: { key: '64bit' | '32bit'; arch: Arch }[] = [
    { key: '64bit', arch: 'amd64' },
    { key: '32bit', arch: '386' },
  ];

  test("validates against Scoop's schema and names the latest stable Windows archives", async () => {
    const file = onlyFile(renderScoopManifest(product, catalog.site));
    assert.equal(file.key, 'scoop/bucket/agent-as-code.json');
    const manifest: unknown = JSON.parse(file.body);

    const validate = await scoopSchema();
    assert.ok(validate(manifest), validate.errors?.map((error) => `${error.instancePath} ${error.message}`).join('; '));

    assert.equal(manifest.version, '1.12.2');
    assert.equal(manifest.bin, 'agent_as_code.cmd');
    assert.equal(manifest.license, 'Apache-2.0');
    assert.deepEqual(Object.keys(manifest.architecture).sort(), ['32bit', '64bit']);
    for (const { key, arch } of SCOOP_ARCHES) {
      const expected = archive(stable, 'windows', arch);
      const url = `${LOCAL_ORIGIN}/binary/releases/agent-as-code/1/12/${expected.filename}`;
      assert.deepEqual(manifest.architecture[key], { url, hash: expected.sha256 });
      assert.deepEqual(await served(url), { sha256: expected.sha256, blob: expected.blob }, `${url} serves the bytes its hash names`);
    }
  });

  test('checkver finds the latest stable version, and autoupdate rebuilds the urls and finds the hashes', async () => {
    const manifest = JSON.parse(onlyFile(renderScoopManifest(product, catalog.site)).body) as ScoopManifest;
    const versions = JSON.parse((await served(`${LOCAL_ORIGIN}/binary/releases/agent-as-code/versions`) as { body: string }).body);
    assert.notEqual(versions.versions.at(-1), manifest.version, 'the versions list ends with a prerelease here');

    assert.equal(manifest.checkver.jsonpath, '$.version');
    const checked = JSON.parse((await served(manifest.checkver.url) as { body: string }).body);
    assert.equal(checked.version, stable.version);

    // What Scoop's autoupdate substitutes for a version (lib/autoupdate.ps1, Get-VersionSubstitution).
    const [major, minor] = stable.version.split('-')[0]!.split('.');
    const substitute = (text: string) => text.replaceAll('$majorVersion', major!).replaceAll('$minorVersion', minor!).replaceAll('$version', stable.version);
    for (const { key } of SCOOP_ARCHES) {
      const [current, template] = [manifest.architecture[key], manifest.autoupdate.architecture[key]];
      assert.ok(current && template, `${key} is in architecture and autoupdate.architecture`);
      const url = substitute(template.url);
      assert.equal(url, current.url, `${key}: autoupdate at ${stable.version} gives today's url`);
      const hashUrl = substitute(manifest.autoupdate.hash.url).replace('$baseurl', url.slice(0, url.lastIndexOf('/')));
      const sums = (await served(hashUrl)) as { body: string };
      const basename = url.slice(url.lastIndexOf('/') + 1);
      assert.ok(sums.body.split('\n').includes(`${current.hash}  ${basename}`), `${hashUrl} lists ${basename} with its hash`);
    }
  });

  test("puts a windows/arm64 archive under Scoop's arm64 key", async () => {
    const amd64 = archive(stable, 'windows', 'amd64');
    const arm64: Artifact = { ...amd64, arch: 'arm64', filename: amd64.filename.replace('amd64', 'arm64'), sha256: 'a'.repeat(64) };
    const withArm = { ...product, releases: product.releases.map((release) => (release === stable ? { ...release, artifacts: [...release.artifacts, arm64] } : release)) };
    const manifest = JSON.parse(onlyFile(renderScoopManifest(withArm, catalog.site)).body) as ScoopManifest;
    assert.deepEqual(manifest.architecture.arm64, { url: `${LOCAL_ORIGIN}/binary/releases/agent-as-code/1/12/${arm64.filename}`, hash: arm64.sha256 });
    assert.equal(manifest.autoupdate.architecture.arm64?.url, `${LOCAL_ORIGIN}/binary/releases/agent-as-code/$majorVersion/$minorVersion/agent_as_code_$version_windows_arm64.zip`);
    assert.ok((await scoopSchema())(manifest));
  });

  test('leaves out a missing architecture, and renders nothing without a Windows archive', () => {
    const without386 = withStableArtifacts(product, (artifact) => artifact.arch !== '386');
    assert.deepEqual(Object.keys(JSON.parse(onlyFile(renderScoopManifest(without386, catalog.site)).body).architecture), ['64bit']);

    const noWindows = { ...product, releases: product.releases.map((release) => ({ ...release, artifacts: release.artifacts.filter((artifact) => artifact.platform !== 'windows') })) };
    assert.deepEqual(renderScoopManifest(noWindows, catalog.site), { files: [], paths: {} });
  });

  test('the rendered site serves both files', async () => {
    for (const url of ['/homebrew/Formula/agent-as-code.rb', '/scoop/bucket/agent-as-code.json']) {
      assert.ok('body' in (await served(`${LOCAL_ORIGIN}${url}`)), `${url} is served`);
    }
  });
});

async function scoopSchema(): Promise<ValidateFunction<ScoopManifest>> {
  // Scoop's schema is not written for Ajv's strict type checks (an `if` uses `properties` without `type`).
  const ajv = new Ajv({ allErrors: true, strictTypes: false });
  addFormats.default(ajv);
  return ajv.compile<ScoopManifest>(JSON.parse(await readFile(path.join(REPO, 'schemas', 'scoop-manifest.schema.json'), 'utf8')));
}

function withStableArtifacts(product: Product, keep: (artifact: Artifact) => boolean): Product {
  return { ...product, releases: product.releases.map((release) => (release === stable ? { ...release, artifacts: release.artifacts.filter(keep) } : release)) };
}

function hostMachine(): { cpu: Evaluation['cpu']; arch: Arch } | undefined {
  if (process.platform !== 'linux') return undefined;
  if (process.arch === 'x64') return { cpu: 'intel', arch: 'amd64' };
  if (process.arch === 'arm64') return { cpu: 'arm', arch: 'arm64' };
  return undefined;
}
