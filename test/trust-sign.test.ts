// Signed releases, checked with the tools users run: our OpenPGP signatures against openpgp.js's
// and gpgv; keys of the data directory (create, list, a second key, retire) and of the settings; a
// user's download-and-verify over HTTP with curl, gpgv, gpg and sha256sum; reproducible builds; the
// signature cache; and the sidecar signing what it publishes after an upload.
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generalVerify, type GeneralJWS } from 'jose';
import * as openpgp from 'openpgp';
import { loadCatalog } from '../generator/load/index.ts';
import { build } from '../generator/pipeline.ts';
import { currentBuild, readManifest, readRoutes } from '../generator/publish/local-dir.ts';
import { keysDir, loadSigning } from '../generator/trust/index.ts';
import { KEYRING_FILE, createKey, loadKeyring, readPublicKeys, type SigningKey } from '../generator/trust/keyring.ts';
import { prepareDataDir, startSidecarProcess, type DataDir, type SidecarProcess } from './helpers/sidecar-process.ts';
import { binaryArtifact, listFiles, release, removeDir, runCli, sha256, tempDir, writeJson } from './helpers/store.ts';
import { SIGNING_SETTINGS, ed25519Seed, flipByte, makeArmoredKey, openGnuPG, readTree, runTool, signingStore, type ArmoredKey, type GnuPG, type SigningStore } from './helpers/trust.ts';

// A key in the environment running the tests would sign every build here; each test gives its own.
for (const name of SIGNING_SETTINGS) delete process.env[name];

const KEY_DATE = new Date('2024-01-01T00:00:00Z');
const SUMS_1_12_2 = 'binary/releases/agent-as-code/1/12/agent_as_code_1.12.2_SHA256SUMS';
const SUMS_1_8_3 = 'v2/agent-releases/1.8.3/scalepad_agent_1.8.3_SHA256SUMS';

let scratch: string;
let gnupg: GnuPG;
before(async () => {
  scratch = await tempDir('mirror-trust-scratch-');
  gnupg = await openGnuPG(scratch);
});
after(async () => {
  await gnupg.close();
  await removeDir(scratch);
});

/** The site's public files: what a client can fetch. */
const publicDir = (site: string) => path.join(site, 'public');

async function checksumFiles(site: string): Promise<string[]> {
  return (await listFiles(publicDir(site))).filter((file) => file.endsWith('_SHA256SUMS'));
}

/** How many SHA256SUMS files a build of `releasesDir` publishes: one per release, of either layout. */
async function expectedChecksumFiles(releasesDir: string): Promise<number> {
  const catalog = await loadCatalog(releasesDir);
  return catalog.products.reduce((count, product) => count + product.releases.length, 0);
}

/** The file a site serves at `/<relative>`, through its route table: `<sums>.sig` is the primary key's `<sums>.<KEYID>.sig`. */
async function servedFile(site: string, relative: string): Promise<string> {
  const routes = await readRoutes((await currentBuild(site))!);
  const target = routes.paths[`/${relative}`];
  assert.ok(target?.type === 'file', `the site serves no file at /${relative}`);
  return path.join(publicDir(site), target.key);
}

/** gpgv's verdict on a published signature, against the site's published binary keyring. */
async function gpgvPublished(site: string, signature: string, signed: string) {
  const pub = publicDir(site);
  return gnupg.gpgv(path.join(pub, '.well-known/pgp-keys.gpg'), await servedFile(site, signature), path.join(pub, signed));
}

function createdKeyId(stdout: string): string {
  const match = /^created signing key ([0-9A-F]{16}) in /m.exec(stdout);
  assert.ok(match, `mirror keys create printed a key id: ${stdout}`);
  return match[1]!;
}

/** `mirror keys list` as rows: id, status, source, created, user id. */
function keyRows(stdout: string): string[][] {
  return stdout.trim().split('\n').map((line) => line.split(/ {2,}/));
}

