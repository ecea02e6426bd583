// The attacks the signed snapshot exists for, each made on a running mirror and each named by
// `mirror verify` run as a user runs it: `mirror serve` over a build of its choosing, behind an
// evil mirror that answers chosen paths with other bytes, as a stale or malicious CDN would.
// Every attack starts from a client that verified the same mirror unharmed and saw it pass, so a
// named attack is not a verifier that always fails.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { cp, mkdir, readFile, rename, symlink } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build, type BuildReport } from '../generator/pipeline.ts';
import { PUBLIC_DIR } from '../generator/publish/local-dir.ts';
import { keysDir, loadSigning } from '../generator/trust/index.ts';
import { createKey } from '../generator/trust/keyring.ts';
import { JWKS_KEY, PGP_KEYS_KEY, SNAPSHOT_KEY } from '../generator/trust/snapshot.ts';
import { startEvilMirror, type EvilMirror } from './helpers/evil-mirror.ts';
import { SAMPLE_BLOBS } from './helpers/sample-site.ts';
import { startSidecarProcess, type SidecarProcess } from './helpers/sidecar-process.ts';
import { addPatchRelease, copySampleStore, removeDir, runCli, tempDir } from './helpers/store.ts';
import { SIGNING_SETTINGS } from './helpers/trust.ts';

// The keys come from each scenario's data directory only, never from the environment running the tests.
for (const name of SIGNING_SETTINGS) delete process.env[name];

const SNAPSHOT = `/${SNAPSHOT_KEY}`;
const VERSIONS = '/binary/releases/agent-as-code/versions';
const SUMS = '/binary/releases/agent-as-code/1/12/agent_as_code_1.12.3_SHA256SUMS';
const DAY_MS = 86_400_000;

/** The builds the attacks serve, each a build folder `mirror serve` can be pointed at. */
interface Builds {
  /** K1, the sample store as first published. */
  a: string;
  /** K1, the next publish: the sample plus agent-as-code 1.12.3. */
  b: string;
  /** K1, B's store signed eight days ago with the default seven-day expiry. */
  frozen: string;
  /** B's store signed only by K2, a key of another data directory. */
  strange: string;
  /** B's store after a key rotation: K3 signs, K1 is retired. */
  rotated: string;
}

interface Scene {
  dir: string;
  /** The site path `mirror serve` serves: a symlink this suite points at one of `builds`. */
  served: string;
  builds: Builds;
  versions: { a: number; b: number };
  sidecar: SidecarProcess;
  evil: EvilMirror;
}

interface VerifyRun {
  code: number | null;
  /** Its stdout, then its stderr. */
  output: string;
  /** Each problem line's URL and kind, in the report's order; `none` for a problem of no kind. */
  problems: { url: string; kind: string }[];
}

