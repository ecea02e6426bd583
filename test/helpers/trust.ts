// For the signing tests: keys made with openpgp.js, GnuPG's own tools run on what the mirror
// publishes, and a private copy of the sample store with an empty data directory.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { copySampleStore, listFiles, removeDir, tempDir } from './store.ts';

/** The settings that give the build a key; a test that wants one passes it explicitly. */
export const SIGNING_SETTINGS = ['MIRROR_SIGNING_KEY', 'MIRROR_SIGNING_KEY_FILE', 'MIRROR_SIGNING_KEY_PASSPHRASE'] as const;

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program; never rejects on a non-zero exit, so a test can expect one. */
export function runTool(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

export interface GnuPG {
  /** GNUPGHOME of this instance, a fresh directory, so the user's keyrings are never read. */
  home: string;
  /** `gpgv --keyring KEYRING SIGNATURE FILE`; `signer` is the fingerprint of a good signature's key. */
  gpgv(keyring: string, signature: string, file: string): Promise<ToolResult & { signer: string | undefined }>;
  gpg(args: string[], cwd?: string): Promise<ToolResult>;
  /** Stops any agent gpg started for this home. */
  close(): Promise<void>;
}

export async function openGnuPG(dir: string): Promise<GnuPG> {
  const home = path.join(dir, 'gnupg');
  await mkdir(home, { recursive: true, mode: 0o700 });
  const env = { GNUPGHOME: home };
  return {
    home,
    async gpgv(keyring, signature, file) {
      const result = await runTool('gpgv', ['--status-fd', '1', '--keyring', path.resolve(keyring), signature, file], { env });
      return { ...result, signer: /^\[GNUPG:\] VALIDSIG ([0-9A-F]{40}) /m.exec(result.stdout)?.[1] };
    },
    gpg: (args, cwd) => runTool('gpg', ['--batch', '--no-tty', ...args], { ...(cwd ? { cwd } : {}), env }),
    async close() {
      await runTool('gpgconf', ['--kill', 'all'], { env });
    },
  };
}

export interface ArmoredKey {
  privateKey: string;
  publicKey: string;
  /** 16 hex digits, upper case, as the mirror names keys. */
  id: string;
  fingerprint: string;
}

/** An OpenPGP key as someone outside the mirror makes it; Ed25519 (legacy EdDSA) unless asked for RSA. */
export async function makeArmoredKey(options: { name?: string; passphrase?: string; type?: 'ed25519' | 'rsa'; date?: Date } = {}): Promise<ArmoredKey> {
  const userIDs = [{ name: options.name ?? 'Release signer', email: 'signer@example.com' }];
  const common = { userIDs, format: 'armored' as const, ...(options.passphrase ? { passphrase: options.passphrase } : {}), ...(options.date ? { date: options.date } : {}) };
  const { privateKey, publicKey } =
    options.type === 'rsa' ? await openpgp.generateKey({ ...common, type: 'rsa', rsaBits: 2048 }) : await openpgp.generateKey({ ...common, type: 'ecc', curve: 'ed25519Legacy', subkeys: [] });
  const key = await openpgp.readKey({ armoredKey: publicKey });
  return { privateKey, publicKey, id: key.getKeyID().toHex().toUpperCase(), fingerprint: key.getFingerprint().toUpperCase() };
}

/** The 32-byte Ed25519 seed of an armored private key, to look for it where it must not be. */
export async function ed25519Seed(armored: string, passphrase?: string): Promise<Buffer> {
  let key = await openpgp.readPrivateKey({ armoredKey: armored });
  if (passphrase) key = await openpgp.decryptKey({ privateKey: key, passphrase });
  const packet = key.keyPacket as unknown as { privateParams: { seed: Uint8Array } };
  return Buffer.from(packet.privateParams.seed);
}

export interface SigningStore {
  dir: string;
  releasesDir: string;
  dataDir: string;
  /** The site path `mirror build` publishes to. */
  site: string;
  /** MIRROR_DATA_DIR and MIRROR_RELEASES for the CLI. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** A copy of the sample store and an empty data directory, under a fresh temporary directory. */
export async function signingStore(): Promise<SigningStore> {
  const dir = await tempDir('mirror-trust-');
  const releasesDir = path.join(dir, 'releases');
  const dataDir = path.join(dir, 'data');
  await copySampleStore(releasesDir, { releases: true });
  return {
    dir,
    releasesDir,
    dataDir,
    site: path.join(dataDir, 'site'),
    env: { MIRROR_DATA_DIR: dataDir, MIRROR_RELEASES: releasesDir },
    close: () => removeDir(dir),
  };
}

/** Every file under `dir` with its bytes. */
export async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const files = await listFiles(dir);
  return new Map(await Promise.all(files.map(async (file) => [file, await readFile(path.join(dir, file))] as const)));
}

/** Inverts the bits of one byte of a file in place. */
export async function flipByte(file: string, offset = 0): Promise<void> {
  const bytes = await readFile(file);
  bytes[offset] = bytes[offset]! ^ 0xff;
  await writeFile(file, bytes);
}
