// `mirror verify`'s trust checks: the signed snapshot (its signatures, expiry and version against
// the last one this client saw), every file it names against its hash, and every SHA256SUMS
// file's OpenPGP signatures. Each failure is named by the attack it reveals: mix-and-match,
// rollback, freeze, an unknown or retired key, a bad signature, a tampered file.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { readPublicKeys, type Ed25519Jwk } from '../trust/keyring.ts';
import { JWKS_KEY, PGP_KEYRING_KEY, SNAPSHOT_KEY, verifySnapshot, type FileDigest, type SnapshotKeys, type SnapshotPayload } from '../trust/snapshot.ts';
import type { Crawl } from './http.ts';

export interface TrustOptions {
  /** The keys to trust (`--keys`): armored or binary OpenPGP public keys, or the mirror's JWKS. Without: trust on first use. */
  keys?: Uint8Array | undefined;
  /** Where this client keeps, per mirror, the last snapshot it saw and the keys it trusts. */
  stateFile?: string | undefined;
  now?: Date | undefined;
}

/** What the state file keeps for one mirror. */
interface TrustState {
  origin: string;
  /** The newest snapshot seen: a lower version later is a rollback. */
  version: number;
  sha256: string;
  /** Keys trusted on first use, and those the trusted keys vouched for since. */
  keys: Ed25519Jwk[];
  seenAt: string;
}

interface TrustedSet {
  jwks: Ed25519Jwk[];
  /** OpenPGP keys for the checksum signatures, with the ids of every (sub)key that may issue one. */
  pgp: { key: openpgp.PublicKey; ids: Set<string> }[];
  retired: Set<string>;
  /** How the keys came to be trusted, for the summary line. */
  basis: string;
}

/** The default state file: one per mirror origin under $XDG_STATE_HOME (or ~/.local/state). */
export function defaultStateFile(baseUrl: string, env: NodeJS.ProcessEnv = process.env): string {
  const stateHome = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(stateHome, 'mirror', 'verify', `${encodeURIComponent(new URL(baseUrl).origin)}.json`);
}

