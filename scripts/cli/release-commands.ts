// `mirror release add`: a release from files, or from a GoReleaser dist folder.
import { resolvePaths } from '../../generator/config.ts';
import { readGoreleaserDist } from '../../generator/goreleaser.ts';
import { CHANNELS, type Channel } from '../../generator/model/catalog.ts';
import { addRelease, type ArtifactInput } from '../../generator/release-add.ts';
import { createFsBlobStore } from '../../generator/stores/blob-fs.ts';
import { UsageError, releasesOption, required, type Command } from './command.ts';

export const releaseCommands: Record<string, Command> = {
  release: {
    usage: `mirror release add --product P [--version V] [options] [--goreleaser DIST] FILES...

Hashes each file, puts it in the blob store and writes releases/<product>/<version>.json.
Adding files to an existing release is allowed; replacing an artifact is refused.
A file's platform and architecture come from its name (tool_1.2.3_linux_amd64.zip) or are
given as FILE#PLATFORM/ARCH (ScalepadAgent-1.8.3.pkg#darwin/arm64).

  --product P          product directory in the manifest store
  --version V          semantic version, e.g. 1.12.2 or 1.13.0-beta.1
  --channel C          stable or latest, repeatable (default: stable and latest, prereleases latest only)
  --notes-url URL      release notes link
  --published-at ISO   publication time (default: now)
  --content-type T     content type for every file (default: from the extension)
  --goreleaser DIST    add the archives GoReleaser listed in DIST/artifacts.json, checked
                       against its checksums file; the version defaults to DIST/metadata.json's
  --releases DIR       manifest store (default $MIRROR_RELEASES or releases/)
`,
    options: {
      ...releasesOption,
      product: { type: 'string' },
      version: { type: 'string' },
      channel: { type: 'string', multiple: true },
      'notes-url': { type: 'string' },
      'published-at': { type: 'string' },
      'content-type': { type: 'string' },
      goreleaser: { type: 'string' },
    },
    positionals: true,
    async run(values, positionals) {
      const [action, ...files] = positionals;
      if (action !== 'add') throw new UsageError(`Unknown action \`${action ?? ''}\`; expected \`release add\``);
      const product = required(values, 'product');
      const dist = values.goreleaser === undefined ? undefined : await readGoreleaserDist(values.goreleaser as string);
      for (const line of dist?.skipped ?? []) console.log(`skipped ${line}`);
      const version = (values.version as string | undefined) ?? dist?.version ?? required(values, 'version');
      const channels = values.channel as string[] | undefined;
      for (const channel of channels ?? []) {
        if (!(CHANNELS as readonly string[]).includes(channel)) throw new UsageError(`Expected \`--channel\` to be one of ${CHANNELS.join(', ')}, got \`${channel}\``);
      }
      const publishedAt = (values['published-at'] as string | undefined) ?? new Date().toISOString();
      const paths = resolvePaths({ releases: values.releases as string | undefined });
      const result = await addRelease({
        releasesDir: paths.releasesDir,
        blobs: createFsBlobStore({ root: paths.blobsDir }),
        product,
        version,
        files: [...(dist?.files ?? []), ...files.map((file) => artifactInput(file, values['content-type'] as string | undefined))],
        publishedAt,
        channels: channels as Channel[] | undefined,
        notesUrl: values['notes-url'] as string | undefined,
      });
      console.log(`${result.created ? 'created' : 'updated'} ${result.file}`);
      for (const artifact of result.artifacts) console.log(`  ${artifact.sha256}  ${artifact.filename}  (${artifact.platform}/${artifact.arch}, ${artifact.size} bytes)`);
      return 0;
    },
  },
};

function artifactInput(spec: string, contentType: string | undefined): ArtifactInput {
  const hash = spec.lastIndexOf('#');
  if (hash === -1) return { path: spec, contentType };
  const [platform, arch] = spec.slice(hash + 1).split('/');
  if (!platform || !arch) throw new UsageError(`Expected FILE#PLATFORM/ARCH, got \`${spec}\``);
  return { path: spec.slice(0, hash), platform, arch, contentType };
}
