// Registry package versions (seed 003) in the manifest store,
// `registry/@<scope>/<name>/<version>.json`, written by the sidecar. Checked like release files:
// every problem at once, each with its file and JSON path.
import { existsSync, type Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { sortBySemver } from '../model/catalog.ts';
import { REGISTRY_NAME, type AgentManifest, type RegistryPackage, type RegistryVersion } from '../model/registry.ts';
import { readJsonData, validate } from './json-file.ts';
import { LoadError, reportInto, type Problem, type Report } from './problems.ts';
import { parseAgentManifest, registryVersionFile, type RegistryVersionFileData } from './registry-schema.ts';

/** The store's directory of registry packages. */
export const REGISTRY_DIRECTORY = 'registry';

/** Every package of the registry, sorted by scope then name; none when the store has no `registry/`. Throws LoadError listing every problem. */
export async function loadRegistry(releasesDir: string): Promise<RegistryPackage[]> {
  const problems: Problem[] = [];
  const packages = await readRegistry(releasesDir, reportInto(problems));
  if (problems.length > 0) throw new LoadError(problems);
  return packages;
}

/** One version, or undefined when the store lacks it. Throws LoadError when its file is invalid. */
export async function loadRegistryVersion(releasesDir: string, scope: string, name: string, version: string): Promise<RegistryVersion | undefined> {
  // Only valid names: a name from a URL never reaches the file system unchecked.
  if (!REGISTRY_NAME.test(scope) || !REGISTRY_NAME.test(name) || semver.valid(version) !== version) return undefined;
  const file = registryFilePath(releasesDir, scope, name, version);
  if (!existsSync(file)) return undefined;
  const problems: Problem[] = [];
  const loaded = readVersionFile(file, scope, name, reportInto(problems));
  if (problems.length > 0) throw new LoadError(problems);
  return loaded;
}

export function registryFilePath(releasesDir: string, scope: string, name: string, version: string): string {
  return path.join(releasesDir, REGISTRY_DIRECTORY, `@${scope}`, name, `${version}.json`);
}

/** The registry's packages, each problem reported on the way; loadCatalog merges them with the rest. */
export async function readRegistry(releasesDir: string, report: Report): Promise<RegistryPackage[]> {
  const root = path.join(releasesDir, REGISTRY_DIRECTORY);
  const packages: RegistryPackage[] = [];
  for (const scopeEntry of await listDirectory(root, report, { optional: true })) {
    const scopeDir = path.join(root, scopeEntry.name);
    const scope = scopeEntry.name.slice(1);
    if (!scopeEntry.isDirectory() || !scopeEntry.name.startsWith('@') || !REGISTRY_NAME.test(scope)) {
      report(scopeDir, '', 'unexpected entry: registry/ holds one `@<scope>` directory per scope, a scope being lower-case letters, digits and `-`, `_` or `.` between them');
      continue;
    }
    for (const nameEntry of await listDirectory(scopeDir, report)) {
      const packageDir = path.join(scopeDir, nameEntry.name);
      if (!nameEntry.isDirectory() || !REGISTRY_NAME.test(nameEntry.name)) {
        report(packageDir, '', 'unexpected entry: a scope directory holds one directory per package, named with lower-case letters, digits and `-`, `_` or `.` between them');
        continue;
      }
      const versions: RegistryVersion[] = [];
      for (const fileEntry of await listDirectory(packageDir, report)) {
        const file = path.join(packageDir, fileEntry.name);
        if (!fileEntry.isFile() || !fileEntry.name.endsWith('.json')) {
          report(file, '', 'unexpected entry: a package directory holds <version>.json files');
          continue;
        }
        const version = readVersionFile(file, scope, nameEntry.name, report);
        if (version) versions.push(version);
      }
      if (versions.length > 0) packages.push({ scope, name: nameEntry.name, versions: sortBySemver(versions) });
    }
  }
  return packages.sort((a, b) => compare(a.scope, b.scope) || compare(a.name, b.name));
}

/** Entries without dot names (the sidecar's temporary files), sorted; none for an absent optional directory. */
async function listDirectory(dir: string, report: Report, options: { optional?: boolean } = {}): Promise<Dirent[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((entry) => !entry.name.startsWith('.')).sort((a, b) => compare(a.name, b.name));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!(code === 'ENOENT' && options.optional)) report(dir, '', `cannot read the directory (${code ?? (error as Error).message})`);
    return [];
  }
}

function readVersionFile(file: string, scope: string, name: string, report: Report): RegistryVersion | undefined {
  const read = readJsonData(file, report);
  if (read === undefined) return undefined;
  const data = validate(file, registryVersionFile, read.data, report);
  const manifest = checkAgent(file, read.data, report);
  if (data === undefined) return undefined;
  checkVersionFile(file, data, scope, name, report);
  return manifest === undefined ? undefined : toRegistryVersion(data, manifest);
}

/** Rules that span fields of one version file and its place in the store. */
function checkVersionFile(file: string, data: RegistryVersionFileData, scope: string, name: string, report: Report): void {
  const fileName = path.basename(file);
  if (data.scope !== scope) report(file, 'scope', `must match the directory \`@${scope}\`, got \`${data.scope}\``);
  if (data.name !== name) report(file, 'name', `must match the directory \`${name}\`, got \`${data.name}\``);
  if (`${data.version}.json` !== fileName) report(file, 'version', `must match the file name \`${fileName}\`, got \`${data.version}\``);
  if (data.author.username !== data.scope) report(file, 'author.username', `must be the scope's owner \`${data.scope}\`: only they publish under @${data.scope}, got \`${data.author.username}\``);
  if (data.status === 'unpublished' && data.unpublished_at === undefined) report(file, 'unpublished_at', 'missing: an unpublished version records when it was unpublished');
  if (data.status === 'active' && data.unpublished_at !== undefined) report(file, 'unpublished_at', `only an unpublished version has one, got \`${data.unpublished_at}\` with status \`active\``);
  // Read from the raw field: a mismatch is worth reporting even when another agent field is wrong.
  const agent = data.agent as Record<string, unknown>;
  if (typeof agent.name === 'string' && agent.name !== data.name) report(file, 'agent.name', `must equal the package name \`${data.name}\`, got \`${agent.name}\``);
  if (typeof agent.version === 'string' && agent.version !== data.version) report(file, 'agent.version', `must equal the version \`${data.version}\`, got \`${agent.version}\``);
}

/** The `agent` field checked as a publish checks `agent.yaml`; its absence or type is the file schema's to report. */
function checkAgent(file: string, data: unknown, report: Report): AgentManifest | undefined {
  const agent = data !== null && typeof data === 'object' ? (data as Record<string, unknown>).agent : undefined;
  if (agent === null || typeof agent !== 'object' || Array.isArray(agent)) return undefined;
  const parsed = parseAgentManifest(agent);
  for (const problem of parsed.problems) report(file, 'agent', problem.replace(/^agent\.yaml: /, ''));
  return parsed.manifest;
}

function toRegistryVersion(data: RegistryVersionFileData, agent: AgentManifest): RegistryVersion {
  const { tarball, author } = data;
  return {
    scope: data.scope,
    name: data.name,
    version: data.version,
    publishedAt: data.published_at,
    status: data.status,
    unpublishedAt: data.unpublished_at,
    tarball: { blob: tarball.blob, sha256: tarball.sha256, size: tarball.size },
    author: { username: author.username, display_name: author.display_name, avatar_url: author.avatar_url, github_id: author.github_id },
    agent,
    readme: data.readme,
  };
}

/** By UTF-16 code units, as the rest of the site sorts: the same order on every machine. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
