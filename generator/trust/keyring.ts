// The publisher's OpenPGP signing keys: those `mirror keys create` made, kept in the data directory
// (keys/keyring.json, mode 0600), and the one the settings give (MIRROR_SIGNING_KEY or
// MIRROR_SIGNING_KEY_FILE, optionally passphrase-protected), which is never written to disk. Every
// active key signs; a retired key signs nothing new but stays published, so what it signed still
// checks. Keys are Ed25519 (legacy EdDSA, the kind GnuPG 2.2's gpgv on Debian accepts).
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { z } from 'zod';
import { detachedSignature, type SignatureIssuer } from './openpgp-signature.ts';

export interface PublishedKey {
  /** The primary key's 16-hex-digit id, upper case: names its signature files and its JWK. */
  id: string;
  fingerprint: string;
  /** When the signing key was made; no signature by it is dated earlier. */
  created: Date;
  userId: string;
  status: 'active' | 'retired';
  /** Where the key came from: the publisher's own keys, or a file or mirror a verifier read. */
  source: 'data directory' | 'settings' | 'public';
  /** The OpenPGP public key, binary. */
  publicKey: Uint8Array;
  /** The same Ed25519 key as a JWK, which verifies the signed snapshot. */
  jwk: Ed25519Jwk;
}

export interface Ed25519Jwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

export interface SigningKey extends PublishedKey {
  status: 'active';
  /** The Ed25519 private key, for the snapshot's JWS. */
  privateKey: KeyObject;
  /** A detached OpenPGP signature over `data`, dated `date` (never before the key was made); a binary-document one unless `type` says canonical text. */
  sign(data: Uint8Array, date: Date, type?: number): Buffer;
}

export interface Keyring {
  /** Oldest first; the first is the primary key, whose signature is also `<file>.sig`. */
  active: SigningKey[];
  retired: PublishedKey[];
}

export interface KeyringOptions {
  /** The data directory's key folder, `$MIRROR_DATA_DIR/keys`. */
  dir: string;
  /** An armored private key (or several) from the settings. */
  armoredKey?: string | undefined;
  /** The setting it came from, named in errors. */
  setting?: 'MIRROR_SIGNING_KEY' | 'MIRROR_SIGNING_KEY_FILE';
  passphrase?: string | undefined;
}

export const KEYRING_FILE = 'keyring.json';

/** The keyring of the data directory's key folder and the settings; `MIRROR_SIGNING_KEY_FILE` is read here. */
export async function loadKeyringFromSettings(dir: string, settings: { MIRROR_SIGNING_KEY?: string | undefined; MIRROR_SIGNING_KEY_FILE?: string | undefined; MIRROR_SIGNING_KEY_PASSPHRASE?: string | undefined }): Promise<Keyring> {
  const file = settings.MIRROR_SIGNING_KEY_FILE || undefined;
  if (settings.MIRROR_SIGNING_KEY && file) throw new KeyError('Set MIRROR_SIGNING_KEY or MIRROR_SIGNING_KEY_FILE, not both');
  const armoredKey = file
    ? await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
        throw new KeyError(`MIRROR_SIGNING_KEY_FILE: cannot read ${file} (${error.code ?? error.message})`);
      })
    : settings.MIRROR_SIGNING_KEY || undefined;
  return loadKeyring({ dir, armoredKey, setting: file ? 'MIRROR_SIGNING_KEY_FILE' : 'MIRROR_SIGNING_KEY', passphrase: settings.MIRROR_SIGNING_KEY_PASSPHRASE || undefined });
}

export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyError';
  }
}

const StoredKey = z.object({
  id: z.string().regex(/^[0-9A-F]{16}$/),
  retired: z.string().datetime().nullable(),
  publicKey: z.string(),
  privateKey: z.string().optional(),
});
const StoredKeyring = z.object({ keys: z.array(StoredKey) });
type StoredKeyring = z.infer<typeof StoredKeyring>;

