// The registry's side of the static site (seed 003): each agent's web page (README, install
// commands, permissions, versions), a browse page by category, and every active version's tarball
// served from the blob store. The JSON API is the sidecar's; an unpublished version is served nowhere.
import { AGENT_CATEGORIES, agentPagePath, fullName, latestVersion, tarballPath, type RegistryPackage, type RegistryVersion } from '../model/registry.ts';
import type { LayoutOutput } from './binary.ts';
import type { Crumb, PageRenderer } from './html.ts';
import { renderReadme } from './markdown.ts';
import type { BlobTarget, PathTarget } from './route-table.ts';
import type { SiteFile } from './site-file.ts';

export const REGISTRY_ROOT = 'agents';
const TARBALL_TYPE = 'application/gzip';

const BROWSE_KEY = `${REGISTRY_ROOT}/index.html`;
const CRUMBS: Crumb[] = [{ label: 'agents', href: `/${REGISTRY_ROOT}/` }];
const PERMISSIONS = [
  { field: 'filesystem', label: 'File system' },
  { field: 'network', label: 'Network' },
  { field: 'execute_commands', label: 'Run commands' },
] as const;

/** A package with something to show: its newest active version, and every active one, newest first. */
interface Listed {
  pkg: RegistryPackage;
  latest: RegistryVersion;
  active: RegistryVersion[];
}

export function renderRegistry(packages: RegistryPackage[], pages: PageRenderer, baseUrl: string): LayoutOutput {
  const files: SiteFile[] = [];
  const paths: Record<string, PathTarget> = {};
  const listed = packages.flatMap((pkg): Listed[] => {
    const latest = latestVersion(pkg);
    return latest ? [{ pkg, latest, active: pkg.versions.filter((version) => version.status === 'active').reverse() }] : [];
  });
  for (const { pkg, latest, active } of listed) {
    for (const version of active) paths[tarballPath(pkg.scope, pkg.name, version.version)] = tarballTarget(version);
    const key = pageKey(pkg);
    files.push(pages.page(key, 'agent', agentPage(latest, active, baseUrl)));
    paths[agentPagePath(pkg.scope, pkg.name)] = { type: 'file', key };
  }
  if (listed.length > 0) {
    files.push(pages.page(BROWSE_KEY, 'agents', browsePage(listed)));
    paths[`/${REGISTRY_ROOT}/`] = { type: 'file', key: BROWSE_KEY };
  }
  return { files, paths };
}

/** The site file of an agent's page, served at `agentPagePath` (no trailing slash). */
export function pageKey(pkg: Pick<RegistryPackage, 'scope' | 'name'>): string {
  return `${agentPagePath(pkg.scope, pkg.name).slice(1)}/index.html`;
}

function tarballTarget(version: RegistryVersion): BlobTarget {
  const { blob, sha256, size } = version.tarball;
  return { type: 'blob', blob, filename: tarballFilename(version), contentType: TARBALL_TYPE, size, sha256 };
}

function tarballFilename(version: RegistryVersion): string {
  return `${version.name}-${version.version}.tar.gz`;
}

function agentPage(latest: RegistryVersion, active: RegistryVersion[], baseUrl: string) {
  const { agent, author } = latest;
  const name = fullName(latest.scope, latest.name);
  const category = AGENT_CATEGORIES.find((entry) => entry.slug === agent.category)!;
  return {
    title: name,
    breadcrumbs: [...CRUMBS, { label: name, href: agentPagePath(latest.scope, latest.name) }],
    agent: {
      fullName: name,
      version: latest.version,
      publishedAt: latest.publishedAt,
      description: agent.description,
      category: { name: category.name, url: `/${REGISTRY_ROOT}/#${category.slug}` },
      tags: agent.tags,
      license: agent.license,
      repository: agent.repository,
      mcpServers: agent.mcp_servers,
      examples: agent.examples.map((example) => example.prompt),
      permissions: PERMISSIONS.map(({ field, label }) => ({ label, granted: agent.permissions[field] })),
    },
    author: {
      username: author.username,
      displayName: author.display_name || author.username,
      // Only a web address: anything else in an `src` is not an avatar.
      avatarUrl: /^https?:\/\//i.test(author.avatar_url) ? author.avatar_url : null,
      profileUrl: `https://github.com/${author.username}`,
    },
    install: installCommands(latest, baseUrl),
    readme: renderReadme(latest.readme),
    versions: active.map((version) => ({
      version: version.version,
      publishedAt: version.publishedAt,
      size: version.tarball.size,
      sha256: version.tarball.sha256,
      url: tarballPath(version.scope, version.name, version.version),
    })),
  };
}

/** `agentx install`, and the same download by hand with its checksum checked. */
function installCommands(latest: RegistryVersion, baseUrl: string) {
  const file = tarballFilename(latest);
  // Without a configured address the site cannot name itself: the reader sets MIRROR.
  const origin = baseUrl || '$MIRROR';
  return {
    agentx: `agentx install ${fullName(latest.scope, latest.name)}`,
    download: `curl -fsSL -o ${file} "${origin}${tarballPath(latest.scope, latest.name, latest.version)}"\necho "${latest.tarball.sha256}  ${file}" | sha256sum -c`,
    needsOrigin: baseUrl === '',
  };
}

function browsePage(listed: Listed[]) {
  const categories = AGENT_CATEGORIES.map((category) => ({
    slug: category.slug,
    name: category.name,
    agents: listed
      .filter(({ latest }) => latest.agent.category === category.slug)
      .map(({ pkg, latest }) => ({ fullName: fullName(pkg.scope, pkg.name), url: agentPagePath(pkg.scope, pkg.name), version: latest.version, description: latest.agent.description })),
  }));
  const summary = `${listed.length} agent${listed.length === 1 ? '' : 's'}.`;
  return { title: 'Agents', breadcrumbs: CRUMBS, summary, categories: categories.filter((category) => category.agents.length > 0) };
}
