// Registry packages (seed 003): AI-agent packages published by users under their own `@scope`.
// Built by load/ from `releases/registry/@<scope>/<name>/<version>.json`, read by render/ and the
// sidecar. No I/O here.

/** The categories an agent may declare, in the order they are listed. */
export const AGENT_CATEGORIES = [
  { slug: 'productivity', name: 'Productivity' },
  { slug: 'devtools', name: 'Developer Tools' },
  { slug: 'communication', name: 'Communication' },
  { slug: 'data', name: 'Data & Analytics' },
  { slug: 'research', name: 'Research' },
  { slug: 'security', name: 'Security' },
  { slug: 'finance', name: 'Finance' },
  { slug: 'other', name: 'Other' },
] as const;

export type AgentCategory = (typeof AGENT_CATEGORIES)[number]['slug'];

/** A scope without its `@` (a GitHub login, lower-cased) or a package name. */
export const REGISTRY_NAME = /^[a-z0-9](?:[a-z0-9]|[._-](?=[a-z0-9])){0,63}$/;

export interface AgentPermissions {
  filesystem: boolean;
  network: boolean;
  execute_commands: boolean;
}

/** The `agent.yaml` a version was published with, as the contract's detail fields name it. */
export interface AgentManifest {
  name: string;
  version: string;
  description: string;
  category: AgentCategory;
  tags: string[];
  license: string | null;
  repository: string | null;
  permissions: AgentPermissions;
  mcp_servers: string[];
  examples: { prompt: string }[];
}

export interface RegistryAuthor {
  username: string;
  display_name: string;
  avatar_url: string;
  github_id: number;
}

export interface RegistryVersion {
  /** Without the `@`. */
  scope: string;
  name: string;
  version: string;
  /** ISO 8601 UTC. */
  publishedAt: string;
  /** An unpublished version keeps its number forever but is listed and served nowhere. */
  status: 'active' | 'unpublished';
  /** ISO 8601 UTC, for an unpublished version. */
  unpublishedAt: string | undefined;
  tarball: { blob: string; sha256: string; size: number };
  author: RegistryAuthor;
  agent: AgentManifest;
  readme: string;
}

export interface RegistryPackage {
  scope: string;
  name: string;
  /** Ascending semver precedence, unpublished ones included. */
  versions: RegistryVersion[];
}

export function fullName(scope: string, name: string): string {
  return `@${scope}/${name}`;
}

/** The public path of a version's tarball: `/agents/@scope/name/<version>.tar.gz`. */
export function tarballPath(scope: string, name: string, version: string): string {
  return `/agents/@${scope}/${name}/${version}.tar.gz`;
}

/** The public path of an agent's web page. */
export function agentPagePath(scope: string, name: string): string {
  return `/agents/@${scope}/${name}`;
}

/** Blob key of a tarball: per version and content, so a publish cut short and retried never collides with its leftovers. */
export function tarballBlobKey(scope: string, name: string, version: string, sha256: string): string {
  return `registry/${scope}/${name}/${version}/${sha256}.tar.gz`;
}

/** The newest active version, by semver precedence. */
export function latestVersion(pkg: RegistryPackage): RegistryVersion | undefined {
  for (let i = pkg.versions.length - 1; i >= 0; i--) if (pkg.versions[i]!.status === 'active') return pkg.versions[i];
  return undefined;
}
