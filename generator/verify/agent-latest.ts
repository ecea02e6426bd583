// Channel resolution (seeds 001/002): `latest?channel=C` against the release list, and the
// `latest/download` redirects against the release that channel resolves to.
import semver from 'semver';
import { agentUrl, artifactSlots, checkRedirectedArtifact } from './agent-downloads.ts';
import { differences } from './differences.ts';
import type { Crawl } from './http.ts';
import { agentRelease, type AgentRelease } from './schemas.ts';

export const CHANNELS = ['stable', 'latest'] as const;
export type Channel = (typeof CHANNELS)[number];

/**
 * The list shows each release under its most conservative channel, so a release listed as
 * `stable` is surely in stable and one listed as `latest` surely in latest (and not in stable).
 * That is all the list says about channels, and all these checks assume.
 */
export async function checkLatestRelease(crawl: Crawl, listUrl: URL, channel: Channel, listed: AgentRelease[]): Promise<AgentRelease | undefined> {
  const url = agentUrl(listUrl, `latest?channel=${channel}`);
  const newestListed = listed.find((entry) => entry.channel === channel);
  const release = await crawl.http.jsonOrNotFound(url, agentRelease);
  if (release === null) {
    if (newestListed) crawl.record.problem(url, `expected ${newestListed.version}, listed in channel ${channel}; got 404`);
    return undefined;
  }
  if (!release) return undefined;
  const problem = (message: string) => crawl.record.problem(url, message);
  if (release.channel !== channel) problem(`expected channel ${channel}, got ${release.channel}`);
  const entry = listed.find(({ version }) => version === release.version);
  if (!entry) {
    problem(`expected a release the list shows, got ${release.version}, which it does not`);
  } else {
    const differing = differences({ ...entry, channel }, release);
    if (differing.length > 0) problem(`expected the release the list shows for ${release.version}, got one that differs in ${differing.join(', ')}`);
  }
  if (channel === 'stable' && newestListed && release.version !== newestListed.version) {
    problem(`expected ${newestListed.version}, the newest release listed as stable, got ${release.version}`);
  }
  if (channel === 'latest' && newestListed && semver.valid(release.version) && semver.valid(newestListed.version) && semver.lt(release.version, newestListed.version)) {
    problem(`expected ${newestListed.version} or newer (it is listed in channel latest), got ${release.version}`);
  }
  return release;
}

/** `latest/download?channel=C&…` for each artifact of the channel's release lands on that artifact's bytes. */
export async function checkLatestDownloads(crawl: Crawl, listUrl: URL, channel: Channel, release: AgentRelease | undefined): Promise<void> {
  if (!release) return;
  await Promise.all(
    artifactSlots(release).map(({ query, artifact }) => {
      const url = agentUrl(listUrl, `latest/download?channel=${channel}&${query}`);
      return checkRedirectedArtifact(crawl, url, artifact, `${artifact.filename} of ${release.version}, the ${channel} release`);
    }),
  );
}
