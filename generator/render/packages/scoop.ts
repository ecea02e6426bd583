// A Scoop manifest per product (`scoop install <origin>/scoop/bucket/<name>.json`, or copied into a
// bucket): the latest stable release's Windows archives per architecture, and the checkver and
// autoupdate rules with which a bucket's own copy follows the mirror.
import { resolveChannel, type Artifact, type Product, type Release, type SiteSettings } from '../../model/catalog.ts';
import type { Arch } from '../../model/platforms.ts';
import { BINARY_ROOT, artifactPath, sumsName, type LayoutOutput } from '../binary.ts';
import { jsonFile } from '../site-file.ts';
import { packageOrigin } from './origin.ts';

export const SCOOP_ROOT = 'scoop/bucket';

/** Scoop's architecture keys, in the order its own manifests list them. */
const ARCHITECTURES: { key: '64bit' | '32bit' | 'arm64'; arch: Arch }[] = [
  { key: '64bit', arch: 'amd64' },
  { key: '32bit', arch: '386' },
  { key: 'arm64', arch: 'arm64' },
];

/** Scoop's word for a license nobody stated. */
const UNKNOWN_LICENSE = 'Unknown';

export function renderScoopManifest(product: Product, site: SiteSettings): LayoutOutput {
  if (product.layout !== 'binary') {
    throw new Error(`Expected a binary-layout product for a Scoop manifest, got \`${product.name}\` (${product.layout})`);
  }
  // The newest stable release with a Windows archive; without one, there is nothing to install yet.
  const release = resolveChannel(product, 'stable', (candidate) => ARCHITECTURES.some(({ arch }) => windowsArchive(candidate, arch)));
  if (!release) return { files: [], paths: {} };
  const archives = ARCHITECTURES.flatMap(({ key, arch }) => {
    const archive = windowsArchive(release, arch);
    return archive ? [{ key, archive }] : [];
  });
  if (archives.length === 0) return { files: [], paths: {} };

  const origin = packageOrigin(site);
  const base = `${origin}/${BINARY_ROOT}/${product.name}`;
  const key = `${SCOOP_ROOT}/${product.packages.name}.json`;
  const manifest = {
    version: release.version,
    description: product.description || product.title,
    homepage: product.homepage ?? `${base}/`,
    license: product.packages.license ?? UNKNOWN_LICENSE,
    architecture: Object.fromEntries(
      archives.map(({ key, archive }) => [key, { url: `${origin}${artifactPath(product, release, archive)}`, hash: archive.sha256 }]),
    ),
    bin: product.packages.windowsBinary,
    // The mirror's versions list also holds prereleases and yanked releases; this manifest's own
    // `version` is exactly the latest stable one.
    checkver: { url: `${origin}/${key}`, jsonpath: '$.version' },
    autoupdate: {
      architecture: Object.fromEntries(
        archives.map(({ key, archive }) => [key, { url: `${base}/$majorVersion/$minorVersion/${archive.filename.replaceAll(release.version, '$version')}` }]),
      ),
      // Scoop finds each archive's line in the release's sha256sum-format file by its name.
      hash: { url: `$baseurl/${sumsName(product, { ...release, version: '$version' })}` },
    },
  };
  return { files: [jsonFile(key, manifest)], paths: { [`/${key}`]: { type: 'file', key } } };
}

/** Scoop unpacks a zip itself and other archives only with 7-Zip installed, so a zip comes first. */
function windowsArchive(release: Release, arch: Arch): Artifact | undefined {
  const archives = release.artifacts.filter((artifact) => artifact.format === 'archive' && artifact.platform === 'windows' && artifact.arch === arch);
  return archives.find((artifact) => artifact.filename.endsWith('.zip')) ?? archives[0];
}
