// The build's signing step, between render and publish: detached OpenPGP signatures for every
// checksum file (HashiCorp's layout: `<file>.sig` by the primary key, `<file>.<KEYID>.sig` by each
// active key), the public keys under /.well-known/, and last the signed snapshot naming every other
// file's hash. Signatures are deterministic, so an unchanged file keeps byte-identical signatures
// and the diff deploy leaves them alone; the cache spares signing them again.
import { isDeepStrictEqual } from 'node:util';
import { mergePaths, type RenderedSite } from '../render/index.ts';
import type { PathTarget } from '../render/route-table.ts';
import { CACHE_SHORT, JSON_TYPE, PGP_KEYS_TYPE, SIGNATURE_TYPE, TEXT_TYPE, jsonBody, sizeOf, type BuiltFile, type SiteFile } from '../render/site-file.ts';
import { armoredSignature, clearsign } from './armor.ts';
import { sha256Hex } from '../stores/hash.ts';
import { armorPublicKeys, type Keyring } from './keyring.ts';
import type { SignatureCache } from './signature-cache.ts';
import {
  JWKS_KEY,
  PGP_KEYRING_KEY,
  PGP_KEYS_KEY,
  PGP_RETIRED_KEYS_KEY,
  PGP_KEY_DIR,
  SNAPSHOT_KEY,
  readSnapshotUnverified,
  resignDue,
  signSnapshot,
  snapshotKeys,
  snapshotSigners,
  type FileDigest,
  type SnapshotPayload,
} from './snapshot.ts';

export interface SigningInputs {
  keyring: Keyring;
  cache: SignatureCache;
  /** What the target serves now: its snapshot file, and the highest version it recorded. */
  previous?: { snapshot?: string | undefined; version?: number | undefined };
  now: Date;
  /** How long a new snapshot is valid; one with less than half of this left is signed again. */
  expirySeconds: number;
  /** Sign a new snapshot even when the target's is still good (`mirror snapshot refresh`). */
  resign?: boolean | undefined;
  /** The body of a file the site holds only the record of (a build writes files out as it renders, LocalPublish.read). */
  read?: ((key: string) => Uint8Array) | undefined;
}

export interface SigningReport {
  /** Active keys that signed. */
  keys: number;
  signaturesMade: number;
  signaturesReused: number;
  /** The snapshot the site now carries; `resigned` is false when the target's is still good. */
  snapshot?: { version: number; expires: string; resigned: boolean };
}