describe('mirror verify names each attack on a signed mirror', () => {
  let scene: Scene;

  before(async () => {
    scene = await setUpScene();
  });

  after(async () => {
    if (!scene) return;
    await scene.evil.close();
    scene.sidecar.child.kill('SIGTERM');
    await scene.sidecar.exited;
    await removeDir(scene.dir);
  });

  const statePath = (name: string) => path.join(scene.dir, 'state', `${name}.json`);
  const wellKnown = (build: string, key: string) => path.join(build, PUBLIC_DIR, key);

  /** `mirror verify` against the evil mirror, as a user types it. */
  async function verify(options: { keys?: string | undefined; state: string }): Promise<VerifyRun> {
    const args = ['verify', '--base-url', scene.evil.url, '--state', options.state, ...(options.keys ? ['--keys', options.keys] : [])];
    const { code, stdout, stderr } = await runCli(args);
    const problems = [...stdout.matchAll(/^ {2}(\S+): (?:\[([a-z-]+)\] )?/gm)].map((line) => ({ url: line[1]!, kind: line[2] ?? 'none' }));
    return { code, output: stdout + stderr, problems };
  }

  /** The run fails with exactly these problems, in the report's (URL) order. */
  async function verifyNames(options: { keys?: string | undefined; state: string }, expected: { path: string; kind: string }[]): Promise<VerifyRun> {
    const run = await verify(options);
    assert.equal(run.code, 1, run.output);
    assert.deepEqual(run.problems, expected.map(({ path: at, kind }) => ({ url: scene.evil.url + at, kind })), run.output);
    return run;
  }

  /** Serves `build` unharmed and checks that it passes: exit 0, its snapshot's version, no problem. */
  async function verifyClean(build: string, options: { keys?: string | undefined; state: string }): Promise<VerifyRun> {
    scene.evil.reset();
    await pointServedSite(scene, build);
    const run = await verify(options);
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /^verified \S+: .*: no problems\ntrust: snapshot version \d+, /, run.output);
    assert.equal(/^trust: snapshot version (\d+),/m.exec(run.output)?.[1], String(await snapshotVersion(build)), run.output);
    assert.deepEqual(run.problems, []);
    return run;
  }

  // The unharmed mirror is verified once per way of trusting it, whichever test asks first; each
  // attack then starts from a client that just saw it pass (a copy of that run's state file).
  const cleanRuns = new Map<string, Promise<VerifyRun>>();
  async function clientThatSawItClean(name: string, clean: { label: string; build: string; keys: string }): Promise<{ keys: string; state: string }> {
    const { build, keys } = clean;
    const cleanState = statePath(`clean-${clean.label}`);
    if (!cleanRuns.has(cleanState)) cleanRuns.set(cleanState, verifyClean(build, { keys, state: cleanState }));
    await cleanRuns.get(cleanState);
    scene.evil.reset();
    await pointServedSite(scene, build);
    await cp(cleanState, statePath(name));
    return { keys, state: statePath(name) };
  }

  /** The client of most attacks: it pins K1's OpenPGP keys and has seen build B pass. */
  const k1Client = (name: string) => clientThatSawItClean(name, { label: 'b-pgp', build: scene.builds.b, keys: wellKnown(scene.builds.b, PGP_KEYS_KEY) });

  test('a sound mirror passes with pinned OpenPGP keys, the pinned JWKS, and keys trusted on first use', async () => {
    const { builds, versions } = scene;
    const [, , firstUse] = await Promise.all([
      k1Client('pgp'),
      clientThatSawItClean('jwks', { label: 'b-jwks', build: builds.b, keys: wellKnown(builds.b, JWKS_KEY) }),
      verifyClean(builds.b, { state: statePath('first-use') }),
    ]);
    assert.match(firstUse.output, /^trust: .*\(trusting the mirror's published keys [0-9A-F]{16} on first use; pin them with --keys\)/m);
    const remembered = JSON.parse(await readFile(statePath('first-use'), 'utf8')) as { origin: string; version: number; keys: { kid: string }[] };
    assert.equal(remembered.origin, scene.evil.url);
    assert.equal(remembered.version, versions.b);
    assert.equal(remembered.keys.length, 1);
    const again = await verifyClean(builds.b, { state: statePath('first-use') });
    assert.match(again.output, /^trust: .*\(keys trusted since \S+\)/m);
  });

  test('mix-and-match: an index from the previous publish among the current files', async () => {
    const client = await k1Client('mix');
    scene.evil.substitute(VERSIONS, await readFile(wellKnown(scene.builds.a, 'binary/releases/agent-as-code/versions.json')));
    const run = await verifyNames(client, [
      // The crawl sees it too: B's 1.12 listing names 1.12.3, which A's versions index does not.
      { path: '/binary/releases/agent-as-code/1/12/', kind: 'none' },
      { path: VERSIONS, kind: 'mix-and-match' },
    ]);
    assert.match(run.output, /\[mix-and-match\] expected the file of snapshot version \d+ \(sha256 [0-9a-f]{64}, \d+ bytes\), got sha256 [0-9a-f]{64}, \d+ bytes: a file from another publish/);
  });

  test('tampered: a SHA256SUMS file one byte off, which no signature covers', async () => {
    const client = await k1Client('tampered');
    const tampered = await readFile(wellKnown(scene.builds.b, SUMS.slice(1)));
    // The first digit of the first digest: the line a forged artifact would need.
    tampered[0] = tampered[0] === 0x30 ? 0x31 : 0x30;
    scene.evil.substitute(SUMS, tampered);
    const run = await verifyNames(client, [
      { path: SUMS, kind: 'tampered' },
      { path: SUMS, kind: 'tampered' },
    ]);
    assert.match(run.output, /\[tampered\] expected sha256 [0-9a-f]{64} \(snapshot version \d+\), got sha256 [0-9a-f]{64}, which no trusted signature covers/);
    // The crawl's own check: the altered line no longer matches the artifact's bytes.
    assert.match(run.output, /\[tampered\] expected sha256 [0-9a-f]{64} for agent_as_code_1\.12\.3_\w+\.zip \(the bytes of /);
  });

  test('rollback: the whole mirror served from the previous publish after the client saw the current one', async () => {
    const client = await k1Client('rollback');
    await pointServedSite(scene, scene.builds.a);
    const run = await verifyNames(client, [{ path: SNAPSHOT, kind: 'rollback' }]);
    assert.match(run.output, new RegExp(`\\[rollback\\] expected snapshot version ${scene.versions.b} or newer \\(seen at \\S+\\), got version ${scene.versions.a}: `));
    const remembered = JSON.parse(await readFile(client.state, 'utf8')) as { version: number };
    assert.equal(remembered.version, scene.versions.b, 'the rollback lowered the version remembered');
  });

  test('freeze: a snapshot past its expiry, served as if current', async () => {
    const { keys } = await k1Client('freeze');
    await pointServedSite(scene, scene.builds.frozen);
    // A client new to the mirror: one that saw B would also see a rollback, the frozen version being older.
    const run = await verifyNames({ keys, state: statePath('freeze-first-visit') }, [{ path: SNAPSHOT, kind: 'freeze' }]);
    assert.match(run.output, /\[freeze\] expected a snapshot valid now \(\S+\), got version \d+, which expired at \S+: /);
  });

  test('unknown key: a mirror signed only by a key the client never trusted', async () => {
    const client = await k1Client('unknown-key');
    await pointServedSite(scene, scene.builds.strange);
    const run = await verifyNames(client, [{ path: SNAPSHOT, kind: 'unknown-key' }]);
    assert.match(run.output, /\[unknown-key\] the snapshot is signed only by key [0-9A-F]{16}, which is not trusted$/m);
  });

  test('retired key: an old snapshot signed only by a key the new keys.json retired', async () => {
    const keys = wellKnown(scene.builds.rotated, JWKS_KEY);
    const published = JSON.parse(await readFile(keys, 'utf8')) as { keys: { kid: string }[]; retired: { kid: string }[] };
    assert.equal(published.keys.length, 1);
    assert.equal(published.retired.length, 1);
    const client = await clientThatSawItClean('retired-key', { label: 'rotated-jwks', build: scene.builds.rotated, keys });
    scene.evil.substitute(SNAPSHOT, await readFile(wellKnown(scene.builds.b, SNAPSHOT_KEY)));
    const run = await verifyNames(client, [{ path: SNAPSHOT, kind: 'retired-key' }]);
    assert.match(run.output, new RegExp(`\\[retired-key\\] the snapshot is signed only by retired key ${published.retired[0]!.kid}$`, 'm'));
  });

  test('retired key, pinned OpenPGP keys: the rotated pgp-keys.asc holds only the active key, so the leaked old one is refused even when keys.json hides its retirement', async () => {
    const keys = wellKnown(scene.builds.rotated, PGP_KEYS_KEY);
    const client = await clientThatSawItClean('retired-pgp', { label: 'rotated-pgp', build: scene.builds.rotated, keys });
    const published = JSON.parse(await readFile(wellKnown(scene.builds.rotated, JWKS_KEY), 'utf8')) as { keys: unknown[]; retired: { kid: string }[] };
    // The holder of the old key serves its snapshot with a keys.json that no longer says it retired.
    scene.evil.substitute(SNAPSHOT, await readFile(wellKnown(scene.builds.b, SNAPSHOT_KEY)));
    scene.evil.substitute(`/${JWKS_KEY}`, Buffer.from(JSON.stringify({ keys: published.keys, retired: [] })));
    const run = await verifyNames(client, [{ path: SNAPSHOT, kind: 'unknown-key' }]);
    assert.match(run.output, new RegExp(`\\[unknown-key\\] the snapshot is signed only by key ${published.retired[0]!.kid}, which is not trusted$`, 'm'));
  });

  test('bad signature: the snapshot\'s payload changed under its signatures', async () => {
    const client = await k1Client('bad-signature');
    const jws = JSON.parse(await readFile(wellKnown(scene.builds.b, SNAPSHOT_KEY), 'utf8')) as { payload: string; signatures: unknown[] };
    const payload = JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')) as { version: number; expires: string };
    // What a frozen mirror would want: a snapshot that never expires.
    const forged = { ...payload, version: payload.version + 1, expires: new Date(Date.now() + 365 * DAY_MS).toISOString() };
    scene.evil.substitute(SNAPSHOT, Buffer.from(JSON.stringify({ ...jws, payload: Buffer.from(JSON.stringify(forged)).toString('base64url') })));
    const run = await verifyNames(client, [{ path: SNAPSHOT, kind: 'bad-signature' }]);
    assert.match(run.output, /\[bad-signature\] the signature by key [0-9A-F]{16} does not verify: the snapshot was changed after it was signed$/m);
  });
});

/**
 * Five builds from one copy of the sample store, `mirror serve` over a site path pointed at any of
 * them (its own data directory holds the artifacts and no key, so it never signs), and the evil
 * mirror in front.
 */
async function setUpScene(): Promise<Scene> {
  const dir = await tempDir('mirror-attacks-');
  let starting: Promise<SidecarProcess> | undefined;
  try {
    const releasesDir = path.join(dir, 'releases');
    const serveData = path.join(dir, 'serve');
    await copySampleStore(releasesDir, { releases: true });
    await cp(SAMPLE_BLOBS, path.join(serveData, 'blobs'), { recursive: true });

    const k1 = path.join(dir, 'k1');
    await createKey(keysDir(k1), { name: 'K1' });
    const signedByK1 = await loadSigning(k1, {});
    const a = await build({ releasesDir, site: path.join(k1, 'site'), signing: signedByK1 });
    // Kept aside: the site keeps only its newest builds.
    const stale = path.join(dir, 'stale', 'a');
    await cp(a.publish.build, stale, { recursive: true });
    await addPatchRelease(releasesDir, path.join(serveData, 'blobs'));
    const b = await build({ releasesDir, site: path.join(k1, 'site'), signing: signedByK1 });

    const served = path.join(serveData, 'site');
    await pointServedSite({ served }, b.publish.build);
    starting = startSidecarProcess({
      MIRROR_DATA_DIR: serveData,
      MIRROR_RELEASES: releasesDir,
      HOST: '127.0.0.1',
      PORT: '0',
      FLEET_PORT: '0',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_IP_PER_MINUTE: '0',
      RATE_LIMIT_USER_PER_MINUTE: '0',
      RATE_LIMIT_UPLOADS_PER_HOUR: '0',
    });
    const [frozen, strange, rotated] = await Promise.all([
      build({ releasesDir, site: path.join(dir, 'frozen', 'site'), signing: { ...signedByK1, now: () => new Date(Date.now() - 8 * DAY_MS) } }),
      buildWithNewKey(releasesDir, path.join(dir, 'k2')),
      buildAfterRotation(releasesDir, k1, signedByK1.keyring.active[0]!.id, path.join(dir, 'rotated')),
    ]);
    const sidecar = await starting;
    const evil = await startEvilMirror(sidecar.url.replace(/\/$/, ''));
    const builds: Builds = { a: stale, b: b.publish.build, frozen: frozen.publish.build, strange: strange.publish.build, rotated: rotated.publish.build };
    return { dir, served, builds, versions: { a: a.signing.snapshot!.version, b: b.signing.snapshot!.version }, sidecar, evil };
  } catch (error) {
    const sidecar = await starting?.catch(() => undefined);
    sidecar?.child.kill('SIGTERM');
    await sidecar?.exited;
    await removeDir(dir);
    throw error;
  }
}

/** The store signed by a key of its own data directory, K2, which no client of K1 trusts. */
async function buildWithNewKey(releasesDir: string, dataDir: string): Promise<BuildReport> {
  await createKey(keysDir(dataDir), { name: 'K2' });
  return build({ releasesDir, site: path.join(dataDir, 'site'), signing: await loadSigning(dataDir, {}) });
}

/** A rotation as the publisher does it, in a copy of K1's data directory: a new key K3, then K1 retired with the CLI. */
async function buildAfterRotation(releasesDir: string, k1: string, k1Id: string, dataDir: string): Promise<BuildReport> {
  await cp(keysDir(k1), keysDir(dataDir), { recursive: true });
  await createKey(keysDir(dataDir), { name: 'K3' });
  const retire = await runCli(['keys', 'retire', k1Id], { MIRROR_DATA_DIR: dataDir });
  assert.equal(retire.code, 0, retire.stderr);
  return build({ releasesDir, site: path.join(dataDir, 'site'), signing: await loadSigning(dataDir, {}) });
}

/** Swaps the served site to `build` at once, as a publish does; the sidecar notices on its next request. */
async function pointServedSite({ served }: Pick<Scene, 'served'>, build: string): Promise<void> {
  await mkdir(path.dirname(served), { recursive: true });
  const swap = `${served}.${randomUUID()}.swap`;
  await symlink(build, swap);
  await rename(swap, served);
}

async function snapshotVersion(build: string): Promise<number> {
  const jws = JSON.parse(await readFile(path.join(build, PUBLIC_DIR, SNAPSHOT_KEY), 'utf8')) as { payload: string };
  return (JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')) as { version: number }).version;
}
