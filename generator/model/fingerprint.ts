// A model value's fingerprint: what a render memo names a unit's inputs by. Model values are never
// changed once loaded (a change is a new object), so an object's fingerprint stays true. The loader
// gives a release the SHA-256 of the file it was read from, which it has already; any other value
// gets the SHA-256 of its JSON, computed once.
import { createHash } from 'node:crypto';

const fingerprints = new WeakMap<object, string>();

export function fingerprintOf(value: object): string {
  let fingerprint = fingerprints.get(value);
  if (fingerprint === undefined) {
    fingerprint = createHash('sha256').update(JSON.stringify(value)).digest('base64url');
    fingerprints.set(value, fingerprint);
  }
  return fingerprint;
}

/** Names `value` by the SHA-256 (hex) of the bytes the loader made it from, unless it has a fingerprint already. */
export function fingerprintFromSource(value: object, sha256: string): void {
  if (!fingerprints.has(value)) fingerprints.set(value, sha256);
}
