// Temporary manifest stores and blob directories for the loader, `release add` and blob store tests.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REGISTRY_DIRECTORY } from '../../generator/load/registry.ts';
import { REPO, SAMPLE_RELEASES } from './sample-site.ts';

export { REPO, SAMPLE_RELEASES } from './sample-site.ts';

/** A fresh directory under the OS temp dir; remove it with `removeDir`. */
export function tempDir(prefix = 'mirror-test-'): Promise<string> {
  return mkdtemp(path.join(tmpdir(), prefix));
}

export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Copies the bundled sample store into `dest`: mirror.json and every product.json, and with
 * `releases: true` the release files and the registry too.
 */
export async function copySampleStore(dest: string, { releases = false }: { releases?: boolean } = {}): Promise<void> {
  await mkdir(dest, { recursive: true });
  await cp(path.join(SAMPLE_RELEASES, 'mirror.json'), path.join(dest, 'mirror.json'));
  for (const entry of await readdir(SAMPLE_RELEASES, { withFileTypes: true })) {
    if (!entry.isDirectory() || (entry.name === REGISTRY_DIRECTORY && !releases)) continue;
    if (releases) {
      await cp(path.join(SAMPLE_RELEASES, entry.name), path.join(dest, entry.name), { recursive: true });
    } else {
      await mkdir(path.join(dest, entry.name));
      await cp(path.join(SAMPLE_RELEASES, entry.name, 'product.json'), path.join(dest, entry.name, 'product.json'));
    }
  }
}

export interface ArtifactJson {
  platform: string;
  arch: string;
  filename: string;
  size: number;
  sha256: string;
  content_type?: string;
  blob: string;
  [extra: string]: unknown;
}

export interface ReleaseJson {
  version: string;
  published_at: string;
  channels?: string[];
  notes_url?: string | null;
  status?: 'active' | 'yanked';
  artifacts: ArtifactJson[];
  [extra: string]: unknown;
}

/** A valid binary-layout artifact entry for `<prefix>_<version>_<platform>_<arch>.zip`. */
export function binaryArtifact(prefix: string, version: string, platform: string, arch: string): ArtifactJson {
  const filename = `${prefix}_${version}_${platform}_${arch}.zip`;
  const parsed = /^(\d+)\.(\d+)\.(.+)$/.exec(version)!;
  return {
    platform,
    arch,
    filename,
    size: filename.length,
    sha256: sha256(filename),
    content_type: 'application/zip',
    blob: `releases/${parsed[1]}/${parsed[2]}/${parsed[3]}/${filename}`,
  };
}

/** A valid agent-layout artifact entry. */
export function agentArtifact(version: string, platform: 'windows' | 'darwin', arch: 'amd64' | 'arm64'): ArtifactJson {
  const filename = platform === 'windows' ? `Desk-${version}.msi` : `Desk-${version}.pkg`;
  const blob = platform === 'windows' ? `agent/windows/${version}/${filename}` : `agent/macos/${arch === 'arm64' ? 'arm64' : 'x86_64'}/${version}/${filename}`;
  return { platform, arch, filename, size: 10, sha256: sha256(blob), blob };
}

export function release(version: string, artifacts: ArtifactJson[], extra: Partial<ReleaseJson> = {}): ReleaseJson {
  return { version, published_at: '2024-01-01T00:00:00Z', notes_url: null, status: 'active', artifacts, ...extra };
}

/**
 * Writes a small valid store into `dir`:
 *   tool/  binary layout, prefix `tool`, releases 1.0.0 (3 artifacts) and 1.1.0 (1 artifact)
 *   desk/  agent layout, release 2.0.0 (windows/amd64, darwin/arm64)
 */
export async function writeSmallStore(dir: string): Promise<void> {
  await writeJson(path.join(dir, 'mirror.json'), { title: 'Small', base_url: 'https://releases.example.com' });
  await writeJson(path.join(dir, 'tool', 'product.json'), { name: 'tool', title: 'Tool', layout: 'binary' });
  await writeJson(
    path.join(dir, 'tool', '1.0.0.json'),
    release('1.0.0', [binaryArtifact('tool', '1.0.0', 'linux', 'amd64'), binaryArtifact('tool', '1.0.0', 'darwin', 'arm64'), binaryArtifact('tool', '1.0.0', 'windows', 'amd64')]),
  );
  await writeJson(path.join(dir, 'tool', '1.1.0.json'), release('1.1.0', [binaryArtifact('tool', '1.1.0', 'linux', 'amd64')]));
  await writeJson(path.join(dir, 'desk', 'product.json'), { name: 'desk', title: 'Desk', layout: 'agent' });
  await writeJson(path.join(dir, 'desk', '2.0.0.json'), release('2.0.0', [agentArtifact('2.0.0', 'windows', 'amd64'), agentArtifact('2.0.0', 'darwin', 'arm64')]));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node scripts/mirror.js ARGS` from the repository root; never rejects on a non-zero exit. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['scripts/mirror.js', ...args], { cwd: REPO, env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

/** Every file under `dir`, relative, sorted; empty when `dir` does not exist. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

/** Adds agent-as-code 1.12.3 (one linux/amd64 zip, the bytes of 1.12.2's) to a copy of the sample store. */
export async function addPatchRelease(releasesDir: string, blobsDir: string): Promise<void> {
  const release = JSON.parse(await readFile(path.join(releasesDir, 'agent-as-code', '1.12.2.json'), 'utf8'));
  const source = release.artifacts.find((artifact: { platform: string; arch: string }) => artifact.platform === 'linux' && artifact.arch === 'amd64');
  const blob = 'releases/1/12/3/agent_as_code_1.12.3_linux_amd64.zip';
  await mkdir(path.dirname(path.join(blobsDir, blob)), { recursive: true });
  await cp(path.join(blobsDir, source.blob), path.join(blobsDir, blob));
  await writeFile(
    path.join(releasesDir, 'agent-as-code', '1.12.3.json'),
    JSON.stringify({ ...release, version: '1.12.3', published_at: '2024-03-01T00:00:00Z', artifacts: [{ ...source, filename: 'agent_as_code_1.12.3_linux_amd64.zip', blob }] }),
  );
}
