// The desktop-agent layout (seeds 001/002): every page of the release list, each release by
// version, the latest release of each channel, and every download redirect they name.
import semver from 'semver';
import { agentUrl, artifactSlots, checkRedirectedArtifact } from './agent-downloads.ts';
import { CHANNELS, checkLatestDownloads, checkLatestRelease } from './agent-latest.ts';
import { differences } from './differences.ts';
import { resolveLink, type Crawl } from './http.ts';
import { agentRelease, agentReleasePage, type AgentArtifact, type AgentRelease, type AgentReleasePage } from './schemas.ts';

export async function verifyAgentProduct(crawl: Crawl, listUrl: URL): Promise<void> {
  const listed = await walkReleaseList(crawl, listUrl);
  const [byVersion, latest] = await Promise.all([
    Promise.all(listed.map((entry) => checkReleaseByVersion(crawl, listUrl, entry))),
    Promise.all(CHANNELS.map((channel) => checkLatestRelease(crawl, listUrl, channel, listed))),
  ]);
  const artifacts = distinctArtifacts(crawl, listUrl, [...listed, ...byVersion, ...latest]);
  await Promise.all([
    ...artifacts.map(({ url, artifact, version }) => {
      crawl.record.count('artifactsChecked');
      return checkRedirectedArtifact(crawl, url, artifact, `${artifact.filename} of ${version}`);
    }),
    ...CHANNELS.map((channel, index) => checkLatestDownloads(crawl, listUrl, channel, latest[index])),
  ]);
}

/** Follows `pagination.next` to the last page; what the pages list must add up to `total_items`. */
async function walkReleaseList(crawl: Crawl, listUrl: URL): Promise<AgentRelease[]> {
  const releases: AgentRelease[] = [];
  const read = new Set<string>();
  let totalItems: number | undefined;
  let pageUrl = listUrl;
  for (;;) {
    if (read.has(pageUrl.href)) {
      crawl.record.problem(pageUrl, 'expected pagination.next to lead to a new page, got one already read');
      return releases;
    }
    read.add(pageUrl.href);
    const page: AgentReleasePage | undefined = await crawl.http.json(pageUrl, agentReleasePage);
    if (!page) return releases;
    releases.push(...page.data);
    totalItems = page.pagination.total_items;
    const next: string | null = page.pagination.next;
    if (next === null) break;
    const nextUrl = resolveLink(crawl.record, pageUrl, next, 'pagination.next');
    if (!nextUrl) return releases;
    pageUrl = nextUrl;
  }
  if (totalItems !== releases.length) crawl.record.problem(listUrl, `expected ${totalItems} releases (pagination.total_items), got ${releases.length} over ${read.size} pages`);
  checkNewestFirst(crawl, listUrl, releases);
  return releases;
}

function checkNewestFirst(crawl: Crawl, listUrl: URL, releases: AgentRelease[]): void {
  const seen = new Set<string>();
  releases.forEach(({ version }, index) => {
    if (!semver.valid(version)) crawl.record.problem(listUrl, `expected semantic versions, got \`${version}\``);
    if (seen.has(version)) crawl.record.problem(listUrl, `expected each release once, got ${version} twice`);
    seen.add(version);
    const before = releases[index - 1]?.version;
    if (before && semver.valid(before) && semver.valid(version) && semver.gt(version, before)) {
      crawl.record.problem(listUrl, `expected the releases newest first, got ${before} before ${version}`);
    }
  });
}

async function checkReleaseByVersion(crawl: Crawl, listUrl: URL, entry: AgentRelease): Promise<AgentRelease | undefined> {
  // Only a valid version is sure to be a plain path segment; the list check already reported others.
  if (!semver.valid(entry.version)) return undefined;
  const url = agentUrl(listUrl, entry.version);
  const release = await crawl.http.json(url, agentRelease);
  const differing = release ? differences(entry, release) : [];
  if (differing.length > 0) crawl.record.problem(url, `expected the release the list shows for ${entry.version}, got one that differs in ${differing.join(', ')}`);
  return release;
}

interface ListedArtifact {
  url: URL;
  artifact: AgentArtifact;
  version: string;
}

/** Each download_url once, with the first artifact that named it; disagreements were reported already. */
function distinctArtifacts(crawl: Crawl, listUrl: URL, releases: (AgentRelease | undefined)[]): ListedArtifact[] {
  const byHref = new Map<string, ListedArtifact>();
  for (const release of releases) {
    if (!release) continue;
    for (const { artifact } of artifactSlots(release)) {
      const url = resolveLink(crawl.record, listUrl, artifact.download_url, `the download_url of ${artifact.filename}`);
      if (url && !byHref.has(url.href)) byHref.set(url.href, { url, artifact, version: release.version });
    }
  }
  return [...byHref.values()];
}