/** Runs the trust checks; returns the summary line. */
export async function verifyTrust(crawl: Crawl, root: URL, options: TrustOptions): Promise<string> {
  const { http, record } = crawl;
  const now = options.now ?? new Date();
  const state = options.stateFile ? await readState(options.stateFile, root.origin) : undefined;
  const pinned = options.keys ? await readTrustedKeys(options.keys) : undefined;

  const jwksUrl = new URL(`/${JWKS_KEY}`, root);
  const jwksBody = await http.bytes(jwksUrl, 'application/json');
  if (jwksBody === undefined) return 'not checked: the mirror\'s keys could not be read';
  if (jwksBody === null) {
    if (pinned || state) {
      record.problem(jwksUrl, 'expected the mirror\'s signing keys, got 404: the mirror is unsigned now, so nothing proves who wrote its files', 'missing');
      return 'failed: the mirror publishes no keys';
    }
    return 'unsigned mirror (no /.well-known/mirror/keys.json): nothing proves who wrote its SHA256SUMS files';
  }
  const published = parseJwks(jwksBody);
  if (!published) {
    record.problem(jwksUrl, 'expected a JWKS ({"keys": [...], "retired": [...]}), got something else', 'tampered');
    return 'failed: the mirror\'s keys are unreadable';
  }
  const keyringBody = await http.bytes(new URL(`/${PGP_KEYRING_KEY}`, root), 'application/octet-stream');
  const publishedPgp = keyringBody ? await readPublicKeys(keyringBody).catch(() => []) : [];
  const trusted = trustedSet(pinned, state, published, publishedPgp);

  const snapshotUrl = new URL(`/${SNAPSHOT_KEY}`, root);
  const snapshotBody = await http.bytes(snapshotUrl, 'application/json');
  if (snapshotBody === undefined) return `not checked: the snapshot could not be read (${trusted.basis})`;
  if (snapshotBody === null) {
    record.problem(snapshotUrl, 'expected the signed snapshot, got 404: without it no client can tell a current file from an old one', 'missing');
    return `failed: no snapshot (${trusted.basis})`;
  }
  const check = await verifySnapshot(snapshotBody.toString('utf8'), trusted.jwks, trusted.retired);
  if (!check.ok) {
    record.problem(snapshotUrl, check.message, check.kind === 'malformed' ? 'tampered' : check.kind);
    return `failed: the snapshot is not validly signed (${trusted.basis})`;
  }
  const { payload } = check;
  const snapshotSha256 = createHash('sha256').update(snapshotBody).digest('hex');
  let current = true;
  if (Date.parse(payload.expires) <= now.getTime()) {
    record.problem(snapshotUrl, `expected a snapshot valid now (${now.toISOString()}), got version ${payload.version}, which expired at ${payload.expires}: the mirror stopped updating, or serves a frozen copy (freeze)`, 'freeze');
    current = false;
  }
  if (state && payload.version < state.version) {
    record.problem(snapshotUrl, `expected snapshot version ${state.version} or newer (seen at ${state.seenAt}), got version ${payload.version}: the mirror serves an older publish (rollback)`, 'rollback');
    current = false;
  } else if (state && payload.version === state.version && snapshotSha256 !== state.sha256) {
    record.problem(snapshotUrl, `expected the snapshot seen at ${state.seenAt} for version ${payload.version}, got a different one with the same version (rollback or fork)`, 'rollback');
    current = false;
  }

  const files = await checkFiles(crawl, root, payload);
  const good = await checkSignatures(crawl, root, payload, files, trusted, published);

  // Key continuity: keys the snapshot vouches for (keys.json as it names it) join the trusted set.
  const jwksVouched = digestOf(jwksBody);
  const vouched = payload.indexes[`/${JWKS_KEY}`];
  const keys = vouched && vouched.sha256 === jwksVouched.sha256 ? mergeKeys(trusted.jwks, published.keys) : trusted.jwks;
  if (options.stateFile && current) {
    await writeState(options.stateFile, { origin: root.origin, version: payload.version, sha256: snapshotSha256, keys: keys.filter((key) => !trusted.retired.has(key.kid)), seenAt: now.toISOString() });
  }
  const entries = Object.keys(payload.indexes).length + Object.keys(payload.pages ?? {}).length;
  return `snapshot version ${payload.version}, expires ${payload.expires}, signed by ${check.signedBy.join(', ')} (${trusted.basis}); ${entries} files named, ${good} signatures good`;
}

/** Fetches every file the snapshot names and compares it with its entry; returns the bodies. */
async function checkFiles(crawl: Crawl, root: URL, payload: SnapshotPayload): Promise<Map<string, { body: Buffer; matches: boolean; expected: FileDigest }>> {
  const bodies = new Map<string, { body: Buffer; matches: boolean; expected: FileDigest }>();
  const check = async (url: string, expected: FileDigest, accept: string, what: string) => {
    const target = new URL(url, root);
    const body = await crawl.http.bytes(target, accept);
    crawl.record.count('snapshotFilesChecked');
    if (body === undefined) return;
    if (body === null) {
      crawl.record.problem(target, `expected the ${what} the snapshot (version ${payload.version}) names, got 404`, 'missing');
      return;
    }
    const actual = digestOf(body);
    const matches = actual.sha256 === expected.sha256 && actual.length === expected.length;
    if (accept !== 'text/html') bodies.set(url, { body, matches, expected });
    // A checksum file's mismatch is judged with its signatures, which tell an old file from a forged one.
    if (!matches && !isSums(url)) {
      crawl.record.problem(target, `expected the ${what} of snapshot version ${payload.version} (sha256 ${expected.sha256}, ${expected.length} bytes), got sha256 ${actual.sha256}, ${actual.length} bytes: a file from another publish (mix-and-match) or a tampered one`, 'mix-and-match');
    }
  };
  await Promise.all([
    ...Object.entries(payload.indexes).map(([url, digest]) => check(url, digest, 'application/json', 'file')),
    ...Object.entries(payload.pages ?? {}).map(([url, digest]) => check(url, digest, 'text/html', 'HTML page')),
  ]);
  return bodies;
}

