// Reads what GoReleaser leaves in its dist folder: artifacts.json (what was built, for which
// platform), metadata.json (the version) and the checksums file, so `release add --goreleaser`
// publishes exactly the archives GoReleaser made and checks them against its checksums.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { ArtifactInput } from './release-add.ts';
import { canonicalArch, canonicalPlatform } from './model/platforms.ts';

const artifactEntry = z.looseObject({
  name: z.string(),
  path: z.string(),
  type: z.string(),
  goos: z.string().optional(),
  goarch: z.string().optional(),
});

export interface GoreleaserDist {
  /** From metadata.json, when GoReleaser wrote one. */
  version: string | undefined;
  /** The archives, each with the sha256 the checksums file gives it. */
  files: ArtifactInput[];
  /** Archives not published, with the reason. */
  skipped: string[];
}

export async function readGoreleaserDist(dist: string): Promise<GoreleaserDist> {
  const artifactsFile = path.join(dist, 'artifacts.json');
  const text = await readFile(artifactsFile, 'utf8').catch(() => {
    throw new Error(`${artifactsFile} is missing: point --goreleaser at GoReleaser's dist folder`);
  });
  const parsed = z.array(artifactEntry).safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${artifactsFile}: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  // GoReleaser's `path` is relative to the project it ran in; its archives sit at the top of dist.
  const locate = (entry: { name: string; path: string }) => (path.isAbsolute(entry.path) ? entry.path : path.join(dist, entry.name));

  const checksums = new Map<string, string>();
  for (const entry of parsed.data.filter((artifact) => artifact.type === 'Checksum')) {
    for (const line of (await readFile(locate(entry), 'utf8')).split('\n')) {
      const match = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
      if (match) checksums.set(match[2]!, match[1]!);
    }
  }

  const files: ArtifactInput[] = [];
  const skipped: string[] = [];
  for (const entry of parsed.data.filter((artifact) => artifact.type === 'Archive')) {
    const platform = entry.goos === undefined ? undefined : canonicalPlatform(entry.goos);
    const arch = entry.goarch === undefined ? undefined : canonicalArch(entry.goarch);
    if (!platform || !arch) {
      skipped.push(`${entry.name}: ${entry.goos ?? '?'}/${entry.goarch ?? '?'} is not a published platform`);
      continue;
    }
    const sha256 = checksums.get(entry.name);
    if (checksums.size > 0 && !sha256) throw new Error(`${entry.name} is not in GoReleaser's checksums file`);
    files.push({ path: locate(entry), platform, arch, ...(sha256 ? { sha256 } : {}) });
  }
  if (files.length === 0) throw new Error(`${artifactsFile} lists no archive for a published platform${skipped.length ? ` (skipped: ${skipped.join('; ')})` : ''}`);
  return { version: await readVersion(dist), files, skipped };
}

async function readVersion(dist: string): Promise<string | undefined> {
  try {
    const metadata = JSON.parse(await readFile(path.join(dist, 'metadata.json'), 'utf8')) as { version?: unknown };
    return typeof metadata.version === 'string' ? metadata.version : undefined;
  } catch {
    return undefined;
  }
}
