// What render produces and publish consumes.
import { sha256Hex } from '../stores/hash.ts';

export type SiteFileKind = 'artifact' | 'index' | 'page' | 'checksum' | 'signature' | 'key' | 'package-index';

export interface SiteFile {
  /** Path in the site without a leading slash, e.g. `binary/releases/agent-as-code/versions.json`. */
  key: string;
  body: string | Uint8Array;
  contentType: string;
  cacheControl: string;
  kind: SiteFileKind;
  /**
   * Files the publisher's keys sign, dated this (ISO 8601; the release's date): checksum files get
   * `<key>.<KEYID>.sig` per active key and `<key>.sig` (the primary's), unless `signedInto` says otherwise.
   */
  signAt?: string;
  /** Package indexes: signed by every active key into these site keys instead (apt's Release.gpg and InRelease, yum's repomd.xml.asc). */
  signedInto?: { armored?: string; clearsigned?: string };
  /** The body's SHA-256, hex, once a step has computed it (signing does); publish computes it otherwise. */
  sha256?: string;
  /** The body's length in bytes, set with `sha256` by `measured`. */
  size?: number;
}

/**
 * A site file a build has already written out and no longer holds: its record, for the manifest,
 * the snapshot and the route table's checks. A build that publishes as it renders keeps these.
 */
export type WrittenFile = Omit<SiteFile, 'body' | 'sha256'> & { body?: undefined; sha256: string; size: number };

/** What a rendered site's files may be: with their bodies, or written out already. */
export type BuiltFile = SiteFile | WrittenFile;

/** The file's length in bytes. */
export function sizeOf(file: BuiltFile): number {
  return file.size ?? Buffer.byteLength(file.body!);
}

/** The file with its `sha256` and `size` set: computed once per file object, so a file a render memo keeps is measured once, however many builds publish it. */
export function measured(file: SiteFile): SiteFile & { sha256: string; size: number } {
  file.sha256 ??= sha256Hex(file.body);
  file.size ??= Buffer.byteLength(file.body);
  return file as SiteFile & { sha256: string; size: number };
}

/** The file as a build keeps it once written, or a render memo once rendered: its record, without the body. */
export function recordOf(file: BuiltFile): WrittenFile {
  if (file.body === undefined) return file;
  const { body: _body, ...record } = measured(file);
  return record;
}

export const CACHE_IMMUTABLE = 'public, max-age=31536000, immutable';
export const CACHE_SHORT = 'public, max-age=60';

export const JSON_TYPE = 'application/json';
export const HTML_TYPE = 'text/html; charset=utf-8';
export const TEXT_TYPE = 'text/plain; charset=utf-8';
export const SIGNATURE_TYPE = 'application/pgp-signature';
export const PGP_KEYS_TYPE = 'application/pgp-keys';

/** JSON as the site serves it: two-space indent, trailing newline, key order as built. */
export function jsonBody(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

export function jsonFile(key: string, value: unknown, kind: SiteFileKind = 'index'): SiteFile {
  return { key, body: jsonBody(value), contentType: JSON_TYPE, cacheControl: CACHE_SHORT, kind };
}
