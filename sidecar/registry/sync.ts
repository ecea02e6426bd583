// At start, the registry versions the manifest store holds but the database lacks (the sample
// store on a fresh checkout, a store copied from another mirror) are put into the database with
// their authors. What the database already knows is left as it is: it is the later word.
import { loadRegistry } from '../../generator/load/registry.ts';
import type { StateDb } from '../store/db.ts';
import { registryPackages } from './packages.ts';
import { fullTextFor } from './search.ts';

export async function importRegistryStore({ releasesDir, state, now = new Date() }: { releasesDir: string; state: StateDb; now?: Date }): Promise<number> {
  const { db } = state;
  // One query for what the database has, so a start with nothing new writes nothing.
  const known = new Set(
    (await db.selectFrom('registry_versions').innerJoin('registry_agents', 'registry_agents.id', 'registry_versions.agent_id').select(['scope', 'name', 'version']).execute()).map(
      (row) => `${row.scope}/${row.name}/${row.version}`,
    ),
  );
  const versions = (await loadRegistry(releasesDir)).flatMap((pkg) => pkg.versions).filter((version) => !known.has(`${version.scope}/${version.name}/${version.version}`));
  if (versions.length === 0) return 0;
  const at = now.toISOString();
  const authors = new Map(versions.map((version) => [version.author.github_id, version.author]));
  for (const author of authors.values()) {
    await db
      .insertInto('registry_users')
      .values({ github_id: author.github_id, username: author.username, display_name: author.display_name, avatar_url: author.avatar_url, bio: null, website: null, created_at: at, updated_at: at })
      .onConflict((conflict) => conflict.doNothing())
      .execute();
  }
  const users = new Map((await db.selectFrom('registry_users').select(['id', 'username']).where('username', 'in', [...new Set(versions.map((version) => version.scope))]).execute()).map((user) => [user.username, user.id]));
  const importable = versions.filter((version) => users.has(version.scope));
  return registryPackages(db, fullTextFor(state)).importVersions(
    importable.map((version) => ({
      input: { scope: version.scope, name: version.name, version: version.version, ownerId: users.get(version.scope)!, tarball: version.tarball, manifest: version.agent, readme: version.readme },
      state: version.status,
      publishedAt: version.publishedAt,
      unpublishedAt: version.unpublishedAt,
    })),
  );
}
