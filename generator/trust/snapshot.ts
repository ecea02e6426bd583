// The signed snapshot (The Update Framework's snapshot role, in one file): a JWS over every
// mutable file's hash and length, a version that only grows and an expiry. A client that checks it
// detects a file from another publish (mix-and-match), an older snapshot (rollback) and a mirror
// that stopped updating (freeze). Every active key signs, in JWS's general JSON serialization.
import { createPublicKey } from 'node:crypto';
import { GeneralSign, generalVerify, type GeneralJWS } from 'jose';
import type { Ed25519Jwk, PublishedKey, SigningKey } from './keyring.ts';

export const SNAPSHOT_KEY = '.well-known/mirror/snapshot.json';
export const JWKS_KEY = '.well-known/mirror/keys.json';
/** The keys that sign now, what a client pins. Retired keys are apart, so pinning this file never trusts one. */
export const PGP_KEYS_KEY = '.well-known/pgp-keys.asc';
/** The same keys unarmored: what `gpgv --keyring` reads without gpg installed. */
export const PGP_KEYRING_KEY = '.well-known/pgp-keys.gpg';
/** Retired keys, for what they signed before they retired. */
export const PGP_RETIRED_KEYS_KEY = '.well-known/pgp-keys-retired.asc';
export const PGP_KEY_DIR = '.well-known/pgp-keys';
export const SNAPSHOT_TYPE = 'mirror-snapshot+json';

export interface FileDigest {
  sha256: string;
  length: number;
}

export interface SnapshotPayload {
  version: number;
  /** ISO 8601, UTC. */
  expires: string;
  /** URL path (with its query, for an endpoint's file) → what a client receives there, HTML pages aside. */
  indexes: Record<string, FileDigest>;
  /** URL path → the HTML page the same path answers to a browser (`Accept: text/html`). */
  pages: Record<string, FileDigest>;
}

/** The published JWKS: the keys that sign snapshots now, and those that no longer may. */
export interface SnapshotKeys {
  keys: Ed25519Jwk[];
  retired: Ed25519Jwk[];
}

export function snapshotKeys(active: PublishedKey[], retired: PublishedKey[]): SnapshotKeys {
  return { keys: active.map((key) => key.jwk), retired: retired.map((key) => key.jwk) };
}

/** The snapshot file: the payload signed by every key, one JWS signature each. */
export async function signSnapshot(payload: SnapshotPayload, keys: SigningKey[]): Promise<string> {
  const jws = new GeneralSign(Buffer.from(JSON.stringify(payload)));
  for (const key of keys) jws.addSignature(key.privateKey).setProtectedHeader({ alg: 'EdDSA', kid: key.id, typ: SNAPSHOT_TYPE });
  return `${JSON.stringify(await jws.sign(), null, 2)}\n`;
}

/** The payload of a snapshot file without checking it: for the publisher reading its own last one. */
export function readSnapshotUnverified(text: string): SnapshotPayload | undefined {
  try {
    const jws = JSON.parse(text) as GeneralJWS;
    const payload = JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')) as SnapshotPayload;
    return Number.isSafeInteger(payload.version) && typeof payload.expires === 'string' && Number.isFinite(Date.parse(payload.expires)) && payload.indexes ? payload : undefined;
  } catch {
    return undefined;
  }
}

/** A snapshot with half its life or less left is signed again, well before clients see it expire. */
export function resignDue(payload: SnapshotPayload | undefined, now: Date, expirySeconds: number): boolean {
  return !payload || Date.parse(payload.expires) - now.getTime() <= (expirySeconds * 1000) / 2;
}

/** The key ids a snapshot file says signed it. */
export function snapshotSigners(text: string): string[] {
  try {
    const jws = JSON.parse(text) as GeneralJWS;
    return jws.signatures.map((signature) => (JSON.parse(Buffer.from(signature.protected ?? '', 'base64url').toString('utf8')) as { kid?: string }).kid ?? '');
  } catch {
    return [];
  }
}

export type SnapshotCheck =
  | { ok: true; payload: SnapshotPayload; signedBy: string[] }
  | { ok: false; kind: 'malformed' | 'unknown-key' | 'retired-key' | 'bad-signature'; message: string };

/**
 * Checks each signature of a snapshot file against the trusted keys. Valid when at least one
 * trusted, active key's signature verifies and no signature is bad; a signature by a retired or
 * unknown key alone does not count.
 */
export async function verifySnapshot(text: string, trusted: Ed25519Jwk[], retiredIds: ReadonlySet<string>): Promise<SnapshotCheck> {
  let jws: GeneralJWS;
  try {
    jws = JSON.parse(text) as GeneralJWS;
    if (typeof jws.payload !== 'string' || !Array.isArray(jws.signatures) || jws.signatures.length === 0) throw new Error('not a JWS in general JSON serialization');
  } catch (error) {
    return { ok: false, kind: 'malformed', message: `the snapshot is not a signed JWS document (${(error as Error).message})` };
  }
  const signedBy: string[] = [];
  const unknown: string[] = [];
  const retired: string[] = [];
  for (const signature of jws.signatures) {
    let header: { kid?: string; alg?: string; typ?: string };
    try {
      header = JSON.parse(Buffer.from(signature.protected ?? '', 'base64url').toString('utf8')) as typeof header;
    } catch {
      return { ok: false, kind: 'malformed', message: 'a snapshot signature has no readable protected header' };
    }
    const kid = header.kid ?? '(no key id)';
    if (retiredIds.has(kid)) {
      retired.push(kid);
      continue;
    }
    const jwk = trusted.find((key) => key.kid === kid);
    if (!jwk) {
      unknown.push(kid);
      continue;
    }
    if (header.alg !== 'EdDSA' || header.typ !== SNAPSHOT_TYPE) return { ok: false, kind: 'bad-signature', message: `the signature by key ${kid} is not an EdDSA ${SNAPSHOT_TYPE} signature` };
    try {
      await generalVerify({ payload: jws.payload, signatures: [signature] }, createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' }), { algorithms: ['EdDSA'] });
    } catch {
      return { ok: false, kind: 'bad-signature', message: `the signature by key ${kid} does not verify: the snapshot was changed after it was signed` };
    }
    signedBy.push(kid);
  }
  if (signedBy.length === 0) {
    if (retired.length > 0) return { ok: false, kind: 'retired-key', message: `the snapshot is signed only by retired key${retired.length > 1 ? 's' : ''} ${retired.join(', ')}` };
    return { ok: false, kind: 'unknown-key', message: `the snapshot is signed only by key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}, which ${unknown.length > 1 ? 'are' : 'is'} not trusted` };
  }
  const payload = readSnapshotUnverified(text);
  if (!payload) return { ok: false, kind: 'malformed', message: 'the snapshot\'s payload lacks version, expires or indexes' };
  return { ok: true, payload, signedBy };
}
