// Desktop-agent downloads (seed 001): an API-owned URL answers 302, and its Location serves the
// bytes the AgentArtifact describes.
import type { Crawl } from './http.ts';
import type { AgentArtifact, AgentRelease } from './schemas.ts';

/** `<list URL>/<suffix>`: the other agent endpoints hang below the list's path. */
export function agentUrl(listUrl: URL, suffix: string): URL {
  return new URL(`${listUrl.pathname.replace(/\/$/, '')}/${suffix}`, listUrl);
}

export interface ArtifactSlot {
  /** The download query that selects the artifact, as the seed spells it. */
  query: string;
  artifact: AgentArtifact;
}

/** The artifacts a release has, in the DTO's fixed slots. */
export function artifactSlots(release: AgentRelease): ArtifactSlot[] {
  const { windows, macos } = release.artifacts;
  const slots: [string, AgentArtifact | null][] = [
    ['platform=windows', windows],
    ['platform=macos&arch=arm64', macos.arm64],
    ['platform=macos&arch=x86_64', macos.x86_64],
  ];
  return slots.flatMap(([query, artifact]) => (artifact ? [{ query, artifact }] : []));
}

/**
 * Follows `redirectUrl` and checks the bytes it lands on against `artifact`. Problems with the
 * bytes are reported at `redirectUrl`, the URL clients use, naming where it led.
 * `source` says where the expectation came from.
 */
export async function checkRedirectedArtifact(crawl: Crawl, redirectUrl: URL, artifact: AgentArtifact, source: string): Promise<void> {
  const target = await crawl.http.redirect(redirectUrl);
  if (!target) return;
  const download = await crawl.http.download(target);
  if (!download) return;
  const problem = (message: string) => crawl.record.problem(redirectUrl, `${message} (${source}; followed to ${target})`);
  if (artifact.size_bytes !== null && download.size !== artifact.size_bytes) problem(`expected ${artifact.size_bytes} bytes, got ${download.size}`);
  if (artifact.sha256 !== null && download.sha256 !== artifact.sha256.toLowerCase()) problem(`expected sha256 ${artifact.sha256}, got ${download.sha256}`);
  const contentType = mediaType(download.contentType);
  if (contentType !== mediaType(artifact.content_type)) problem(`expected Content-Type ${artifact.content_type}, got ${download.contentType ?? 'none'}`);
}

function mediaType(header: string | null): string | null {
  return header === null ? null : header.split(';')[0]!.trim().toLowerCase();
}
