// Registry version files for the loader, render and page tests: valid unless a test changes them,
// written into temporary manifest stores, with tarball bytes in a temporary blob store.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { tarballBlobKey } from '../../generator/model/registry.ts';
import { sha256, writeJson } from './store.ts';

/** What a README must never carry onto a page: a script, an event handler, a `javascript:` link, a frame, styles. */
export const HOSTILE_README = [
  '# Evil Agent',
  '',
  'Helps with nothing.',
  '',
  '<script>window.__pwned=1</script>',
  '',
  '<img src=x onerror="window.__pwned=2">',
  '',
  '[click](javascript:window.__pwned=3)',
  '',
  '<a href="javascript:window.__pwned=4">raw link</a> <p style="position:fixed;inset:0" onclick="window.__pwned=5">cover</p>',
  '',
  '<iframe src="javascript:window.top.__pwned=6"></iframe>',
  '',
  '## Usage',
  '',
  '| step | what |',
  '| --- | --- |',
  '| 1 | [docs](https://example.com/docs) |',
  '',
].join('\n');

export interface VersionJson {
  scope: string;
  name: string;
  version: string;
  [field: string]: unknown;
}

/** The `agent` field of a valid version file. */
export function agentJson(name: string, version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    version,
    description: `The ${name} agent`,
    category: 'productivity',
    tags: ['sample'],
    license: 'MIT',
    repository: null,
    permissions: { filesystem: false, network: true, execute_commands: false },
    mcp_servers: [],
    examples: [],
    ...extra,
  };
}

/** A valid version file whose tarball is `tarballBytes(scope, name, version)`. */
export function versionJson(scope: string, name: string, version: string, extra: Record<string, unknown> = {}): VersionJson {
  const bytes = tarballBytes(scope, name, version);
  const digest = sha256(bytes);
  return {
    scope,
    name,
    version,
    published_at: '2026-01-01T00:00:00.000Z',
    tarball: { blob: tarballBlobKey(scope, name, version, digest), sha256: digest, size: bytes.length },
    author: { username: scope, display_name: scope.toUpperCase(), avatar_url: 'https://avatars.githubusercontent.com/u/1', github_id: 1 },
    agent: agentJson(name, version),
    readme: `# ${name}\n\nVersion ${version}.\n`,
    ...extra,
  };
}

/** Writes `data` at `registry/@<scope>/<name>/<file>` (by default the place its own fields name). */
export async function writeVersionFile(releasesDir: string, data: VersionJson, place: { scope?: string; name?: string; file?: string } = {}): Promise<string> {
  const file = versionFilePath(releasesDir, place.scope ?? data.scope, place.name ?? data.name, place.file ?? `${data.version}.json`);
  await writeJson(file, data);
  return file;
}

export function versionFilePath(releasesDir: string, scope: string, name: string, file: string): string {
  return path.join(releasesDir, 'registry', `@${scope}`, name, file);
}

/** A small gzip file standing for a version's tarball: its bytes differ per version. */
export function tarballBytes(scope: string, name: string, version: string): Buffer {
  return gzipSync(Buffer.from(`@${scope}/${name} ${version}\n`), { level: 9 });
}

/** Puts a version's tarball in a blob store directory under the key its file names. */
export async function writeTarballBlob(blobsDir: string, data: VersionJson): Promise<void> {
  const file = path.join(blobsDir, (data.tarball as { blob: string }).blob);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, tarballBytes(data.scope, data.name, data.version));
}