export async function signSite<F extends BuiltFile>(site: RenderedSite<F>, inputs: SigningInputs): Promise<{ site: RenderedSite<F | SiteFile>; report: SigningReport }> {
  const { keyring, cache } = inputs;
  const made = cache.made;
  const reused = cache.reused;
  const published = [...keyring.active, ...keyring.retired];
  if (published.length === 0) return { site, report: { keys: 0, signaturesMade: 0, signaturesReused: 0 } };

  const files: (F | SiteFile)[] = [];
  // The routes signing adds, after the rendered ones: each checksum file's signatures, then the rest.
  const parts: Record<string, PathTarget>[] = [];
  const added: Record<string, PathTarget> = {};
  const claimed = new Set<string>();
  const claim = (path: string) => {
    if (path in site.routes.paths || claimed.has(path)) throw new Error(`Two routes for ${path}`);
    claimed.add(path);
  };
  const route = (path: string, key: string) => {
    claim(path);
    added[path] = { type: 'file', key };
  };
  const add = (file: SiteFile) => {
    route(`/${file.key}`, file.key);
    files.push(withDigest(file));
  };

  // Each file is hashed once, here; publish reuses the digests.
  const rendered = site.files.map(withDigest);
  files.push(...rendered);
  const [primary] = keyring.active;
  const signers = keyring.active.map((key) => key.fingerprint).join(' ');
  let memoized = 0;
  for (const file of rendered) {
    if (file.signAt === undefined || keyring.active.length === 0) continue;
    if (file.signedInto) {
      // Package indexes are few and small: signed anew each build, deterministically.
      const date = new Date(file.signAt);
      const { armored, clearsigned } = file.signedInto;
      if (armored) add({ key: armored, body: armoredSignature(toBytes(bodyOf(file, inputs.read)), keyring.active, date), contentType: SIGNATURE_TYPE, cacheControl: CACHE_SHORT, kind: 'signature' });
      if (clearsigned) add({ key: clearsigned, body: clearsign(textOf(bodyOf(file, inputs.read)), keyring.active, date), contentType: TEXT_TYPE, cacheControl: CACHE_SHORT, kind: 'package-index' });
      continue;
    }
    // A rendered file a render memo gave back is the same object, with the same body: its
    // signatures by the same keys are the same files and routes as last build.
    let signed = signaturesOf.get(file);
    if (signed?.signers !== signers) {
      signed = { signers, files: [], routes: {} };
      for (const key of keyring.active) {
        const signature = cache.signature(key.fingerprint, file.signAt, file.sha256, () => key.sign(toBytes(bodyOf(file, inputs.read)), new Date(file.signAt!)));
        const sig = withDigest(signatureFile(`${file.key}.${key.id}.sig`, signature));
        signed.files.push(sig);
        signed.routes[`/${sig.key}`] = { type: 'file', key: sig.key };
        // `<file>.sig` is the primary key's signature under a second name, not a second file.
        if (key === primary) signed.routes[`/${file.key}.sig`] = { type: 'file', key: sig.key };
      }
      signaturesOf.set(file, signed);
    } else {
      memoized += signed.files.length;
    }
    for (const path in signed.routes) claim(path);
    for (const sig of signed.files) files.push(sig);
    parts.push(signed.routes);
  }

  if (keyring.active.length > 0) {
    add(keyFile(PGP_KEYS_KEY, armorPublicKeys(keyring.active)));
    add(keyFile(PGP_KEYRING_KEY, Buffer.concat(keyring.active.map((key) => key.publicKey))));
  }
  if (keyring.retired.length > 0) add(keyFile(PGP_RETIRED_KEYS_KEY, armorPublicKeys(keyring.retired)));
  for (const key of published) add(keyFile(`${PGP_KEY_DIR}/${key.id}.asc`, armorPublicKeys([key])));
  add({ key: JWKS_KEY, body: jsonBody(snapshotKeys(keyring.active, keyring.retired)), contentType: JSON_TYPE, cacheControl: CACHE_SHORT, kind: 'key' });

  let snapshot: SigningReport['snapshot'];
  if (keyring.active.length > 0) {
    const digests = digestsByKey(files);
    const { indexes, pages } = snapshotEntries(digests, [site.routes.paths, ...parts, added], site);
    const previousText = inputs.previous?.snapshot;
    const previous = previousText !== undefined ? readSnapshotUnverified(previousText) : undefined;
    const ids = keyring.active.map((key) => key.id);
    let body: string;
    if (!inputs.resign && previous && previousText !== undefined && stillGood(previous, previousText, { indexes, pages }, ids, inputs)) {
      body = previousText;
      snapshot = { version: previous.version, expires: previous.expires, resigned: false };
    } else {
      const version = Math.max((previous?.version ?? 0) + 1, (inputs.previous?.version ?? 0) + 1, Math.floor(inputs.now.getTime() / 1000));
      const expires = new Date(inputs.now.getTime() + inputs.expirySeconds * 1000).toISOString();
      body = await signSnapshot({ version, expires, indexes, pages }, keyring.active);
      snapshot = { version, expires, resigned: true };
    }
    add({ key: SNAPSHOT_KEY, body, contentType: JSON_TYPE, cacheControl: CACHE_SHORT, kind: 'index' });
  }

  // The rendered files are sorted; the added ones are merged in. Added routes follow the rendered
  // ones in the order they were made, the same for the same site.
  return {
    site: {
      files: mergeSorted(rendered, files.slice(rendered.length)),
      routes: { ...site.routes, paths: mergePaths([site.routes.paths, ...parts, added]) },
      routeParts: [...(site.routeParts ?? [site.routes.paths]), ...parts, added],
    },
    report: { keys: keyring.active.length, signaturesMade: cache.made - made, signaturesReused: cache.reused - reused + memoized, ...(snapshot ? { snapshot } : {}) },
  };
}

/** The snapshot the target serves still says what this one would: same files, same keys, and at least half its life left. */
function stillGood(previous: SnapshotPayload, text: string, entries: Pick<SnapshotPayload, 'indexes' | 'pages'>, ids: string[], inputs: SigningInputs): boolean {
  return (
    !resignDue(previous, inputs.now, inputs.expirySeconds) &&
    previous.version >= (inputs.previous?.version ?? 0) &&
    isDeepStrictEqual(snapshotSigners(text), ids) &&
    isDeepStrictEqual(previous.indexes, entries.indexes) &&
    isDeepStrictEqual(previous.pages ?? {}, entries.pages)
  );
}