export async function loadKeyring(options: KeyringOptions): Promise<Keyring> {
  const stored = await readStored(options.dir);
  const retiredIds = new Set(stored.keys.filter((key) => key.retired !== null).map((key) => key.id));
  const active: SigningKey[] = [];
  const retired: PublishedKey[] = [];
  const seen = new Set<string>();
  const addPublic = async (armoredPublic: string, source: PublishedKey['source']) => {
    const published = await publishedKey(await openpgp.readKey({ armoredKey: armoredPublic }), source);
    if (seen.has(published.id)) return;
    seen.add(published.id);
    retired.push({ ...published, status: 'retired' });
  };
  const addPrivate = async (armoredPrivate: string, source: PublishedKey['source'], passphrase?: string) => {
    const where = source === 'settings' ? (options.setting ?? 'MIRROR_SIGNING_KEY') : 'the data directory\'s keyring';
    for (const key of await readPrivateKeys(armoredPrivate, where, passphrase)) {
      const signing = await signingKey(key, source);
      if (seen.has(signing.id)) continue;
      seen.add(signing.id);
      if (retiredIds.has(signing.id)) retired.push(withoutPrivate(signing));
      else active.push(signing);
    }
  };
  if (options.armoredKey) await addPrivate(options.armoredKey, 'settings', options.passphrase);
  for (const key of stored.keys) {
    if (key.retired === null && key.privateKey) await addPrivate(key.privateKey, 'data directory');
    else await addPublic(key.publicKey, 'data directory');
  }
  // Stable: keys made in the same second keep the order they were added in.
  const byAge = (a: PublishedKey, b: PublishedKey) => a.created.getTime() - b.created.getTime();
  return { active: active.sort(byAge), retired: retired.sort(byAge) };
}

/** Makes an Ed25519 signing key and keeps it in the data directory; returns its id. */
export async function createKey(dir: string, userId: { name: string; email?: string | undefined }, date = new Date()): Promise<string> {
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: [userId.email ? { name: userId.name, email: userId.email } : { name: userId.name }],
    subkeys: [],
    date: new Date(Math.floor(date.getTime() / 1000) * 1000),
    format: 'armored',
  });
  const id = await keyIdOf(publicKey);
  await updateStored(dir, (stored) => ({ keys: [...stored.keys, { id, retired: null, publicKey, privateKey }] }));
  return id;
}

/**
 * Stops a key signing: its private half is deleted from the data directory and its public half
 * stays published. A key from the settings is retired here too (take it out of the settings next).
 */
export async function retireKey(dir: string, keyring: Keyring, id: string, date = new Date()): Promise<PublishedKey> {
  const wanted = id.toUpperCase().replace(/^0X/, '');
  const key = [...keyring.active, ...keyring.retired].find((candidate) => candidate.id === wanted || candidate.fingerprint === wanted || candidate.id.endsWith(wanted) && wanted.length >= 8);
  if (!key) throw new KeyError(`No key ${id}; \`mirror keys list\` shows the keys`);
  if (key.status === 'retired') throw new KeyError(`Key ${key.id} is already retired`);
  const publicKey = armorPublicKeys([key]);
  await updateStored(dir, (stored) => {
    const others = stored.keys.filter((entry) => entry.id !== key.id);
    return { keys: [...others, { id: key.id, retired: date.toISOString(), publicKey }] };
  });
  return { ...key, status: 'retired' };
}

/** Public keys from an armored block or a binary keyring (a pinned pgp-keys.asc or .gpg), with the keys to verify against. */
export async function readPublicKeys(data: string | Uint8Array): Promise<{ key: openpgp.PublicKey; published: PublishedKey }[]> {
  const keys = typeof data === 'string' ? await openpgp.readKeys({ armoredKeys: data }) : await openpgp.readKeys({ binaryKeys: data });
  return Promise.all(keys.map(async (key) => ({ key, published: await publishedKey(key, 'public') })));
}

/** Several public keys in one armored block, as `gpg --import` and `gpg --dearmor` read it. */
export function armorPublicKeys(keys: Pick<PublishedKey, 'publicKey'>[]): string {
  const bytes = Buffer.concat(keys.map((key) => key.publicKey));
  // With its checksum line: GnuPG 2.2 cannot read some armor without one (dev.gnupg.org/T7071).
  return openpgp.armor(openpgp.enums.armor.publicKey, bytes, undefined, undefined, undefined, true);
}

