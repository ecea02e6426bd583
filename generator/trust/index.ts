// What a build needs to sign: the keyring (data directory and settings), where signatures are
// cached, and how long a snapshot is valid. Settings are passed in, from the environment for the
// CLI and from the sidecar's validated settings for the sidecar.
import path from 'node:path';
import { loadKeyringFromSettings, type Keyring } from './keyring.ts';

export interface SigningSettings {
  keyring: Keyring;
  /** Signatures of earlier builds; none kept without a file. */
  cacheFile?: string;
  expirySeconds: number;
  /** Sign a new snapshot even when the target's is still good. */
  resign?: boolean;
  /** The build's clock (tests fix it). */
  now?: () => Date;
}

export interface SigningEnv {
  MIRROR_SIGNING_KEY?: string | undefined;
  MIRROR_SIGNING_KEY_FILE?: string | undefined;
  MIRROR_SIGNING_KEY_PASSPHRASE?: string | undefined;
  MIRROR_SNAPSHOT_EXPIRY_SECONDS?: string | number | undefined;
}

export const DEFAULT_SNAPSHOT_EXPIRY_SECONDS = 7 * 24 * 60 * 60;

export function keysDir(dataDir: string): string {
  return path.join(dataDir, 'keys');
}

export async function loadSigning(dataDir: string, env: SigningEnv): Promise<SigningSettings> {
  const expiry = env.MIRROR_SNAPSHOT_EXPIRY_SECONDS === undefined || env.MIRROR_SNAPSHOT_EXPIRY_SECONDS === '' ? DEFAULT_SNAPSHOT_EXPIRY_SECONDS : Number(env.MIRROR_SNAPSHOT_EXPIRY_SECONDS);
  if (!Number.isInteger(expiry) || expiry < 60) throw new Error(`MIRROR_SNAPSHOT_EXPIRY_SECONDS: expected a whole number of seconds, at least 60, got \`${env.MIRROR_SNAPSHOT_EXPIRY_SECONDS}\``);
  const keyring: Keyring = await loadKeyringFromSettings(keysDir(dataDir), env);
  return { keyring, cacheFile: path.join(dataDir, 'cache', 'signatures.json'), expirySeconds: expiry };
}
