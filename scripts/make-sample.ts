// Regenerates the sample store in releases/ and its artifact bytes in .mirror/blobs/ with
// `release add`, the same code path a release job uses, and the registry packages with the
// sidecar's writer (scripts/sample-registry.ts). Deterministic: archives carry fixed dates.
//   node --import tsx scripts/make-sample.ts
import { ZipArchive } from 'archiver';
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { resolvePaths } from '../generator/config.ts';
import { REGISTRY_DIRECTORY } from '../generator/load/registry.ts';
import type { Channel } from '../generator/model/catalog.ts';
import { addRelease, type ArtifactInput } from '../generator/release-add.ts';
import { createFsBlobStore } from '../generator/stores/blob-fs.ts';
import { writeSampleRegistry } from './sample-registry.ts';

const paths = resolvePaths({});
const blobs = createFsBlobStore({ root: paths.blobsDir });
const work = await mkdtemp(path.join(tmpdir(), 'mirror-sample-'));

const CLI_RELEASES: { version: string; publishedAt: string; targets: string[] }[] = [
  { version: '1.0.0', publishedAt: '2023-06-01T12:00:00Z', targets: ['windows/amd64', 'linux/amd64', 'darwin/arm64', 'darwin/amd64'] },
  { version: '1.1.0', publishedAt: '2023-09-12T09:00:00Z', targets: ['windows/amd64', 'linux/amd64', 'darwin/arm64', 'darwin/amd64'] },
  { version: '1.12.2', publishedAt: '2024-01-15T10:30:00Z', targets: ['windows/amd64', 'linux/amd64', 'darwin/arm64', 'linux/arm64', 'darwin/amd64', 'windows/386'] },
  { version: '1.13.0-beta.1', publishedAt: '2024-02-20T08:00:00Z', targets: ['windows/amd64', 'linux/amd64', 'darwin/arm64', 'linux/arm64'] },
];

const AGENT_RELEASES: { version: string; publishedAt: string; channels?: Channel[] }[] = [
  { version: '1.8.2', publishedAt: '2026-01-20T17:05:12.000Z' },
  { version: '1.8.3', publishedAt: '2026-02-24T21:23:53.082Z' },
  { version: '1.9.0-rc.1', publishedAt: '2026-03-10T15:00:00.000Z', channels: ['latest'] },
];

await clearProduct('agent-as-code');
await clearProduct('scalepad-agent');
await rm(path.join(paths.blobsDir, 'releases'), { recursive: true, force: true });
await rm(path.join(paths.blobsDir, 'agent'), { recursive: true, force: true });
await rm(path.join(paths.releasesDir, REGISTRY_DIRECTORY), { recursive: true, force: true });
await rm(path.join(paths.blobsDir, REGISTRY_DIRECTORY), { recursive: true, force: true });

for (const release of CLI_RELEASES) {
  const files: ArtifactInput[] = [];
  for (const target of release.targets) {
    const [platform, arch] = target.split('/') as [string, string];
    const file = path.join(work, `agent_as_code_${release.version}_${platform}_${arch}.zip`);
    await writeZip(file, release.publishedAt, platform === 'windows' ? 'agent_as_code.cmd' : 'agent_as_code', cliProgram(release.version, platform, arch));
    files.push({ path: file });
  }
  await add('agent-as-code', release.version, release.publishedAt, files, undefined, `https://github.com/example/agent-as-code/releases/tag/v${release.version}`);
}

for (const release of AGENT_RELEASES) {
  const files: ArtifactInput[] = [];
  const msi = path.join(work, 'windows', `ScalepadAgent-${release.version}.msi`);
  await writeInstaller(msi, `Scalepad Agent ${release.version} Windows installer (sample)\n`);
  files.push({ path: msi, platform: 'windows', arch: 'amd64', contentType: 'application/octet-stream' });
  for (const arch of ['arm64', 'amd64']) {
    const pkg = path.join(work, arch, `ScalepadAgent-${release.version}.pkg`);
    await writeInstaller(pkg, `Scalepad Agent ${release.version} macOS ${arch} installer (sample)\n`);
    files.push({ path: pkg, platform: 'darwin', arch, contentType: 'application/octet-stream' });
  }
  await add('scalepad-agent', release.version, release.publishedAt, files, release.channels, `https://github.com/Scalepad/scalepad-agent/releases/tag/v${release.version}`);
}
for (const file of await writeSampleRegistry({ releasesDir: paths.releasesDir, blobs, work })) console.log(file);
await rm(work, { recursive: true, force: true });
// mirror-agent's real .deb and .rpm packages, built with dpkg-deb and rpmbuild.
execFileSync('bash', [path.join(path.dirname(fileURLToPath(import.meta.url)), 'make-packages.sh')], { stdio: 'inherit' });

async function add(product: string, version: string, publishedAt: string, files: ArtifactInput[], channels: Channel[] | undefined, notesUrl: string) {
  const result = await addRelease({ releasesDir: paths.releasesDir, blobs, product, version, files, publishedAt, channels, notesUrl });
  console.log(`${result.file}: ${result.artifacts.length} artifacts`);
}

async function clearProduct(product: string) {
  const dir = path.join(paths.releasesDir, product);
  for (const name of await readdir(dir)) if (name !== 'product.json') await rm(path.join(dir, name));
}

function cliProgram(version: string, platform: string, arch: string): string {
  return platform === 'windows'
    ? `@echo off\r\necho agent-as-code ${version} (${platform}/${arch})\r\n`
    : `#!/bin/sh\necho "agent-as-code ${version} (${platform}/${arch})"\n`;
}

async function writeZip(file: string, date: string, name: string, content: string) {
  const zip = new ZipArchive({ zlib: { level: 9 } });
  const out = createWriteStream(file);
  zip.pipe(out);
  zip.append(content, { name, date: new Date(date), mode: 0o755 });
  await zip.finalize();
  await finished(out);
}

async function writeInstaller(file: string, content: string) {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
}
