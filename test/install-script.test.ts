// install.sh end to end: the signed sample served over HTTP, the script fetched with curl and run
// by dash and bash, installing into a temporary prefix. Tampering goes through an evil mirror.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, chmod, cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { loadCatalog } from '../generator/load/index.ts';
import type { Product } from '../generator/model/catalog.ts';
import { renderInstallScript } from '../generator/render/packages/install-script.ts';
import { createKey, loadKeyring } from '../generator/trust/keyring.ts';
import { startEvilMirror, type EvilMirror } from './helpers/evil-mirror.ts';
import { SAMPLE_BLOBS, SAMPLE_RELEASES, startSampleSite, type SampleSite } from './helpers/sample-site.ts';

const run = promisify(execFile);
const SCRIPT = '/binary/releases/agent-as-code/install.sh';
const RELEASES = '/binary/releases/agent-as-code';
const SHELLS = ['dash', 'bash'];
/** What the script needs from a system, for PATHs that leave one tool out. */
const TOOLS = ['dash', 'bash', 'uname', 'mktemp', 'rm', 'rmdir', 'mkdir', 'cp', 'mv', 'chmod', 'awk', 'grep', 'sed', 'tail', 'head', 'find', 'tar', 'gzip', 'id', 'cat', 'sha256sum', 'unzip', 'curl', 'wget', 'gpgv'];

let signed: SampleSite;
let evil: EvilMirror;
let work: string;
let script: string;
let counter = 0;

