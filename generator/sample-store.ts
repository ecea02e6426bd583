// The bundled sample: the manifest store in releases/ and its artifacts in .mirror/blobs/ of a
// checkout. `mirror start --releases DIR` with a DIR that does not exist yet starts from a copy of
// it, so trying uploads and `mirror release add` never changes the checkout's own files.
import { cp, stat } from 'node:fs/promises';
import path from 'node:path';
import { packagePath } from './package-root.ts';

export const SAMPLE_STORE = packagePath('releases');
export const SAMPLE_BLOBS = packagePath('.mirror', 'blobs');

/**
 * Copies the sample store into `releasesDir` and its blobs into `blobsDir` (keeping blobs already
 * there) when `releasesDir` does not exist; true when it did.
 */
export async function seedFromSample(releasesDir: string, blobsDir: string): Promise<boolean> {
  if (await exists(releasesDir)) return false;
  if (!(await exists(SAMPLE_STORE))) throw new Error(`${releasesDir} does not exist, and there is no bundled sample to copy into it (${SAMPLE_STORE})`);
  if (path.resolve(blobsDir) !== SAMPLE_BLOBS) await cp(SAMPLE_BLOBS, blobsDir, { recursive: true, force: false });
  await cp(SAMPLE_STORE, releasesDir, { recursive: true, errorOnExist: true, force: false });
  return true;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
