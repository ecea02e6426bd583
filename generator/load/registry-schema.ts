// Schemas of registry packages: the `agent.yaml` a publisher sends (its problems worded as the
// contract's `agent.yaml: ...` details), and the version file the manifest store keeps for it.
import semver from 'semver';
import { z } from 'zod';
import { AGENT_CATEGORIES, REGISTRY_NAME, type AgentManifest } from '../model/registry.ts';
import { blobKey, semverString } from './schema.ts';

const CATEGORY_SLUGS = AGENT_CATEGORIES.map((category) => category.slug) as [string, ...string[]];
const REQUIRED = ['name', 'version', 'description', 'category'] as const;

const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

export const agentManifest = z.looseObject({
  name: z.string().regex(REGISTRY_NAME, 'must be lower-case letters, digits and `-`, `_` or `.` between them, at most 64 characters'),
  version: z.string().refine((version) => semver.valid(version) === version),
  description: text(500),
  category: z.string().refine((slug) => CATEGORY_SLUGS.includes(slug)),
  tags: z.array(text(50)).max(20, 'must list at most 20 tags').default([]),
  license: text(100).nullable().default(null),
  repository: z.url({ protocol: /^https?$/ }).nullable().default(null),
  permissions: z
    .strictObject({ filesystem: z.boolean().default(false), network: z.boolean().default(false), execute_commands: z.boolean().default(false) })
    .default({ filesystem: false, network: false, execute_commands: false }),
  mcp_servers: z.array(text(100)).max(50, 'must list at most 50 servers').default([]),
  examples: z.array(z.strictObject({ prompt: text(1000) })).max(20, 'must list at most 20 examples').default([]),
});

/**
 * The manifest, or every problem with it in the contract's words (`agent.yaml: missing required
 * field 'description'`). Unknown fields are kept for the agent's runtime and ignored here.
 */
export function parseAgentManifest(data: unknown): { manifest: AgentManifest; problems: [] } | { manifest: undefined; problems: string[] } {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return { manifest: undefined, problems: [`agent.yaml: expected a JSON object, got ${describe(data)}`] };
  const fields = data as Record<string, unknown>;
  const problems: string[] = [];
  for (const name of REQUIRED) if (fields[name] === undefined || fields[name] === null) problems.push(`agent.yaml: missing required field '${name}'`);
  const parsed = agentManifest.safeParse(data);
  if (parsed.success && problems.length === 0) {
    const { name, version, description, category, tags, license, repository, permissions, mcp_servers, examples } = parsed.data;
    return { manifest: { name, version, description, category: category as AgentManifest['category'], tags, license, repository, permissions, mcp_servers, examples }, problems: [] };
  }
  for (const issue of parsed.success ? [] : parsed.error.issues) {
    const field = String(issue.path[0]);
    const value = fields[field];
    if (value === undefined || value === null) {
      if ((REQUIRED as readonly string[]).includes(field)) continue;
    }
    problems.push(`agent.yaml: ${messageFor(issue, field, value)}`);
  }
  return { manifest: undefined, problems };
}

function messageFor(issue: z.core.$ZodIssue, field: string, value: unknown): string {
  const at = issue.path.map((segment) => (typeof segment === 'number' ? `[${segment}]` : `.${String(segment)}`)).join('').slice(1);
  if (issue.code === 'invalid_type') return `field '${at}' must be ${article(issue.expected)}, got ${describe(valueAt(value, issue.path.slice(1)))}`;
  if (field === 'version' && issue.path.length === 1) return `version '${String(value)}' is not valid semver`;
  if (field === 'category' && issue.path.length === 1) return `unknown category '${String(value)}'; expected one of ${CATEGORY_SLUGS.join(', ')}`;
  if (issue.code === 'unrecognized_keys') return `field '${at}' has unknown keys ${issue.keys.map((key) => `'${key}'`).join(', ')}`;
  if (field === 'repository' && issue.path.length === 1) return `field 'repository' must be an http(s) URL, got '${String(value)}'`;
  return `field '${at}' ${issue.message}`;
}

function valueAt(value: unknown, path: PropertyKey[]): unknown {
  let current = value;
  for (const segment of path) current = current !== null && typeof current === 'object' ? (current as Record<PropertyKey, unknown>)[segment] : undefined;
  return current;
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

const registryName = z.string().regex(REGISTRY_NAME, 'must be lower-case letters, digits and `-`, `_` or `.` between them');

/** `releases/registry/@<scope>/<name>/<version>.json`: one published version, written by the sidecar. */
export const registryVersionFile = z.strictObject({
  scope: registryName,
  name: registryName,
  version: semverString,
  published_at: z.iso.datetime(),
  status: z.enum(['active', 'unpublished']).default('active'),
  unpublished_at: z.iso.datetime().optional(),
  tarball: z.strictObject({
    blob: blobKey,
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'not a 64-character lower-case hex string'),
    size: z.number().int().positive(),
  }),
  author: z.strictObject({
    username: registryName,
    display_name: z.string(),
    avatar_url: z.string(),
    github_id: z.number().int().nonnegative(),
  }),
  agent: z.looseObject({}),
  readme: z.string(),
});

export type RegistryVersionFileInput = z.input<typeof registryVersionFile>;
export type RegistryVersionFileData = z.output<typeof registryVersionFile>;
