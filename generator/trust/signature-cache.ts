// Signatures made by earlier builds, so an unchanged checksum file is not signed again: the key is
// the signing key's fingerprint, the signature's date and the signed bytes' hash, and the value the
// signature (deterministic, so a cached one is the one a new signing would make). Kept in the data
// directory; a missing or unreadable cache only means signing again.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface SignatureCache {
  /** The cached signature, or what `sign` makes (then cached). */
  signature(fingerprint: string, date: string, sha256: string, sign: () => Buffer): Buffer;
  /** Signatures made, not found in the cache, since the cache was opened. */
  readonly made: number;
  readonly reused: number;
  /** Writes the signatures this build used, dropping the others, when that changes the file. */
  save(): Promise<void>;
}

const FORMAT = 1;

/** A cache kept in `file`, or in memory only when there is no file. */
export async function openSignatureCache(file: string | undefined): Promise<SignatureCache> {
  const stored = file ? await readCache(file) : new Map<string, string>();
  const used = new Map<string, string>();
  let made = 0;
  let reused = 0;
  return {
    signature(fingerprint, date, sha256, sign) {
      const key = `${fingerprint} ${date} ${sha256}`;
      const cached = used.get(key) ?? stored.get(key);
      if (cached !== undefined) {
        if (!used.has(key)) reused++;
        used.set(key, cached);
        return Buffer.from(cached, 'base64');
      }
      const signature = sign();
      made++;
      used.set(key, signature.toString('base64'));
      return signature;
    },
    get made() {
      return made;
    },
    get reused() {
      return reused;
    },
    async save() {
      if (!file || (made === 0 && used.size === stored.size)) return;
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await writeFile(temp, JSON.stringify({ format: FORMAT, signatures: Object.fromEntries(used) }), { mode: 0o600 });
        await rename(temp, file);
      } finally {
        await rm(temp, { force: true });
      }
    },
  };
}

async function readCache(file: string): Promise<Map<string, string>> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { format?: number; signatures?: Record<string, string> };
    if (parsed.format !== FORMAT || typeof parsed.signatures !== 'object' || parsed.signatures === null) return new Map();
    return new Map(Object.entries(parsed.signatures).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  } catch {
    return new Map();
  }
}