async function readPrivateKeys(armored: string, where: string, passphrase: string | undefined): Promise<openpgp.PrivateKey[]> {
  let keys: openpgp.PrivateKey[];
  try {
    keys = await openpgp.readPrivateKeys({ armoredKeys: armored });
  } catch (error) {
    throw new KeyError(`${where}: not an armored OpenPGP private key (${(error as Error).message})`);
  }
  return Promise.all(
    keys.map(async (key) => {
      if (key.isDecrypted()) return key;
      if (!passphrase) throw new KeyError(`${where}: key ${key.getKeyID().toHex().toUpperCase()} is passphrase-protected; set MIRROR_SIGNING_KEY_PASSPHRASE`);
      try {
        return await openpgp.decryptKey({ privateKey: key, passphrase });
      } catch {
        throw new KeyError(`${where}: MIRROR_SIGNING_KEY_PASSPHRASE does not unlock key ${key.getKeyID().toHex().toUpperCase()}`);
      }
    }),
  );
}

async function signingKey(key: openpgp.PrivateKey, source: PublishedKey['source']): Promise<SigningKey> {
  const published = await publishedKey(key.toPublic(), source);
  const signing = await key.getSigningKey().catch(() => undefined);
  const packet = signing?.keyPacket as (openpgp.SecretKeyPacket & { privateParams?: { seed?: Uint8Array } }) | undefined;
  if (!signing || !packet?.privateParams?.seed) throw new KeyError(`Key ${published.id} (${source}) has no usable Ed25519 signing key; create one with \`mirror keys create\` or \`gpg --quick-gen-key NAME ed25519 sign never\``);
  const jwk = signingJwk(signing.keyPacket, published.id);
  const privateKey = createPrivateKey({ key: { ...jwk, d: Buffer.from(packet.privateParams.seed).toString('base64url') }, format: 'jwk' });
  const issuer: SignatureIssuer = { fingerprint: Buffer.from(signing.getFingerprint(), 'hex'), keyId: Buffer.from(signing.getKeyID().toHex(), 'hex') };
  const created = signing.getCreationTime();
  return {
    ...published,
    jwk,
    created,
    status: 'active',
    privateKey,
    sign: (data, date, type) => detachedSignature(data, privateKey, issuer, date < created ? created : date, type),
  };
}

async function publishedKey(key: openpgp.Key, source: PublishedKey['source']): Promise<PublishedKey> {
  const id = key.getKeyID().toHex().toUpperCase();
  const signing = await key.getSigningKey().catch(() => undefined);
  if (!signing) throw new KeyError(`Key ${id} (${source}) cannot sign`);
  const algorithm = signing.getAlgorithmInfo();
  if (algorithm.algorithm !== 'eddsaLegacy') throw new KeyError(`Key ${id} (${source}) signs with ${algorithm.algorithm}; mirror signs with Ed25519 keys (\`mirror keys create\`, or \`gpg --quick-gen-key NAME ed25519 sign never\`)`);
  return {
    id,
    fingerprint: key.getFingerprint().toUpperCase(),
    created: signing.getCreationTime(),
    userId: key.getUserIDs()[0] ?? '',
    status: 'active',
    source,
    publicKey: key.toPublic().write(),
    jwk: signingJwk(signing.keyPacket, id),
  };
}

function signingJwk(packet: openpgp.PublicKeyPacket | openpgp.PublicSubkeyPacket | openpgp.SecretKeyPacket | openpgp.SecretSubkeyPacket, kid: string): Ed25519Jwk {
  const { Q } = (packet as unknown as { publicParams: { Q: Uint8Array } }).publicParams;
  // Legacy EdDSA prefixes the 32-byte point with 0x40.
  const x = Buffer.from(Q.subarray(1)).toString('base64url');
  createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  return { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' };
}

function withoutPrivate({ privateKey: _privateKey, sign: _sign, ...key }: SigningKey): PublishedKey {
  return { ...key, status: 'retired' };
}

async function keyIdOf(armoredPublic: string): Promise<string> {
  return (await openpgp.readKey({ armoredKey: armoredPublic })).getKeyID().toHex().toUpperCase();
}

async function readStored(dir: string): Promise<StoredKeyring> {
  const file = path.join(dir, KEYRING_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { keys: [] };
    throw error;
  }
  const parsed = StoredKeyring.safeParse(JSON.parse(text));
  if (!parsed.success) throw new KeyError(`${file} is not a keyring mirror wrote: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

/** Read, change and write the keyring file atomically, at mode 0600 in a 0700 folder. */
async function updateStored(dir: string, change: (stored: StoredKeyring) => StoredKeyring): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const next = change(await readStored(dir));
  const file = path.join(dir, KEYRING_FILE);
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await rename(temp, file);
  } finally {
    await rm(temp, { force: true });
  }
}