/**
 * Each checksum file's signatures: `<file>.sig` and one `<file>.<KEYID>.sig` per active key, each
 * by a trusted key and valid. Returns how many verified.
 */
async function checkSignatures(crawl: Crawl, root: URL, payload: SnapshotPayload, files: Map<string, { body: Buffer; matches: boolean; expected: FileDigest }>, trusted: TrustedSet, published: SnapshotKeys): Promise<number> {
  let good = 0;
  for (const url of Object.keys(payload.indexes).filter(isSums)) {
    const sums = files.get(url);
    if (!sums) continue;
    const expectedSigs = [`${url}.sig`, ...published.keys.map((key) => `${url}.${key.kid}.sig`)];
    let verified = false;
    const failures: { url: string; message: string; kind: 'unknown-key' | 'retired-key' | 'bad-signature' | 'missing' }[] = [];
    for (const sigUrl of expectedSigs) {
      const signature = files.get(sigUrl);
      if (!signature) {
        if (!(sigUrl in payload.indexes)) failures.push({ url: sigUrl, message: `expected a signature of ${url}, which the snapshot does not name`, kind: 'missing' });
        continue;
      }
      crawl.record.count('signaturesChecked');
      const result = await checkSignature(sums.body, signature.body, trusted);
      if (result.ok) {
        verified = true;
        good++;
      } else failures.push({ url: sigUrl, ...result });
    }
    const target = new URL(url, root);
    if (!sums.matches) {
      const actual = digestOf(sums.body);
      if (verified) crawl.record.problem(target, `expected the file of snapshot version ${payload.version} (sha256 ${sums.expected.sha256}), got sha256 ${actual.sha256}, validly signed: a checksum file from another publish (mix-and-match)`, 'mix-and-match');
      else crawl.record.problem(target, `expected sha256 ${sums.expected.sha256} (snapshot version ${payload.version}), got sha256 ${actual.sha256}, which no trusted signature covers: the checksum file was changed (tampered)`, 'tampered');
    }
    for (const failure of failures) {
      if (!sums.matches && failure.kind === 'bad-signature') continue;
      crawl.record.problem(new URL(failure.url, root), failure.message, failure.kind);
    }
  }
  return good;
}

async function checkSignature(data: Buffer, signatureBytes: Buffer, trusted: TrustedSet): Promise<{ ok: true } | { ok: false; message: string; kind: 'unknown-key' | 'retired-key' | 'bad-signature' }> {
  let signature: openpgp.Signature;
  try {
    signature = await openpgp.readSignature({ binarySignature: signatureBytes });
  } catch {
    return { ok: false, message: 'expected a binary OpenPGP signature, got something else', kind: 'bad-signature' };
  }
  const issuers = signature.getSigningKeyIDs().map((id) => id.toHex().toUpperCase());
  const key = trusted.pgp.find((candidate) => issuers.some((id) => candidate.ids.has(id)));
  if (!key) {
    const retired = issuers.find((id) => trusted.retired.has(id));
    if (retired) return { ok: false, message: `signed by retired key ${retired}, which signs nothing new`, kind: 'retired-key' };
    return { ok: false, message: `signed by key ${issuers.join(', ') || '(none named)'}, which is not trusted`, kind: 'unknown-key' };
  }
  try {
    const result = await openpgp.verify({ message: await openpgp.createMessage({ binary: data }), signature, verificationKeys: key.key, format: 'binary' });
    await result.signatures[0]!.verified;
    return { ok: true };
  } catch (error) {
    return { ok: false, message: `the signature by key ${[...key.ids][0]} does not verify: ${(error as Error).message}`, kind: 'bad-signature' };
  }
}

