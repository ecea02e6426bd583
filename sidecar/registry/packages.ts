// Writes to the registry's tables: a version number reserved before anything is committed (so
// concurrent publishes of one version get exactly one winner), activated once its tarball is
// served, unpublished but never freed. Each agent row carries its latest active version's fields
// and search document, recomputed whenever its set of active versions changes.
import type { Kysely, Transaction } from 'kysely';
import semver from 'semver';
import type { AgentManifest } from '../../generator/model/registry.ts';
import type { Tables } from '../store/schema.ts';
import type { FullText } from './search.ts';

/** A reservation older than this belongs to a publish that died; another publish of the version may take it over. */
export const PENDING_TTL_MS = 5 * 60 * 1000;

export interface VersionToPublish {
  scope: string;
  name: string;
  version: string;
  ownerId: number;
  tarball: { blob: string; sha256: string; size: number };
  manifest: AgentManifest;
  readme: string;
}

export interface Reservation {
  agentId: number;
  version: string;
  reservedAt: string;
}

export function registryPackages(db: Kysely<Tables>, fullText: FullText) {
  async function agentId(trx: Transaction<Tables>, scope: string, name: string, ownerId: number, now: string): Promise<number> {
    await trx.insertInto('registry_agents').values({ scope, name, owner_id: ownerId, created_at: now, updated_at: now }).onConflict((conflict) => conflict.columns(['scope', 'name']).doNothing()).execute();
    const row = await trx.selectFrom('registry_agents').select('id').where('scope', '=', scope).where('name', '=', name).executeTakeFirstOrThrow();
    return row.id;
  }

  /**
   * Recomputes the agent's listed fields and search document from its active versions. `now` is
   * when the change happened; an import passes none, and the latest version's publish time stands.
   */
  async function refreshAgent(trx: Transaction<Tables>, id: number, now?: string): Promise<void> {
    const active = await trx.selectFrom('registry_versions').select(['version', 'agent_json', 'readme', 'published_at']).where('agent_id', '=', id).where('state', '=', 'active').execute();
    const latest = active.sort((a, b) => semver.rcompare(a.version, b.version))[0];
    if (!latest) {
      await trx.updateTable('registry_agents').set({ latest_version: null, ...(now ? { updated_at: now } : {}) }).where('id', '=', id).execute();
      await fullText.index(trx, id, undefined);
      return;
    }
    const manifest = JSON.parse(latest.agent_json) as AgentManifest;
    const current = await trx.selectFrom('registry_agents').select('latest_version').where('id', '=', id).executeTakeFirstOrThrow();
    await trx
      .updateTable('registry_agents')
      .set({
        description: manifest.description,
        category: manifest.category,
        tags: JSON.stringify(manifest.tags),
        license: manifest.license,
        repository: manifest.repository,
        readme: latest.readme,
        permissions: JSON.stringify(manifest.permissions),
        mcp_servers: JSON.stringify(manifest.mcp_servers),
        examples: JSON.stringify(manifest.examples),
        latest_version: latest.version,
        ...(current.latest_version === latest.version ? {} : { updated_at: now ?? latest.published_at! }),
      })
      .where('id', '=', id)
      .execute();
    const agent = await trx.selectFrom('registry_agents').select('scope').where('id', '=', id).executeTakeFirstOrThrow();
    await fullText.index(trx, id, { name: `${agent.scope} ${manifest.name}`, description: manifest.description, tags: manifest.tags, readme: latest.readme });
  }

  return {
    /** Takes the version number for this publish, or undefined when it is taken (published, unpublished, or being published). */
    async reserve(input: VersionToPublish, now: Date): Promise<Reservation | undefined> {
      const reservedAt = now.toISOString();
      return db.transaction().execute(async (trx) => {
        const id = await agentId(trx, input.scope, input.name, input.ownerId, reservedAt);
        const fields = {
          state: 'pending' as const,
          reserved_at: reservedAt,
          published_at: null,
          unpublished_at: null,
          tarball_blob: input.tarball.blob,
          sha256: input.tarball.sha256,
          size: input.tarball.size,
          agent_json: JSON.stringify(input.manifest),
          readme: input.readme,
        };
        const inserted = await trx.insertInto('registry_versions').values({ agent_id: id, version: input.version, download_count: 0, ...fields }).onConflict((conflict) => conflict.columns(['agent_id', 'version']).doNothing()).executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows) === 1) return { agentId: id, version: input.version, reservedAt };
        const stale = new Date(now.getTime() - PENDING_TTL_MS).toISOString();
        const taken = await trx
          .updateTable('registry_versions')
          .set(fields)
          .where('agent_id', '=', id)
          .where('version', '=', input.version)
          .where('state', '=', 'pending')
          .where('reserved_at', '<', stale)
          .executeTakeFirst();
        return Number(taken.numUpdatedRows) === 1 ? { agentId: id, version: input.version, reservedAt } : undefined;
      });
    },

    /** Frees a reservation whose publish failed before anything was listed. */
    async cancel(reservation: Reservation): Promise<void> {
      await db
        .deleteFrom('registry_versions')
        .where('agent_id', '=', reservation.agentId)
        .where('version', '=', reservation.version)
        .where('state', '=', 'pending')
        .where('reserved_at', '=', reservation.reservedAt)
        .execute();
    },

    /** Lists the reserved version: it is served by now. False when the reservation was lost (taken over after expiring). */
    async activate(reservation: Reservation, now: Date): Promise<boolean> {
      const at = now.toISOString();
      return db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable('registry_versions')
          .set({ state: 'active', published_at: at })
          .where('agent_id', '=', reservation.agentId)
          .where('version', '=', reservation.version)
          .where('state', '=', 'pending')
          .where('reserved_at', '=', reservation.reservedAt)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return false;
        await refreshAgent(trx, reservation.agentId, at);
        return true;
      });
    },

    /** Takes an active version out of every list; false when it was not active. */
    async unpublish(agentId: number, version: string, now: Date): Promise<boolean> {
      const at = now.toISOString();
      return db.transaction().execute(async (trx) => {
        const result = await trx
          .updateTable('registry_versions')
          .set({ state: 'unpublished', unpublished_at: at })
          .where('agent_id', '=', agentId)
          .where('version', '=', version)
          .where('state', '=', 'active')
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return false;
        await refreshAgent(trx, agentId, at);
        return true;
      });
    },

    /** Puts versions the manifest store holds but the database lacks into the database, as the store says they are. */
    async importVersions(
      versions: { input: VersionToPublish; state: 'active' | 'unpublished'; publishedAt: string; unpublishedAt: string | undefined }[],
    ): Promise<number> {
      let imported = 0;
      await db.transaction().execute(async (trx) => {
        const touched = new Set<number>();
        for (const { input, state, publishedAt, unpublishedAt } of versions) {
          const id = await agentId(trx, input.scope, input.name, input.ownerId, publishedAt);
          const inserted = await trx
            .insertInto('registry_versions')
            .values({
              agent_id: id,
              version: input.version,
              state,
              reserved_at: publishedAt,
              published_at: publishedAt,
              unpublished_at: unpublishedAt ?? null,
              tarball_blob: input.tarball.blob,
              sha256: input.tarball.sha256,
              size: input.tarball.size,
              download_count: 0,
              agent_json: JSON.stringify(input.manifest),
              readme: input.readme,
            })
            .onConflict((conflict) => conflict.columns(['agent_id', 'version']).doNothing())
            .executeTakeFirst();
          if (Number(inserted.numInsertedOrUpdatedRows) === 1) {
            imported++;
            touched.add(id);
          }
        }
        for (const id of touched) await refreshAgent(trx, id);
      });
      return imported;
    },
  };
}

export type RegistryPackages = ReturnType<typeof registryPackages>;