describe('a detached signature', () => {
  /** Data whose signature has an R or S starting with a zero byte, so one MPI is shorter. */
  function dataWithShortMpi(key: SigningKey, date: Date): Buffer {
    const lengths = new Map<number, Buffer>();
    for (let i = 0; i < 5000 && lengths.size < 2; i++) {
      const data = Buffer.from(`release ${i}\n`);
      lengths.set(key.sign(data, date).length, data);
    }
    const sorted = [...lengths.keys()].sort((a, b) => a - b);
    assert.ok(sorted.length > 1, 'some signature of 5000 has a shorter MPI');
    return lengths.get(sorted[0]!)!;
  }

  test('is byte for byte what openpgp.js makes for the same key, data and date, and gpgv accepts it', async () => {
    const armored = await makeArmoredKey({ date: KEY_DATE });
    const [key] = (await loadKeyring({ dir: path.join(scratch, 'no-keys'), armoredKey: armored.privateKey })).active;
    assert.ok(key);
    const theirKey = await openpgp.readPrivateKey({ armoredKey: armored.privateKey });
    const keyring = path.join(scratch, 'signature-key.gpg');
    await writeFile(keyring, key.publicKey);
    const date = new Date('2024-02-03T04:05:06Z');
    const samples: Record<string, Buffer> = {
      empty: Buffer.alloc(0),
      'one byte': Buffer.from('x'),
      'a SHA256SUMS file': Buffer.from(`${sha256('tool')}  tool_1.0.0_linux_amd64.zip\n`),
      '64 KiB and one byte': randomBytes(64 * 1024 + 1),
      '1 MiB': randomBytes(1024 * 1024),
      'a shorter MPI': dataWithShortMpi(key, date),
    };
    for (const [name, data] of Object.entries(samples)) {
      const ours = key.sign(data, date);
      const theirs = await openpgp.sign({ message: await openpgp.createMessage({ binary: data }), signingKeys: theirKey, detached: true, format: 'binary', date, config: { nonDeterministicSignaturesViaNotation: false } });
      assert.equal(ours.toString('hex'), Buffer.from(theirs).toString('hex'), name);
      const file = path.join(scratch, 'signed');
      await writeFile(file, data);
      await writeFile(`${file}.sig`, ours);
      const verdict = await gnupg.gpgv(keyring, `${file}.sig`, file);
      assert.equal(verdict.code, 0, `${name}: ${verdict.stderr}`);
      assert.equal(verdict.signer, armored.fingerprint, name);
      await writeFile(file, Buffer.concat([data, Buffer.from('\n')]));
      const changed = await gnupg.gpgv(keyring, `${file}.sig`, file);
      assert.notEqual(changed.code, 0, `${name}: gpgv refuses the signature over changed data`);
      assert.equal(changed.signer, undefined, name);
    }
  });

  test('is never dated before its key was made', async () => {
    const armored = await makeArmoredKey({ date: KEY_DATE });
    const [key] = (await loadKeyring({ dir: path.join(scratch, 'no-keys'), armoredKey: armored.privateKey })).active;
    const theirKey = await openpgp.readPrivateKey({ armoredKey: armored.privateKey });
    const data = Buffer.from('published before the key existed\n');
    const theirs = await openpgp.sign({ message: await openpgp.createMessage({ binary: data }), signingKeys: theirKey, detached: true, format: 'binary', date: KEY_DATE, config: { nonDeterministicSignaturesViaNotation: false } });
    assert.equal(key!.sign(data, new Date('2020-05-05T00:00:00Z')).toString('hex'), Buffer.from(theirs).toString('hex'));
  });
});

