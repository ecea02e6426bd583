// `mirror release add`: a release from files, or from a GoReleaser dist folder. Its options are
// declared in commands.ts, which has already checked that each file exists.
import { resolvePaths } from '../../generator/config.ts';
import { readGoreleaserDist } from '../../generator/goreleaser.ts';
import type { Channel } from '../../generator/model/catalog.ts';
import { addRelease, type AddReleaseResult, type ArtifactInput } from '../../generator/release-add.ts';
import { createFsBlobStore } from '../../generator/stores/blob-fs.ts';
import type { Locks } from '../../generator/stores/locks.ts';
import { UsageError } from './command.ts';

export async function releaseAdd(values: Record<string, unknown>, files: string[]): Promise<number> {
  await addReleaseFrom(values, files);
  return 0;
}

/** What `release add` did, for callers that report it (the GitHub Action's outputs). */
export interface AddedRelease extends AddReleaseResult {
  product: string;
  version: string;
}

/** `locks`: where writers of one version take turns (default: addRelease's lock files). */
export async function addReleaseFrom(values: Record<string, unknown>, files: string[], locks?: Locks): Promise<AddedRelease> {
  if (files.length === 0 && values.goreleaser === undefined) throw new UsageError('FILES is missing: name the artifact files, or --goreleaser DIST');
  const dist = values.goreleaser === undefined ? undefined : await readGoreleaserDist(values.goreleaser as string);
  for (const line of dist?.skipped ?? []) console.log(`skipped ${line}`);
  const version = (values.version as string | undefined) ?? dist?.version;
  if (version === undefined) throw new UsageError('--version V is missing');
  const paths = resolvePaths({ releases: values.releases as string | undefined });
  const result = await addRelease({
    releasesDir: paths.releasesDir,
    blobs: createFsBlobStore({ root: paths.blobsDir }),
    product: values.product as string,
    version,
    files: [...(dist?.files ?? []), ...files.map((file) => artifactInput(file, values['content-type'] as string | undefined))],
    publishedAt: (values['published-at'] as string | undefined) ?? new Date().toISOString(),
    channels: values.channel as Channel[] | undefined,
    notesUrl: values['notes-url'] as string | undefined,
    locks,
  });
  console.log(`${result.created ? 'created' : 'updated'} ${result.file}`);
  for (const artifact of result.artifacts) console.log(`  ${artifact.sha256}  ${artifact.filename}  (${artifact.platform}/${artifact.arch}, ${artifact.size} bytes)`);
  return { ...result, product: values.product as string, version };
}

function artifactInput(spec: string, contentType: string | undefined): ArtifactInput {
  const hash = spec.lastIndexOf('#');
  if (hash === -1) return { path: spec, contentType };
  const [platform, arch] = spec.slice(hash + 1).split('/');
  return { path: spec.slice(0, hash), platform, arch, contentType };
}
