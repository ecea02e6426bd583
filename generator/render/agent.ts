// The desktop-agent layout (seeds 001/002) under /v2/agent-releases: paginated list, latest per
// channel, one release per version, and the 302 download redirects. Browsers get HTML pages for
// the list, the latest per channel and each release at the same URLs.
import { CHANNELS, primaryChannel, resolveChannel, type Artifact, type Channel, type Product, type Release } from '../model/catalog.ts';
import { AGENT_LAYOUT_NAMES } from '../model/platforms.ts';
import { checksumFile, sumsName, type LayoutOutput } from './binary.ts';
import type { Crumb, PageRenderer } from './html.ts';
import { blobTarget, lookupKey, type Endpoint, type PathTarget, type QueryParam } from './route-table.ts';
import { CACHE_SHORT, jsonFile, type SiteFile } from './site-file.ts';

export const AGENT_ROOT = 'v2/agent-releases';
/** Where artifact bytes are served; the 302s point here. */
export const DOWNLOADS_ROOT = 'downloads';
export const PAGE_LIMITS = ['10', '20', '50', '100'];
export const DEFAULT_PAGE_LIMIT = '20';

const PLATFORM_PARAM: QueryParam = { name: 'platform', values: ['windows', 'macos'], required: true };
const ARCH_PARAM: QueryParam = { name: 'arch', values: ['arm64', 'x86_64'], onlyWith: { param: 'platform', value: 'macos' } };

export interface AgentOutput extends LayoutOutput {
  endpoints: Endpoint[];
}

const LIST_PAGE = `${AGENT_ROOT}/index.html`;

export function renderAgentProduct(product: Product, baseUrl: string, pages: PageRenderer): AgentOutput {
  const files: SiteFile[] = [];
  const paths: Record<string, PathTarget> = {};
  const listed = [...product.releases].reverse().filter((release) => release.status === 'active');
  const crumbs: Crumb[] = [{ label: product.name, href: `/${AGENT_ROOT}` }];
  const newest = CHANNELS.flatMap((channel) => {
    const release = resolveChannel(product, channel);
    return release ? [{ channel, version: release.version, url: releasePath(release) }] : [];
  });

  const list: Endpoint = endpoint(`/${AGENT_ROOT}`, [
    { name: 'page', default: '1' },
    { name: 'limit', values: PAGE_LIMITS, default: DEFAULT_PAGE_LIMIT },
  ], 'file', { code: 'not_found', message: 'Page not found: past the last page of agent releases' });
  // One page lists every release for a browser, whichever page of the JSON list it asked for.
  list.html = {};
  files.push(
    pages.page(LIST_PAGE, 'agent-releases', {
      title: product.title,
      breadcrumbs: crumbs,
      product,
      newest,
      releases: listed.map((release) => ({ ...releaseView(release), url: releasePath(release) })),
    }),
  );
  for (const limit of PAGE_LIMITS) {
    const size = Number(limit);
    const totalPages = Math.max(1, Math.ceil(listed.length / size));
    for (let page = 1; page <= totalPages; page++) {
      const key = `${AGENT_ROOT}/pages/${limit}/${page}.json`;
      const link = (n: number) => (n >= 1 && n <= totalPages ? `/${AGENT_ROOT}?page=${n}&limit=${limit}` : null);
      files.push(
        jsonFile(key, {
          data: listed.slice((page - 1) * size, page * size).map((release) => agentRelease(release, primaryChannel(release))),
          pagination: { page, limit: size, total_items: listed.length, total_pages: totalPages, next: link(page + 1), prev: link(page - 1) },
        }),
      );
      list.entries[lookupKey(`/${AGENT_ROOT}`, [['page', String(page)], ['limit', limit]])] = key;
      list.html[key] = LIST_PAGE;
    }
  }

  const latest = endpoint(`/${AGENT_ROOT}/latest`, [{ name: 'channel', values: [...CHANNELS], default: 'stable' }], 'file', {
    code: 'not_found',
    message: 'No agent release in this channel',
  });
  const latestDownload = endpoint(`/${AGENT_ROOT}/latest/download`, [{ name: 'channel', values: [...CHANNELS], default: 'stable' }, PLATFORM_PARAM, ARCH_PARAM], 'redirect', {
    code: 'not_found',
    message: 'Agent artifact not found',
  });
  latest.html = {};
  for (const channel of CHANNELS) {
    const release = resolveChannel(product, channel);
    if (!release) continue;
    const key = `${AGENT_ROOT}/latest/${channel}.json`;
    files.push(jsonFile(key, agentRelease(release, channel)));
    latest.entries[lookupKey(`/${AGENT_ROOT}/latest`, [['channel', channel]])] = key;
    latest.html[key] = releasePageKey(release);
    for (const [query, artifact] of downloadTargets(release)) {
      latestDownload.entries[lookupKey(`/${AGENT_ROOT}/latest/download`, [['channel', channel], ...query])] = `${baseUrl}/${DOWNLOADS_ROOT}/${artifact.blob}`;
    }
  }

  const one = endpoint(`/${AGENT_ROOT}/:version`, [], 'file', { code: 'not_found', message: 'Agent release not found' });
  const download = endpoint(`/${AGENT_ROOT}/:version/download`, [PLATFORM_PARAM, ARCH_PARAM], 'redirect', {
    code: 'not_found',
    message: 'Agent release not found',
    scopedMessage: 'Agent artifact not found',
  });
  download.scopes = [];
  one.html = {};
  for (const release of product.releases) {
    const key = `${AGENT_ROOT}/${release.version}.json`;
    files.push(jsonFile(key, agentRelease(release, primaryChannel(release))));
    one.entries[releasePath(release)] = key;
    const downloadPath = `/${AGENT_ROOT}/${release.version}/download`;
    download.scopes.push(downloadPath);
    for (const [query, artifact] of downloadTargets(release)) {
      download.entries[lookupKey(downloadPath, query)] = `${baseUrl}/${DOWNLOADS_ROOT}/${artifact.blob}`;
    }
    for (const artifact of release.artifacts) {
      paths[`/${DOWNLOADS_ROOT}/${artifact.blob}`] = blobTarget(artifact);
    }
    // The release's checksums, signed like the binary layout's, beside its download endpoint. The
    // macOS installers share a file name, so each artifact is named by its path under /downloads/
    // (`agent/macos/arm64/1.8.3/ScalepadAgent-1.8.3.pkg`), as `curl --create-dirs -o` saves it.
    const sums = `${AGENT_ROOT}/${release.version}/${sumsName(product, release)}`;
    files.push(checksumFile(sums, release, (artifact) => artifact.blob));
    paths[`/${sums}`] = { type: 'file', key: sums };

    files.push(
      pages.page(releasePageKey(release), 'agent-release', {
        title: `${product.title} ${release.version}`,
        breadcrumbs: [...crumbs, { label: release.version, href: releasePath(release) }],
        product,
        release: {
          ...releaseView(release),
          channels: release.status === 'active' ? release.channels : [],
          sums: `/${sums}`,
          files: downloadTargets(release).map(([query, artifact]) => ({
            target: `${AGENT_LAYOUT_NAMES.platform[artifact.platform]}/${AGENT_LAYOUT_NAMES.arch[artifact.arch]}`,
            filename: artifact.filename,
            size: artifact.size,
            sha256: artifact.sha256,
            url: lookupKey(`${releasePath(release)}/download`, query),
          })),
        },
      }),
    );
    one.html[key] = releasePageKey(release);
  }
  return { files, paths, endpoints: [latestDownload, latest, download, one, list] };
}

