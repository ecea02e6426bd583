// GET /agents/:scope/:name/download/:version: the tarball's address and checksum, and one more
// download counted for the version, the agent and the day. A client address counts once per agent,
// version and hour, so a retry loop does not inflate the numbers.
import type { Middleware } from 'koa';
import { sql, type Kysely } from 'kysely';
import { tarballPath } from '../../generator/model/registry.ts';
import type { Tables } from '../store/schema.ts';
import { RegistryError } from './errors.ts';
import { agentRef, publicBase, versionParam } from './params.ts';
import type { RegistryQueries } from './queries.ts';
import { sha256Hex } from './tokens.ts';

const HOUR_MS = 60 * 60 * 1000;

export interface DownloadOptions {
  db: Kysely<Tables>;
  queries: RegistryQueries;
  publicUrl: string | undefined;
  now?: () => Date;
}

export function downloadDescriptor(options: DownloadOptions): Middleware {
  const now = options.now ?? (() => new Date());
  let prunedHour = 0;
  return async function downloadDescriptorHandler(ctx) {
    const { scope, name } = agentRef(ctx);
    const version = versionParam(ctx);
    const agent = await options.queries.agent(scope, name);
    if (!agent || agent.latest_version === null) throw new RegistryError(404, 'Agent not found');
    const row = await options.db.selectFrom('registry_versions').select(['sha256', 'size']).where('agent_id', '=', agent.id).where('version', '=', version).where('state', '=', 'active').executeTakeFirst();
    if (!row) throw new RegistryError(404, 'Version not found');
    const at = now();
    const hour = Math.floor(at.getTime() / HOUR_MS);
    await countDownload(options.db, agent.id, version, sha256Hex(`${ctx.ip}\n${agent.id}\n${version}\n${hour}`), hour, at.toISOString().slice(0, 10));
    if (hour > prunedHour) {
      prunedHour = hour;
      // What an earlier hour saw can no longer deduplicate anything.
      await options.db.deleteFrom('registry_download_seen').where('hour', '<', hour).execute();
    }
    // Every request must reach the sidecar to be counted.
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { tarball_url: `${publicBase(ctx, options.publicUrl)}${tarballPath(scope, name, version)}`, sha256: row.sha256, size: Number(row.size) };
  };
}

async function countDownload(db: Kysely<Tables>, agentId: number, version: string, key: string, hour: number, day: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const seen = await trx.insertInto('registry_download_seen').values({ key, hour }).onConflict((conflict) => conflict.column('key').doNothing()).executeTakeFirst();
    if (Number(seen.numInsertedOrUpdatedRows) !== 1) return;
    await trx.updateTable('registry_versions').set({ download_count: sql`download_count + 1` }).where('agent_id', '=', agentId).where('version', '=', version).execute();
    await trx.updateTable('registry_agents').set({ download_count: sql`download_count + 1` }).where('id', '=', agentId).execute();
    await trx
      .insertInto('registry_downloads_daily')
      .values({ agent_id: agentId, day, count: 1 })
      .onConflict((conflict) => conflict.columns(['agent_id', 'day']).doUpdateSet({ count: sql`registry_downloads_daily.count + 1` }))
      .execute();
  });
}