/** Pinned keys, or those trusted since first use, or (first use) the mirror's own, minus retired ones. */
function trustedSet(pinned: Awaited<ReturnType<typeof readTrustedKeys>> | undefined, state: TrustState | undefined, published: SnapshotKeys, publishedPgp: Awaited<ReturnType<typeof readPublicKeys>>): TrustedSet {
  const retired = new Set([...published.retired.map((key) => key.kid), ...(pinned?.retired ?? [])]);
  const basis = pinned ? 'keys pinned with --keys' : state ? `keys trusted since ${state.seenAt}` : `trusting the mirror's published keys ${published.keys.map((key) => key.kid).join(', ')} on first use; pin them with --keys`;
  const jwks = (pinned?.jwks ?? state?.keys ?? published.keys).filter((key) => !retired.has(key.kid));
  // OpenPGP keys: pinned ones, or the mirror's whose Ed25519 point is a trusted key's.
  const candidates = pinned && pinned.pgp.length > 0 ? pinned.pgp : publishedPgp;
  const pgp = candidates
    .filter(({ published: key }) => !retired.has(key.id) && jwks.some((jwk) => jwk.kid === key.id && jwk.x === key.jwk.x))
    .map(({ key }) => ({ key, ids: new Set([key, ...key.getSubkeys()].map((part) => part.getKeyID().toHex().toUpperCase())) }));
  return { jwks, pgp, retired, basis };
}

/** `--keys FILE`: a JWKS (the mirror's keys.json) or OpenPGP public keys, armored or binary. */
async function readTrustedKeys(data: Uint8Array): Promise<{ jwks: Ed25519Jwk[]; retired: string[]; pgp: Awaited<ReturnType<typeof readPublicKeys>> }> {
  const text = Buffer.from(data).toString('utf8').trim();
  if (text.startsWith('{')) {
    const jwks = parseJwks(Buffer.from(text));
    if (!jwks) throw new TypeError('--keys: expected a JWKS ({"keys": [...]}) or OpenPGP public keys');
    return { jwks: jwks.keys, retired: jwks.retired.map((key) => key.kid), pgp: [] };
  }
  const keys = await readPublicKeys(text.startsWith('-----BEGIN PGP') ? text : data).catch((error: Error) => {
    throw new TypeError(`--keys: expected OpenPGP public keys or a JWKS: ${error.message}`);
  });
  return { jwks: keys.map(({ published }) => published.jwk), retired: [], pgp: keys };
}

function parseJwks(body: Buffer): SnapshotKeys | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as Partial<SnapshotKeys>;
    const valid = (key: Ed25519Jwk) => key && key.kty === 'OKP' && key.crv === 'Ed25519' && typeof key.x === 'string' && typeof key.kid === 'string';
    if (!Array.isArray(parsed.keys) || !parsed.keys.every(valid)) return undefined;
    const retired = Array.isArray(parsed.retired) ? parsed.retired.filter(valid) : [];
    return { keys: parsed.keys, retired };
  } catch {
    return undefined;
  }
}

function mergeKeys(known: Ed25519Jwk[], more: Ed25519Jwk[]): Ed25519Jwk[] {
  return [...known, ...more.filter((key) => !known.some((existing) => existing.kid === key.kid))];
}

function isSums(url: string): boolean {
  return url.endsWith('_SHA256SUMS');
}

function digestOf(body: Buffer): FileDigest {
  return { sha256: createHash('sha256').update(body).digest('hex'), length: body.length };
}

async function readState(file: string, origin: string): Promise<TrustState | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const state = JSON.parse(text) as TrustState;
  if (state.origin !== origin) throw new TypeError(`--state: ${file} keeps the state of ${state.origin}, not ${origin}`);
  return state;
}

async function writeState(file: string, state: TrustState): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(temp, file);
}