/**
 * Every file under the URL a client fetches it from: route paths, and the files an endpoint
 * answers (`/v2/agent-releases?page=2&limit=20`); HTML pages apart. A file no URL reaches is a
 * routing defect, and fails the build rather than go unnamed.
 */
function snapshotEntries(digests: Map<string, FileDigest>, routes: Record<string, PathTarget>[], site: RenderedSite<BuiltFile>): Pick<SnapshotPayload, 'indexes' | 'pages'> {
  const indexes: Record<string, FileDigest> = {};
  const pages: Record<string, FileDigest> = {};
  const named = new Set<string>([SNAPSHOT_KEY]);
  const name = (into: Record<string, FileDigest>, url: string, key: string) => {
    const digest = digests.get(key);
    if (!digest) throw new Error(`The route ${url} names the site file ${key}, which the build did not make`);
    into[url] = digest;
    named.add(key);
  };
  for (const paths of routes) {
    for (const url in paths) {
      const target = paths[url]!;
      if (target.type !== 'file' || target.key === SNAPSHOT_KEY) continue;
      name(indexes, url, target.key);
      if (target.html !== undefined) name(pages, url, target.html);
    }
  }
  for (const endpoint of site.routes.endpoints) {
    if (endpoint.answer !== 'file') continue;
    for (const [url, key] of Object.entries(endpoint.entries)) {
      name(indexes, url, key);
      const html = endpoint.html?.[key];
      if (html !== undefined) name(pages, url, html);
    }
  }
  const unnamed = [...digests.keys()].filter((key) => !named.has(key));
  if (unnamed.length > 0) throw new Error(`No route reaches the site file${unnamed.length > 1 ? 's' : ''} ${unnamed.slice(0, 5).join(', ')}${unnamed.length > 5 ? ', ...' : ''}, so the snapshot cannot name ${unnamed.length > 1 ? 'them' : 'it'}`);
  return { indexes, pages };
}

/** The signature files and routes made for a rendered file object, by the keys that made them (fingerprints, primary first). */
const signaturesOf = new WeakMap<BuiltFile, { signers: string; files: SiteFile[]; routes: Record<string, PathTarget> }>();

function digestsByKey(files: BuiltFile[]): Map<string, FileDigest> {
  return new Map(files.map((file) => [file.key, { sha256: file.sha256 ?? sha256Hex(file.body!), length: sizeOf(file) }]));
}

/** Two lists into one sorted by key: `sorted` already is, `added` is sorted here. */
function mergeSorted<F extends BuiltFile>(sorted: F[], added: F[]): F[] {
  const byKey = (a: F, b: F) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  added.sort(byKey);
  const merged: F[] = [];
  let i = 0;
  let j = 0;
  while (i < sorted.length || j < added.length) {
    if (j === added.length || (i < sorted.length && byKey(sorted[i]!, added[j]!) <= 0)) merged.push(sorted[i++]!);
    else merged.push(added[j++]!);
  }
  return merged;
}

function withDigest<F extends BuiltFile>(file: F): F & { sha256: string } {
  return file.sha256 !== undefined ? (file as F & { sha256: string }) : { ...file, sha256: sha256Hex(file.body!) };
}

/** A signed file's body: the one it holds, or the one it was written with. */
function bodyOf(file: BuiltFile, read: SigningInputs['read']): string | Uint8Array {
  if (file.body !== undefined) return file.body;
  if (!read) throw new Error(`The body of ${file.key}, which is signed, was neither kept nor can be read back`);
  return read(file.key);
}

function textOf(body: string | Uint8Array): string {
  return typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
}

function signatureFile(key: string, signature: Buffer): SiteFile {
  return { key, body: signature, contentType: SIGNATURE_TYPE, cacheControl: CACHE_SHORT, kind: 'signature' };
}

function keyFile(key: string, body: string | Uint8Array): SiteFile {
  return { key, body, contentType: typeof body === 'string' ? PGP_KEYS_TYPE : 'application/octet-stream', cacheControl: CACHE_SHORT, kind: 'key' };
}

function toBytes(body: string | Uint8Array): Uint8Array {
  return typeof body === 'string' ? Buffer.from(body) : body;
}
