// POST /telemetry: anonymous reports of agent runs, kept only as daily aggregates per agent,
// version, os and outcome. A report about an agent the registry does not list is accepted and
// dropped, so random names cannot grow the table.
import type { Middleware } from 'koa';
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import type { Tables } from '../store/schema.ts';
import { validationFailed } from './errors.ts';
import type { RegistryQueries } from './queries.ts';

/** A report is a few hundred bytes; anything near this is not one. */
export const TELEMETRY_MAX_BYTES = 8 * 1024;

const report = z.strictObject({
  agent_name: z.string().trim().min(1).max(200),
  agent_version: z.string().trim().min(1).max(64).optional(),
  success: z.boolean(),
  duration_ms: z.number().int().nonnegative().max(7 * 24 * 3600 * 1000).optional(),
  os: z.string().trim().min(1).max(32).optional(),
  cli_version: z.string().trim().min(1).max(64).optional(),
});

export interface TelemetryOptions {
  db: Kysely<Tables>;
  queries: RegistryQueries;
  /** Told whether each valid report was stored. */
  onReport?: (stored: boolean) => void;
  now?: () => Date;
}

export function telemetry(options: TelemetryOptions): Middleware {
  const now = options.now ?? (() => new Date());
  return async function telemetryHandler(ctx) {
    const parsed = report.safeParse(ctx.request.body);
    if (!parsed.success) {
      throw validationFailed(parsed.error.issues.map((issue) => (issue.code === 'unrecognized_keys' ? `telemetry: unknown fields ${issue.keys.map((key) => `'${key}'`).join(', ')}` : `telemetry: field '${issue.path.join('.')}' ${issue.message.replace(/^Invalid input: /, '')}`)));
    }
    const { agent_name, agent_version, success, duration_ms, os } = parsed.data;
    const agentId = await resolveAgent(options, agent_name);
    if (agentId !== undefined) {
      await options.db
        .insertInto('registry_telemetry_daily')
        .values({ day: now().toISOString().slice(0, 10), agent_id: agentId, version: agent_version ?? '', os: os?.toLowerCase() ?? '', success: success ? 1 : 0, count: 1, duration_ms_total: duration_ms ?? 0 })
        .onConflict((conflict) =>
          conflict.columns(['day', 'agent_id', 'version', 'os', 'success']).doUpdateSet({
            count: sql`registry_telemetry_daily.count + 1`,
            duration_ms_total: sql`registry_telemetry_daily.duration_ms_total + ${duration_ms ?? 0}`,
          }),
        )
        .execute();
    }
    options.onReport?.(agentId !== undefined);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ok: true };
  };
}

/** `@scope/name`, or a bare name that exactly one listed agent has. */
async function resolveAgent({ db }: TelemetryOptions, agentName: string): Promise<number | undefined> {
  const full = /^@([^/]+)\/(.+)$/.exec(agentName);
  const rows = await db
    .selectFrom('registry_agents')
    .select('id')
    .where('latest_version', 'is not', null)
    .$if(full !== null, (builder) => builder.where('scope', '=', full![1]!).where('name', '=', full![2]!))
    .$if(full === null, (builder) => builder.where('name', '=', agentName))
    .limit(2)
    .execute();
  return rows.length === 1 ? rows[0]!.id : undefined;
}