describe('mirror keys: the data directory\'s keys', () => {
  let store: SigningStore;
  let first: string;
  /** When the first key existed by: keys are dated in whole seconds. */
  let firstMadeBy: number;
  let second: string;
  before(async () => {
    store = await signingStore();
  });
  after(async () => {
    await store.close();
  });

  test('create writes the keyring at mode 0600 in a 0700 folder; list shows the key active and primary', async () => {
    const created = await runCli(['keys', 'create', '--name', 'First signer', '--email', 'first@example.com'], store.env);
    assert.equal(created.code, 0, created.stderr);
    first = createdKeyId(created.stdout);
    firstMadeBy = Date.now();
    const dir = keysDir(store.dataDir);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(path.join(dir, KEYRING_FILE))).mode & 0o777, 0o600);
    const stored = JSON.parse(await readFile(path.join(dir, KEYRING_FILE), 'utf8'));
    assert.deepEqual(stored.keys.map((key: { id: string; retired: unknown }) => [key.id, key.retired]), [[first, null]]);
    const listed = await runCli(['keys', 'list'], store.env);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = keyRows(listed.stdout);
    assert.equal(rows.length, 1);
    assert.deepEqual([rows[0]![0], rows[0]![1], rows[0]![2], rows[0]![4]], [first, 'active (primary)', 'data directory', 'First signer <first@example.com>']);
  });

  test('with a second key, both sign every SHA256SUMS; <file>.sig is the primary\'s', async () => {
    // A second later, the second key is the younger whatever the ids, and the first stays primary.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstMadeBy + 1000 - Date.now())));
    const created = await runCli(['keys', 'create', '--name', 'Second signer'], store.env);
    assert.equal(created.code, 0, created.stderr);
    second = createdKeyId(created.stdout);
    const [listed, built] = await Promise.all([runCli(['keys', 'list'], store.env), runCli(['build'], store.env)]);
    assert.deepEqual(keyRows(listed.stdout).map((row) => [row[0], row[1]]), [[first, 'active (primary)'], [second, 'active']]);
    assert.equal(built.code, 0, built.stderr);
    const expectedSums = await expectedChecksumFiles(store.releasesDir);
    assert.match(built.stdout, new RegExp(`^signed by 2 keys: ${2 * expectedSums} signatures made, 0 reused; snapshot version \\d+, expires `, 'm'));
    const sums = await checksumFiles(store.site);
    assert.equal(sums.length, expectedSums);
    assert.ok(sums.includes(SUMS_1_12_2) && sums.includes(SUMS_1_8_3), 'both layouts have checksum files');
    await Promise.all(
      sums.map(async (file) => {
        for (const id of [first, second]) {
          const verdict = await gpgvPublished(store.site, `${file}.${id}.sig`, file);
          assert.equal(verdict.code, 0, `${file}.${id}.sig: ${verdict.stderr}`);
          assert.ok(verdict.signer?.endsWith(id), `${file}.${id}.sig is by ${id}, not ${verdict.signer}`);
        }
        assert.equal(await servedFile(store.site, `${file}.sig`), path.join(publicDir(store.site), `${file}.${first}.sig`), file);
      }),
    );
  });

  test('a retired key signs nothing new, stays published apart from the active keys, and what it signed still verifies', async () => {
    const saved = path.join(scratch, 'retired-key.sig');
    await copyFile(path.join(publicDir(store.site), `${SUMS_1_12_2}.${first}.sig`), saved);
    const retired = await runCli(['keys', 'retire', first], store.env);
    assert.equal(retired.code, 0, retired.stderr);
    assert.match(retired.stdout, new RegExp(`^retired key ${first}:`, 'm'));
    const [listed, built] = await Promise.all([runCli(['keys', 'list'], store.env), runCli(['build'], store.env)]);
    assert.deepEqual(keyRows(listed.stdout).map((row) => [row[0], row[1]]), [[second, 'active (primary)'], [first, 'retired']]);
    const stored = JSON.parse(await readFile(path.join(keysDir(store.dataDir), KEYRING_FILE), 'utf8'));
    const storedFirst = stored.keys.find((key: { id: string }) => key.id === first);
    assert.equal(storedFirst.privateKey, undefined, 'the retired key\'s private half is deleted');
    assert.match(storedFirst.retired, /^\d{4}-\d\d-\d\dT/);
    assert.equal((await stat(path.join(keysDir(store.dataDir), KEYRING_FILE))).mode & 0o777, 0o600);

    assert.equal(built.code, 0, built.stderr);
    assert.match(built.stdout, /^signed by 1 key: /m);
    const files = await listFiles(publicDir(store.site));
    assert.deepEqual(files.filter((file) => file.includes(first)), [`.well-known/pgp-keys/${first}.asc`]);
    // Pinning pgp-keys.asc trusts the keys that sign now, never a retired one.
    const active = await readPublicKeys(await readFile(path.join(publicDir(store.site), '.well-known/pgp-keys.asc'), 'utf8'));
    assert.deepEqual(active.map(({ published }) => published.id), [second]);
    const retiredKeys = await readPublicKeys(await readFile(path.join(publicDir(store.site), '.well-known/pgp-keys-retired.asc'), 'utf8'));
    assert.deepEqual(retiredKeys.map(({ published }) => published.id), [first]);
    for (const file of await checksumFiles(store.site)) {
      assert.equal(await servedFile(store.site, `${file}.sig`), path.join(publicDir(store.site), `${file}.${second}.sig`), file);
    }
    const jwks = JSON.parse(await readFile(path.join(publicDir(store.site), '.well-known/mirror/keys.json'), 'utf8'));
    assert.deepEqual({ keys: jwks.keys.map((key: { kid: string }) => key.kid), retired: jwks.retired.map((key: { kid: string }) => key.kid) }, { keys: [second], retired: [first] });

    const signed = path.join(publicDir(store.site), SUMS_1_12_2);
    const withActiveOnly = await gnupg.gpgv(path.join(publicDir(store.site), '.well-known/pgp-keys.gpg'), saved, signed);
    assert.notEqual(withActiveOnly.code, 0, 'the active keyring does not check the retired key\'s signature');
    const dearmored = path.join(scratch, 'after-retire.gpg');
    const dearmor = await gnupg.gpg(['--yes', '--dearmor', '--output', dearmored, path.join(publicDir(store.site), '.well-known/pgp-keys-retired.asc')]);
    assert.equal(dearmor.code, 0, dearmor.stderr);
    const armored = await gnupg.gpgv(dearmored, saved, signed);
    assert.equal(armored.code, 0, armored.stderr);
    assert.ok(armored.signer?.endsWith(first));
  });

  test('retiring an unknown key exits 1 and says why', async () => {
    const unknown = await runCli(['keys', 'retire', '0123456789ABCDEF'], store.env);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, 'No key 0123456789ABCDEF; `mirror keys list` shows the keys\n');
  });
});

