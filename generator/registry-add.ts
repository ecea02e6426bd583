// Writes registry version files into the manifest store: `registry/@<scope>/<name>/<version>.json`.
// Each file is written whole to a temporary name and renamed into place, so a reader never sees
// half a file. The sidecar writes a version's file after its tarball is in the blob store.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatProblem } from './load/index.ts';
import { registryFilePath } from './load/registry.ts';
import { registryVersionFile, type RegistryVersionFileData, type RegistryVersionFileInput } from './load/registry-schema.ts';
import { jsonBody } from './render/site-file.ts';

/** Writes (or, for a publish taking over a dead one's reservation, replaces) a version's file. */
export async function writeRegistryVersion(releasesDir: string, data: RegistryVersionFileInput): Promise<string> {
  const parsed = registryVersionFile.safeParse(data);
  if (!parsed.success) throw new Error(`Refusing to write an invalid registry version: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  const file = registryFilePath(releasesDir, data.scope, data.name, data.version);
  await writeWhole(file, jsonBody(data));
  return file;
}

/** Marks a version unpublished, keeping everything else it records; its number stays taken. */
export async function markRegistryVersionUnpublished(releasesDir: string, scope: string, name: string, version: string, at: string): Promise<void> {
  const file = registryFilePath(releasesDir, scope, name, version);
  const parsed = registryVersionFile.safeParse(JSON.parse(await readFile(file, 'utf8')));
  if (!parsed.success) throw new Error(formatProblem({ file, path: '', message: parsed.error.issues.map((issue) => issue.message).join('; ') }));
  const data: RegistryVersionFileData = { ...parsed.data, status: 'unpublished', unpublished_at: at };
  await writeWhole(file, jsonBody(data));
}

async function writeWhole(file: string, body: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  // A dot name: the loader skips it, should a crash leave it behind.
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID()}.tmp`);
  try {
    await writeFile(temporary, body, { flag: 'wx' });
    await rename(temporary, file);
  } finally {
    await rm(temporary, { force: true });
  }
}