before(async () => {
  await assumeLinuxAmd64();
  signed = await startSampleSite(SAMPLE_RELEASES, SAMPLE_BLOBS, { signed: true });
  evil = await startEvilMirror(signed.url);
  work = await mkdtemp(path.join(tmpdir(), 'mirror-install-'));
  script = path.join(work, 'install.sh');
  await run('curl', ['-fsSL', '-o', script, signed.url + SCRIPT]);
});
after(async () => {
  await evil?.close();
  await signed?.close();
  await rm(work, { recursive: true, force: true });
  assert.deepEqual(signed.errors, []);
});

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** `curl -fsSL <base>/install.sh | <shell> -s -- args`, as the install page says. */
async function curlPipe(shell: string, base: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Outcome> {
  return outcome(run('sh', ['-c', 'url=$1 shell=$2; shift 2; curl -fsSL "$url" | "$shell" -s -- "$@"', 'sh', base + SCRIPT, shell, ...args], { env }));
}

/** The downloaded script run by `shell` directly, for PATHs without curl. */
async function runScript(shell: string, args: string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  return outcome(run(shell, [script, ...args], { env }));
}

async function outcome(running: Promise<{ stdout: string; stderr: string }>): Promise<Outcome> {
  try {
    return { code: 0, ...(await running) };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

async function freshPrefix(): Promise<string> {
  const prefix = path.join(work, `prefix-${++counter}`);
  await mkdir(prefix);
  return prefix;
}

/** The bytes `install.sh` should install: the binary inside the archive for this machine. */
async function binaryOf(version: string): Promise<Buffer> {
  const [major, minor] = version.split('.');
  const archive = path.join(work, `expected-${version}.zip`);
  await run('curl', ['-fsSL', '-o', archive, `${signed.url}${RELEASES}/${major}/${minor}/agent_as_code_${version}_linux_amd64.zip`]);
  return (await run('unzip', ['-p', archive, 'agent_as_code'], { encoding: 'buffer' })).stdout;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/** A failure as the script promises it: non-zero, one line on stderr. */
function assertOneLineFailure(result: Outcome, pattern: RegExp): void {
  assert.notEqual(result.code, 0, `expected a failure, got exit 0: ${result.stdout}`);
  assert.equal(result.stderr.trimEnd().split('\n').length, 1, `expected one line on stderr, got: ${result.stderr}`);
  assert.match(result.stderr.trimEnd(), pattern);
}

/** A directory of links to the system's tools, less `without`, to serve as the whole PATH. */
async function pathWithout(...without: string[]): Promise<string> {
  const dir = path.join(work, `bin-${++counter}`);
  await mkdir(dir);
  for (const tool of TOOLS.filter((name) => !without.includes(name))) {
    const { stdout } = await outcome(run('sh', ['-c', `command -v ${tool}`]));
    if (stdout.trim()) await symlink(stdout.trim(), path.join(dir, tool));
  }
  return dir;
}

/** Assumes this machine is linux/amd64, as the sample's builds for a pinned version require. */
async function assumeLinuxAmd64(): Promise<void> {
  const { stdout } = await run('uname', ['-sm']);
  assert.equal(stdout.trim(), 'Linux x86_64', 'these tests install the linux/amd64 build');
}

test('the served script passes shellcheck -s sh', async () => {
  await run('shellcheck', ['-s', 'sh', script]);
});

for (const shell of SHELLS) {
  describe(`under ${shell}`, () => {
    test('installs the newest stable release, its signature and checksum verified', async () => {
      const prefix = await freshPrefix();
      const result = await curlPipe(shell, signed.url, ['--prefix', prefix, '--base-url', signed.url]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, '');
      assert.deepEqual(await readFile(path.join(prefix, 'bin', 'agent_as_code')), await binaryOf('1.12.2'));
      assert.match(result.stdout, /installing agent-as-code 1\.12\.2 \(the stable channel\) for linux\/amd64/);
      assert.match(result.stdout, /signature verified: agent_as_code_1\.12\.2_SHA256SUMS, Good signature from "Sample releases", checked against the mirror's own keys/);
      assert.match(result.stdout, /checksum verified: sha256 f206d390a764556f0e89040836b5e3762068042b524dea82322a7e02d5d38c17/);
      assert.match(result.stdout, new RegExp(`installed ${prefix}/bin/agent_as_code`));
      const { stdout } = await run(path.join(prefix, 'bin', 'agent_as_code'));
      assert.equal(stdout, 'agent-as-code 1.12.2 (linux/amd64)\n');
    });

    test('--version installs that version', async () => {
      const prefix = await freshPrefix();
      const result = await curlPipe(shell, signed.url, ['--version', '1.1.0', '--prefix', prefix, '--base-url', signed.url]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(await readFile(path.join(prefix, 'bin', 'agent_as_code')), await binaryOf('1.1.0'));
    });

    test('--channel latest installs the pre-release', async () => {
      const prefix = await freshPrefix();
      const result = await curlPipe(shell, signed.url, ['--channel', 'latest', '--prefix', prefix, '--base-url', signed.url]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(await readFile(path.join(prefix, 'bin', 'agent_as_code')), await binaryOf('1.13.0-beta.1'));
    });

    test('an unknown version fails with one line', async () => {
      const prefix = await freshPrefix();
      const result = await curlPipe(shell, signed.url, ['--version', '9.9.9', '--prefix', prefix, '--base-url', signed.url]);
      assertOneLineFailure(result, /^install\.sh: unknown version 9\.9\.9 of agent-as-code/);
      assert.equal(await exists(path.join(prefix, 'bin')), false);
    });

    test('a tampered artifact fails the checksum and leaves the installed binary alone', async (t) => {
      const prefix = await freshPrefix();
      assert.equal((await curlPipe(shell, signed.url, ['--version', '1.1.0', '--prefix', prefix, '--base-url', signed.url])).code, 0);
      const zipPath = `${RELEASES}/1/12/agent_as_code_1.12.2_linux_amd64.zip`;
      const tampered = Buffer.from(await (await fetch(signed.url + zipPath)).arrayBuffer());
      tampered[tampered.length - 1]! ^= 0xff;
      evil.substitute(zipPath, tampered);
      t.after(() => evil.reset());
      const result = await curlPipe(shell, evil.url, ['--prefix', prefix, '--base-url', evil.url]);
      assertOneLineFailure(result, /^install\.sh: checksum mismatch for agent_as_code_1\.12\.2_linux_amd64\.zip: agent_as_code_1\.12\.2_SHA256SUMS says sha256 f206d390/);
      assert.deepEqual(await readFile(path.join(prefix, 'bin', 'agent_as_code')), await binaryOf('1.1.0'));
      const fresh = await freshPrefix();
      assertOneLineFailure(await curlPipe(shell, evil.url, ['--prefix', fresh, '--base-url', evil.url]), /checksum mismatch/);
      assert.equal(await exists(path.join(fresh, 'bin', 'agent_as_code')), false);
    });

    test('a SHA256SUMS rewritten to match a tampered artifact fails the signature check', async (t) => {
      const dir = `${RELEASES}/1/12`;
      const tampered = Buffer.from(await (await fetch(`${signed.url}${dir}/agent_as_code_1.12.2_linux_amd64.zip`)).arrayBuffer());
      tampered[tampered.length - 1]! ^= 0xff;
      const sums = (await (await fetch(`${signed.url}${dir}/agent_as_code_1.12.2_SHA256SUMS`)).text()).replace(/^\S+(?=  agent_as_code_1\.12\.2_linux_amd64\.zip$)/m, createHash('sha256').update(tampered).digest('hex'));
      evil.substitute(`${dir}/agent_as_code_1.12.2_linux_amd64.zip`, tampered);
      evil.substitute(`${dir}/agent_as_code_1.12.2_SHA256SUMS`, Buffer.from(sums));
      t.after(() => evil.reset());
      const prefix = await freshPrefix();
      const result = await curlPipe(shell, evil.url, ['--prefix', prefix, '--base-url', evil.url]);
      assertOneLineFailure(result, /^install\.sh: signature check of agent_as_code_1\.12\.2_SHA256SUMS failed against the mirror's own keys .*BAD signature/);
      assert.equal(await exists(path.join(prefix, 'bin')), false);
    });

    test('an unsupported platform fails with one line', async () => {
      const fake = path.join(work, `uname-${++counter}`);
      await mkdir(fake);
      await writeFile(path.join(fake, 'uname'), '#!/bin/sh\ncase $1 in -s) echo SunOS ;; -m) echo sparc64 ;; esac\n');
      await chmod(path.join(fake, 'uname'), 0o755);
      const prefix = await freshPrefix();
      const env = { ...process.env, PATH: `${fake}:${process.env.PATH}` };
      assertOneLineFailure(await curlPipe(shell, signed.url, ['--prefix', prefix, '--base-url', signed.url], env), /^install\.sh: unsupported operating system: SunOS \(this installer supports Linux and macOS\)$/);
      await writeFile(path.join(fake, 'uname'), '#!/bin/sh\ncase $1 in -s) echo Linux ;; -m) echo sparc64 ;; esac\n');
      assertOneLineFailure(await curlPipe(shell, signed.url, ['--prefix', prefix, '--base-url', signed.url], env), /^install\.sh: unsupported architecture: sparc64/);
      assert.equal(await exists(path.join(prefix, 'bin')), false);
    });

    test('without curl it downloads with wget; without either it says so', async () => {
      const prefix = await freshPrefix();
      const wgetOnly = await runScript(shell, ['--version', '1.0.0', '--prefix', prefix, '--base-url', signed.url], { PATH: await pathWithout('curl') });
      assert.equal(wgetOnly.code, 0, wgetOnly.stderr);
      assert.deepEqual(await readFile(path.join(prefix, 'bin', 'agent_as_code')), await binaryOf('1.0.0'));
      const neither = await runScript(shell, ['--prefix', await freshPrefix(), '--base-url', signed.url], { PATH: await pathWithout('curl', 'wget') });
      assertOneLineFailure(neither, /^install\.sh: neither curl nor wget is installed/);
    });

    test('without unzip it fails before installing anything', async () => {
      const prefix = await freshPrefix();
      const result = await runScript(shell, ['--prefix', prefix, '--base-url', signed.url], { PATH: await pathWithout('unzip') });
      assertOneLineFailure(result, /^install\.sh: unzip is needed to unpack agent_as_code_1\.12\.2_linux_amd64\.zip/);
      assert.equal(await exists(path.join(prefix, 'bin')), false);
    });

    test('without gpgv it checks the checksum only, and says so', async () => {
      const prefix = await freshPrefix();
      const result = await runScript(shell, ['--prefix', prefix, '--base-url', signed.url], { PATH: await pathWithout('gpgv') });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /signature not checked: gpgv is not installed/);
      assert.match(result.stdout, /checksum verified/);
    });
  });
}

describe('--keyring', () => {
  test('checks the signature against the given keyring', async () => {
    const keyring = path.join(work, 'trusted.gpg');
    await run('curl', ['-fsSL', '-o', keyring, `${signed.url}/.well-known/pgp-keys.gpg`]);
    const prefix = await freshPrefix();
    const result = await curlPipe('dash', signed.url, ['--prefix', prefix, '--base-url', signed.url, '--keyring', keyring]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`signature verified: .*Good signature from "Sample releases", checked against the keyring ${keyring}$`, 'm'));
  });

  test('fails on a release signed by a key the keyring does not hold', async () => {
    const keysDir = path.join(work, 'other-keys');
    await createKey(keysDir, { name: 'Someone else' });
    const [other] = (await loadKeyring({ dir: keysDir })).active;
    const keyring = path.join(work, 'other.gpg');
    await writeFile(keyring, other!.publicKey);
    const prefix = await freshPrefix();
    const result = await curlPipe('dash', signed.url, ['--prefix', prefix, '--base-url', signed.url, '--keyring', keyring]);
    assertOneLineFailure(result, /^install\.sh: signature check of agent_as_code_1\.12\.2_SHA256SUMS failed against the keyring /);
    assert.equal(await exists(path.join(prefix, 'bin')), false);
  });
});

describe('an unsigned mirror', () => {
  let unsigned: SampleSite;
  before(async () => {
    unsigned = await startSampleSite(SAMPLE_RELEASES, SAMPLE_BLOBS);
  });
  after(async () => {
    await unsigned?.close();
  });

  test('installs with a note that the signature was not checked', async () => {
    const prefix = await freshPrefix();
    const result = await curlPipe('dash', unsigned.url, ['--prefix', prefix, '--base-url', unsigned.url]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /signature not checked: the mirror publishes no signature for agent_as_code_1\.12\.2_SHA256SUMS/);
    assert.deepEqual(await readFile(path.join(prefix, 'bin', 'agent_as_code')), await binaryOf('1.12.2'));
  });

  test('refuses when --keyring asks for a signature', async () => {
    const keyring = path.join(work, 'pinned.gpg');
    await run('curl', ['-fsSL', '-o', keyring, `${signed.url}/.well-known/pgp-keys.gpg`]);
    const prefix = await freshPrefix();
    const result = await curlPipe('dash', unsigned.url, ['--prefix', prefix, '--base-url', unsigned.url, '--keyring', keyring]);
    assertOneLineFailure(result, /^install\.sh: no signature at .*agent_as_code_1\.12\.2_SHA256SUMS\.sig, and --keyring requires one$/);
    assert.equal(await exists(path.join(prefix, 'bin')), false);
  });
});

describe('a .tar.gz release with the binary in a folder', () => {
  const TARBALL = 'agent_as_code_1.12.2_linux_amd64.tar.gz';
  let site: SampleSite;
  before(async () => {
    const dir = await mkdtemp(path.join(work, 'tarball-'));
    const releases = path.join(dir, 'releases');
    await cp(SAMPLE_RELEASES, releases, { recursive: true });
    const folder = path.join(dir, 'staging', 'agent_as_code_1.12.2_linux_amd64');
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'agent_as_code'), '#!/bin/sh\necho "from the tarball"\n', { mode: 0o755 });
    const blob = `releases/1/12/2/${TARBALL}`;
    await mkdir(path.dirname(path.join(dir, 'blobs', blob)), { recursive: true });
    await run('tar', ['-czf', path.join(dir, 'blobs', blob), '-C', path.dirname(folder), path.basename(folder)]);
    const bytes = await readFile(path.join(dir, 'blobs', blob));
    const manifestFile = path.join(releases, 'agent-as-code', '1.12.2.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { artifacts: { platform: string; arch: string }[] };
    const tarball = { platform: 'linux', arch: 'amd64', filename: TARBALL, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), content_type: 'application/gzip', blob };
    manifest.artifacts = manifest.artifacts.map((artifact) => (artifact.platform === 'linux' && artifact.arch === 'amd64' ? tarball : artifact));
    await writeFile(manifestFile, JSON.stringify(manifest));
    site = await startSampleSite(releases, path.join(dir, 'blobs'));
  });
  after(async () => {
    await site?.close();
  });

  for (const shell of SHELLS) {
    test(`${shell} unpacks it and installs the binary it finds`, async () => {
      const prefix = await freshPrefix();
      const result = await curlPipe(shell, site.url, ['--prefix', prefix, '--base-url', site.url]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`downloading .*/1/12/${TARBALL.replaceAll('.', '\\.')}`));
      assert.equal((await run(path.join(prefix, 'bin', 'agent_as_code'))).stdout, 'from the tarball\n');
    });
  }
});

describe('rendering', () => {
  let product: Product;
  before(async () => {
    product = (await loadCatalog(SAMPLE_RELEASES)).products.find((candidate) => candidate.name === 'agent-as-code')!;
  });

  test('serves install.sh at the product root, short-cached, pointing at base_url', () => {
    const { files, paths } = renderInstallScript(product, { title: 'Mirror', baseUrl: 'https://releases.example.com' });
    assert.deepEqual(paths, { [SCRIPT]: { type: 'file', key: SCRIPT.slice(1) } });
    assert.equal(files[0]!.contentType, 'text/x-shellscript; charset=utf-8');
    assert.equal(files[0]!.cacheControl, 'public, max-age=60');
    assert.match(String(files[0]!.body), /^DEFAULT_BASE_URL='https:\/\/releases\.example\.com'$/m);
  });

  test('embeds each channel\'s newest release and its sh platforms, prefers .tar.gz, skips yanked releases', () => {
    const release = product.releases.find((candidate) => candidate.version === '1.12.2')!;
    const tarball = { ...release.artifacts.find((artifact) => artifact.platform === 'linux' && artifact.arch === 'amd64')!, filename: 'agent_as_code_1.12.2_linux_amd64.tar.gz' };
    const newer = { ...release, version: '1.14.0', minor: 14, status: 'yanked' as const };
    const releases = [...product.releases.map((candidate) => (candidate === release ? { ...release, artifacts: [...release.artifacts, tarball] } : candidate)), newer];
    const body = String(renderInstallScript({ ...product, releases }, { title: 'Mirror', baseUrl: '' }).files[0]!.body);
    assert.match(body, /stable\) echo '1\.12\.2' ;;/);
    assert.match(body, /stable\/linux_amd64\) echo '1\/12\/agent_as_code_1\.12\.2_linux_amd64\.tar\.gz' ;;/);
    assert.doesNotMatch(body, /_windows_|1\.14\.0/);
  });
});