// Independent builds, each in its own data directory: they run at once.
describe('a signing key from the settings', { concurrency: true }, () => {
  const PASSPHRASE = 'correct horse battery staple';
  let plain: ArmoredKey;
  let protectedKey: ArmoredKey;
  let rsa: ArmoredKey;
  const stores: SigningStore[] = [];
  const newStore = async () => {
    const store = await signingStore();
    stores.push(store);
    return store;
  };
  before(async () => {
    [plain, protectedKey, rsa] = await Promise.all([makeArmoredKey({ name: 'Settings signer' }), makeArmoredKey({ name: 'Protected signer', passphrase: PASSPHRASE }), makeArmoredKey({ name: 'RSA signer', type: 'rsa' })]);
  });
  after(async () => {
    await Promise.all(stores.map((store) => store.close()));
  });

  /** Neither the armored key nor its Ed25519 seed, in any usual encoding, is in any file of the data directory. */
  async function assertNotStored(dataDir: string, key: ArmoredKey, passphrase?: string): Promise<void> {
    const seed = await ed25519Seed(key.privateKey, passphrase);
    const needles = [seed, Buffer.from(seed.toString('hex')), Buffer.from(seed.toString('hex').toUpperCase()), Buffer.from(seed.toString('base64')), Buffer.from(seed.toString('base64url')), Buffer.from(key.privateKey)];
    await assert.rejects(stat(path.join(keysDir(dataDir), KEYRING_FILE)), { code: 'ENOENT' });
    const files = await listFiles(dataDir);
    assert.ok(files.length > 50, 'the data directory holds the build');
    for (const file of files) {
      const bytes = await readFile(path.join(dataDir, file));
      for (const needle of needles) assert.equal(bytes.indexOf(needle), -1, `${file} holds the settings key`);
    }
  }

  async function assertSignedBy(site: string, key: ArmoredKey): Promise<void> {
    for (const file of await checksumFiles(site)) {
      for (const signature of [`${file}.sig`, `${file}.${key.id}.sig`]) {
        const verdict = await gpgvPublished(site, signature, file);
        assert.equal(verdict.code, 0, `${signature}: ${verdict.stderr}`);
        assert.equal(verdict.signer, key.fingerprint, signature);
      }
    }
  }

  test('MIRROR_SIGNING_KEY and MIRROR_SIGNING_KEY_FILE sign the same, and the key is never written to the data directory', async () => {
    const [fromValue, fromFile] = await Promise.all([newStore(), newStore()]);
    const keyFile = path.join(fromFile.dir, 'signing-key.asc');
    await writeFile(keyFile, plain.privateKey, { mode: 0o600 });
    const value = await runCli(['build'], { ...fromValue.env, MIRROR_SIGNING_KEY: plain.privateKey });
    assert.equal(value.code, 0, value.stderr);
    assert.match(value.stdout, new RegExp(`^signed by 1 key: ${await expectedChecksumFiles(fromValue.releasesDir)} signatures made`, 'm'));
    // What `mirror build` does with the setting, in this process: each CLI run costs seconds.
    const signing = await loadSigning(fromFile.dataDir, { MIRROR_SIGNING_KEY_FILE: keyFile });
    assert.deepEqual(signing.keyring.active.map((key) => [key.id, key.source]), [[plain.id, 'settings']]);
    await build({ releasesDir: fromFile.releasesDir, site: fromFile.site, signing });
    await assertSignedBy(fromValue.site, plain);
    for (const sums of await checksumFiles(fromValue.site)) {
      assert.deepEqual(await readFile(await servedFile(fromFile.site, `${sums}.sig`)), await readFile(await servedFile(fromValue.site, `${sums}.sig`)), sums);
    }
    await assertNotStored(fromValue.dataDir, plain);
    await assertNotStored(fromFile.dataDir, plain);
  });

  test('a protected key signs with MIRROR_SIGNING_KEY_PASSPHRASE; without it or with a wrong one, the build stops and publishes nothing', async () => {
    const store = await newStore();
    const env = { ...store.env, MIRROR_SIGNING_KEY: protectedKey.privateKey };
    await build({ releasesDir: store.releasesDir, site: store.site, signing: await loadSigning(store.dataDir, { MIRROR_SIGNING_KEY: protectedKey.privateKey, MIRROR_SIGNING_KEY_PASSPHRASE: PASSPHRASE }) });
    await assertSignedBy(store.site, protectedKey);
    await assertNotStored(store.dataDir, protectedKey, PASSPHRASE);
    const published = await readlink(store.site);
    const builds = await readdir(`${store.site}.builds`);
    // A release added since, so a build that went through would publish a new site.
    await writeJson(path.join(store.releasesDir, 'agent-as-code', '1.14.0.json'), release('1.14.0', [binaryArtifact('agent_as_code', '1.14.0', 'linux', 'amd64')]));
    const [missing, wrong] = await Promise.all([runCli(['build'], env), runCli(['build'], { ...env, MIRROR_SIGNING_KEY_PASSPHRASE: 'wrong horse' })]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `MIRROR_SIGNING_KEY: key ${protectedKey.id} is passphrase-protected; set MIRROR_SIGNING_KEY_PASSPHRASE\n`);
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stderr, `MIRROR_SIGNING_KEY: MIRROR_SIGNING_KEY_PASSPHRASE does not unlock key ${protectedKey.id}\n`);
    assert.doesNotMatch(missing.stdout + wrong.stdout + wrong.stderr, /wrong horse|correct horse/);
    assert.equal(await readlink(store.site), published);
    assert.deepEqual(await readdir(`${store.site}.builds`), builds);
  });

  test('a key made by gpg --quick-gen-key, as the refusal below suggests, signs', async () => {
    const store = await newStore();
    const own = await openGnuPG(store.dir);
    try {
      const made = await own.gpg(['--pinentry-mode', 'loopback', '--passphrase', '', '--quick-gen-key', 'GnuPG signer <gnupg@example.com>', 'ed25519', 'sign', 'never']);
      assert.equal(made.code, 0, made.stderr);
      const exported = await own.gpg(['--pinentry-mode', 'loopback', '--passphrase', '', '--armor', '--export-secret-keys']);
      assert.equal(exported.code, 0, exported.stderr);
      const key = await openpgp.readKey({ armoredKey: exported.stdout });
      await build({ releasesDir: store.releasesDir, site: store.site, signing: await loadSigning(store.dataDir, { MIRROR_SIGNING_KEY: exported.stdout }) });
      await assertSignedBy(store.site, { privateKey: exported.stdout, publicKey: '', id: key.getKeyID().toHex().toUpperCase(), fingerprint: key.getFingerprint().toUpperCase() });
    } finally {
      await own.close();
    }
  });

  test('an RSA key is refused: mirror signs with Ed25519', async () => {
    const store = await newStore();
    const refused = await runCli(['build'], { ...store.env, MIRROR_SIGNING_KEY: rsa.privateKey });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`^Key ${rsa.id} \\(settings\\) signs with rsa\\w+; mirror signs with Ed25519 keys`));
    await assert.rejects(readlink(store.site), { code: 'ENOENT' });
  });
});