function releasePath(release: Release): string {
  return `/${AGENT_ROOT}/${release.version}`;
}

/** A release's page, beside its JSON (`1.8.3.json`, `1.8.3.html`); served at the release's path. */
function releasePageKey(release: Release): string {
  return `${AGENT_ROOT}/${release.version}.html`;
}

function releaseView(release: Release) {
  return { version: release.version, publishedAt: release.publishedAt, prerelease: release.prerelease, yanked: release.status === 'yanked', notesUrl: release.notesUrl };
}

function endpoint(pattern: string, params: QueryParam[], answer: Endpoint['answer'], notFound: Endpoint['notFound']): Endpoint {
  return { pattern, params, answer, entries: {}, notFound, cacheControl: CACHE_SHORT };
}

/** Each artifact with the normalised download query that selects it. */
function downloadTargets(release: Release): [[string, string][], Artifact][] {
  const targets: [[string, string][], Artifact][] = [];
  for (const artifact of release.artifacts) {
    const platform = AGENT_LAYOUT_NAMES.platform[artifact.platform]!;
    const query: [string, string][] = [['platform', platform]];
    if (artifact.platform === 'darwin') query.push(['arch', AGENT_LAYOUT_NAMES.arch[artifact.arch]!]);
    targets.push([query, artifact]);
  }
  return targets;
}

/** The AgentRelease DTO of seed 002. */
function agentRelease(release: Release, channel: Channel) {
  const find = (platform: Artifact['platform'], arch: Artifact['arch']) => release.artifacts.find((a) => a.platform === platform && a.arch === arch);
  const dto = (artifact: Artifact | undefined, query: string) =>
    artifact
      ? {
          filename: artifact.filename,
          content_type: artifact.contentType,
          size_bytes: artifact.size,
          sha256: artifact.sha256,
          download_url: `/${AGENT_ROOT}/${release.version}/download?${query}`,
        }
      : null;
  return {
    channel,
    version: release.version,
    published_at: release.publishedAt,
    notes_url: release.notesUrl,
    artifacts: {
      windows: dto(find('windows', 'amd64'), 'platform=windows'),
      macos: {
        arm64: dto(find('darwin', 'arm64'), 'platform=macos&arch=arm64'),
        x86_64: dto(find('darwin', 'amd64'), 'platform=macos&arch=x86_64'),
      },
    },
  };
}