describe('a user checks a download over HTTP (mirror serve)', () => {
  let data: DataDir;
  let dataDir: string;
  let server: SidecarProcess;
  let keyId: string;
  before(async () => {
    data = await prepareDataDir();
    dataDir = data.env.MIRROR_DATA_DIR!;
    keyId = await createKey(keysDir(dataDir), { name: 'Walkthrough signer', email: 'releases@example.com' });
    await build({ releasesDir: data.releasesDir, site: path.join(dataDir, 'site'), signing: await loadSigning(dataDir, {}) });
    server = await startSidecarProcess(data.env);
  });
  after(async () => {
    try {
      server?.child.kill('SIGTERM');
      if (server) assert.equal(await server.exited, 0, server.output());
    } finally {
      await rm(data.dir, { recursive: true, force: true });
    }
  });

  const curl = (args: string[], cwd: string) => runTool('curl', ['-fsS', ...args], { cwd });

  /** The walkthrough: download, verify the checksum file's signature, check the download against it. */
  async function walkthrough(artifact: { url: string; name: string }, sumsPath: string): Promise<void> {
    const work = await mkdtemp(path.join(data.dir, 'user-'));
    const sums = path.basename(sumsPath);
    for (const args of [['-L', '--create-dirs', '-o', artifact.name, server.url + artifact.url], ['-O', server.url + sumsPath], ['-O', `${server.url + sumsPath}.sig`], ['-O', `${server.url}/.well-known/pgp-keys.asc`]]) {
      const fetched = await curl(args, work);
      assert.equal(fetched.code, 0, `curl ${args.join(' ')}: ${fetched.stderr}`);
    }
    const dearmor = await gnupg.gpg(['--yes', '--dearmor', '--output', 'key.gpg', 'pgp-keys.asc'], work);
    assert.equal(dearmor.code, 0, dearmor.stderr);
    const verified = await gnupg.gpgv(path.join(work, 'key.gpg'), path.join(work, `${sums}.sig`), path.join(work, sums));
    assert.equal(verified.code, 0, verified.stderr);
    assert.ok(verified.signer?.endsWith(keyId));
    const checked = await runTool('sha256sum', ['-c', '--ignore-missing', sums], { cwd: work });
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.equal(checked.stdout, `${artifact.name}: OK\n`);
    const imported = await gnupg.gpg(['--import', 'pgp-keys.asc'], work);
    assert.equal(imported.code, 0, imported.stderr);
    const gpgVerify = await gnupg.gpg(['--verify', `${sums}.sig`, sums], work);
    assert.equal(gpgVerify.code, 0, gpgVerify.stderr);
    assert.match(gpgVerify.stderr, /Good signature from "Walkthrough signer <releases@example\.com>"/);

    await copyFile(path.join(work, sums), path.join(work, 'original'));
    await flipByte(path.join(work, sums));
    const tampered = await gnupg.gpgv(path.join(work, 'key.gpg'), path.join(work, `${sums}.sig`), path.join(work, sums));
    assert.equal(tampered.code, 1, 'gpgv refuses a changed checksum file');
    assert.match(tampered.stdout, /^\[GNUPG:\] BADSIG /m);
    await copyFile(path.join(work, 'original'), path.join(work, sums));
    await flipByte(path.join(work, artifact.name), 10);
    const corrupt = await runTool('sha256sum', ['-c', '--ignore-missing', sums], { cwd: work });
    assert.equal(corrupt.code, 1, 'sha256sum -c refuses a changed download');
    assert.equal(corrupt.stdout, `${artifact.name}: FAILED\n`);
  }

  test('binary layout: agent-as-code 1.12.2\'s zip, SHA256SUMS and .sig with curl, gpgv, gpg and sha256sum', async () => {
    const name = 'agent_as_code_1.12.2_linux_amd64.zip';
    await walkthrough({ url: `/binary/releases/agent-as-code/1/12/${name}`, name }, `/${SUMS_1_12_2}`);
  });

  test('agent layout: scalepad-agent 1.8.3\'s arm64 installer (whose file name the x86_64 one shares), SHA256SUMS and .sig', async () => {
    // The agent layout's SHA256SUMS names each installer by its path under /downloads/.
    await walkthrough({ url: '/v2/agent-releases/1.8.3/download?platform=macos&arch=arm64', name: 'agent/macos/arm64/1.8.3/ScalepadAgent-1.8.3.pkg' }, `/${SUMS_1_8_3}`);
  });

  test('an upload is published signed, by a key made while the sidecar runs too, under a newer snapshot', async () => {
    const snapshotBefore = await verifiedSnapshot(server.url);
    const added = await createKey(keysDir(dataDir), { name: 'Added while serving' });
    const bytes = randomBytes(3000);
    const answer = await fetch(`${server.url}/binary/releases/agent-as-code/1/16/upload`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${await data.token()}` },
      body: JSON.stringify({ version: '1.16.0', platform: 'linux', architecture: 'amd64', file_data: bytes.toString('base64') }),
    });
    assert.equal(answer.status, 201, await answer.text());

    const sumsPath = '/binary/releases/agent-as-code/1/16/agent_as_code_1.16.0_SHA256SUMS';
    const work = await mkdtemp(path.join(data.dir, 'upload-'));
    const download = async (url: string) => {
      const response = await fetch(server.url + url);
      assert.equal(response.status, 200, url);
      const body = Buffer.from(await response.arrayBuffer());
      await writeFile(path.join(work, path.basename(url)), body);
      return body;
    };
    const sums = await download(sumsPath);
    assert.equal(sums.toString(), `${sha256(bytes)}  agent_as_code_1.16.0_linux_amd64.zip\n`);
    await download('/.well-known/pgp-keys.gpg');
    const signatures = new Map<string, Buffer>();
    for (const [suffix, id] of [['.sig', keyId], [`.${keyId}.sig`, keyId], [`.${added}.sig`, added]] as const) {
      signatures.set(`${sumsPath}${suffix}`, await download(`${sumsPath}${suffix}`));
      const verdict = await gnupg.gpgv(path.join(work, 'pgp-keys.gpg'), path.join(work, path.basename(sumsPath + suffix)), path.join(work, path.basename(sumsPath)));
      assert.equal(verdict.code, 0, `${suffix}: ${verdict.stderr}`);
      assert.ok(verdict.signer?.endsWith(id), `${suffix} is by ${id}`);
    }

    const snapshot = await verifiedSnapshot(server.url);
    assert.deepEqual(snapshot.signedBy, [keyId, added]);
    assert.ok(snapshot.payload.version > snapshotBefore.payload.version, `${snapshot.payload.version} > ${snapshotBefore.payload.version}`);
    assert.deepEqual(snapshot.payload.indexes[sumsPath], { sha256: sha256(sums), length: sums.length });
    for (const [url, body] of signatures) assert.deepEqual(snapshot.payload.indexes[url], { sha256: sha256(body), length: body.length }, url);
    assert.equal(snapshotBefore.payload.indexes[sumsPath], undefined);
  });
});

interface SnapshotPayload {
  version: number;
  expires: string;
  indexes: Record<string, { sha256: string; length: number }>;
  pages: Record<string, { sha256: string; length: number }>;
}

/** The served snapshot, each of its signatures checked with jose against the served keys.json. */
async function verifiedSnapshot(url: string): Promise<{ payload: SnapshotPayload; signedBy: string[] }> {
  const jws = (await (await fetch(`${url}/.well-known/mirror/snapshot.json`)).json()) as GeneralJWS;
  const jwks = (await (await fetch(`${url}/.well-known/mirror/keys.json`)).json()) as { keys: { kid: string; kty: string; crv: string; x: string }[] };
  const signedBy: string[] = [];
  for (const signature of jws.signatures) {
    const header = JSON.parse(Buffer.from(signature.protected!, 'base64url').toString()) as { kid: string; alg: string; typ: string };
    const jwk = jwks.keys.find((key) => key.kid === header.kid);
    assert.ok(jwk, `keys.json has the snapshot's key ${header.kid}`);
    assert.deepEqual([header.alg, header.typ], ['EdDSA', 'mirror-snapshot+json']);
    await generalVerify({ payload: jws.payload, signatures: [signature] }, createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' }));
    signedBy.push(header.kid);
  }
  return { payload: JSON.parse(Buffer.from(jws.payload, 'base64url').toString()) as SnapshotPayload, signedBy };
}

function snapshotPayloadOf(text: string): SnapshotPayload {
  return JSON.parse(Buffer.from((JSON.parse(text) as GeneralJWS).payload, 'base64url').toString()) as SnapshotPayload;
}

describe('builds', () => {
  const stores: SigningStore[] = [];
  after(async () => {
    await Promise.all(stores.map((store) => store.close()));
  });

  test('two data directories sharing a keyring build byte-identical sites, the snapshot\'s version and expiry apart', async () => {
    const [one, two] = await Promise.all([signingStore(), signingStore()]);
    stores.push(one, two);
    await createKey(keysDir(one.dataDir), { name: 'Reproducible' }, KEY_DATE);
    await createKey(keysDir(one.dataDir), { name: 'Reproducible too' }, new Date(KEY_DATE.getTime() + 1000));
    await mkdir(keysDir(two.dataDir), { recursive: true, mode: 0o700 });
    await copyFile(path.join(keysDir(one.dataDir), KEYRING_FILE), path.join(keysDir(two.dataDir), KEYRING_FILE));
    const now = new Date('2025-06-01T00:00:00Z');
    const later = new Date(now.getTime() + 3600_000);
    await build({ releasesDir: one.releasesDir, site: one.site, signing: { ...(await loadSigning(one.dataDir, {})), now: () => now } });
    await build({ releasesDir: one.releasesDir, site: two.site, signing: { ...(await loadSigning(two.dataDir, {})), now: () => later } });
    const [a, b] = await Promise.all([readTree(publicDir(one.site)), readTree(publicDir(two.site))]);
    assert.deepEqual([...b.keys()], [...a.keys()]);
    const SNAPSHOT = '.well-known/mirror/snapshot.json';
    const differing = [...a.keys()].filter((file) => !a.get(file)!.equals(b.get(file)!));
    assert.deepEqual(differing, [SNAPSHOT]);
    const signatures = [...a.keys()].filter((file) => file.endsWith('.sig')).length;
    assert.ok(signatures >= 2 * (await expectedChecksumFiles(one.releasesDir)), `the compared sites are signed by both keys: ${signatures} signatures`);
    const { version: versionA, expires: expiresA, ...restA } = snapshotPayloadOf(a.get(SNAPSHOT)!.toString());
    const { version: versionB, expires: expiresB, ...restB } = snapshotPayloadOf(b.get(SNAPSHOT)!.toString());
    assert.deepEqual(restB, restA);
    assert.equal(versionB - versionA, 3600);
    assert.equal(Date.parse(expiresB) - Date.parse(expiresA), 3600_000);
  });

  test('after one new release, only its SHA256SUMS is signed, once per key; every other signature file is kept', async () => {
    const store = await signingStore();
    stores.push(store);
    await createKey(keysDir(store.dataDir), { name: 'Cached' }, KEY_DATE);
    await createKey(keysDir(store.dataDir), { name: 'Cached too' }, new Date(KEY_DATE.getTime() + 1000));
    const first = await build({ releasesDir: store.releasesDir, site: store.site, signing: await loadSigning(store.dataDir, {}) });
    const sumsBefore = await checksumFiles(store.site);
    assert.equal(sumsBefore.length, await expectedChecksumFiles(store.releasesDir));
    assert.deepEqual({ made: first.signing.signaturesMade, reused: first.signing.signaturesReused, keys: first.signing.keys }, { made: 2 * sumsBefore.length, reused: 0, keys: 2 });

    await writeJson(path.join(store.releasesDir, 'agent-as-code', '1.14.0.json'), release('1.14.0', [binaryArtifact('agent_as_code', '1.14.0', 'linux', 'amd64')]));
    const second = await build({ releasesDir: store.releasesDir, site: store.site, signing: await loadSigning(store.dataDir, {}) });
    assert.equal(second.signing.signaturesMade, second.signing.keys);
    assert.equal(second.signing.signaturesReused, 2 * sumsBefore.length);
    assert.equal(second.signing.snapshot?.resigned, true);
    const newSums = 'binary/releases/agent-as-code/1/14/agent_as_code_1.14.0_SHA256SUMS';
    assert.deepEqual(await checksumFiles(store.site), [...sumsBefore, newSums].sort());

    const [before, after] = await Promise.all([readManifest(first.publish.build), readManifest(second.publish.build)]);
    const changed = Object.keys(after.files).filter((key) => before.files[key]?.sha256 !== after.files[key]!.sha256);
    const changedSignatures = changed.filter((key) => key.endsWith('.sig'));
    assert.deepEqual(changedSignatures.sort(), changedSignatures.filter((key) => key.startsWith(newSums)).sort());
    assert.equal(changedSignatures.length, 2, 'one .KEYID.sig per key for the new release (its .sig is a route to the primary\'s)');
    // routes.json and site.json are always written.
    assert.equal(second.publish.written, changed.length);
    for (const key of Object.keys(before.files).filter((file) => file.endsWith('.sig'))) {
      const [old, kept] = await Promise.all([stat(path.join(first.publish.build, 'public', key)), stat(path.join(second.publish.build, 'public', key))]);
      assert.equal(kept.ino, old.ino, `${key} is hard-linked from the previous build`);
    }

    const third = await build({ releasesDir: store.releasesDir, site: store.site, signing: await loadSigning(store.dataDir, {}) });
    assert.deepEqual({ made: third.signing.signaturesMade, written: third.publish.written, resigned: third.signing.snapshot?.resigned }, { made: 0, written: 0, resigned: false });
  });
});
