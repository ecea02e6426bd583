// The fleet's agents in the state database: registration, heartbeats, certificates, operators'
// changes and deletion. An agent's status is derived from its last heartbeat when read, so no
// timer has to mark agents offline.
import { sql, type Kysely, type Selectable } from 'kysely';
import type { FleetAgentsTable, Tables } from '../store/schema.ts';
import type { Capability } from './bodies.ts';

export type FleetAgent = Selectable<FleetAgentsTable>;
export type AgentStatus = 'online' | 'degraded' | 'offline';
export const AGENT_STATUSES: AgentStatus[] = ['online', 'degraded', 'offline'];

/** Parameters per heartbeat are 6: 500 stay under either database's limit on bound parameters. */
const HEARTBEATS_PER_STATEMENT = 500;

/** Heartbeats missed before an agent counts as offline (seed 004). */
export const MISSED_HEARTBEATS_OFFLINE = 3;

export interface NewAgent {
  id: string;
  name: string;
  version: string;
  capabilities: Capability[];
  labels: Record<string, string>;
  certSerial: string;
  certExpiresAt: Date;
}

export interface Heartbeat {
  status: string;
  resourceUsage: Record<string, number | undefined>;
  capabilities?: Capability[] | undefined;
  runningTasks: number;
}

export interface FleetAgents {
  /** Throws a unique violation when a live agent already has the name. */
  insert(agent: NewAgent, now: Date, db?: Kysely<Tables>): Promise<void>;
  /** The agent, deleted or not; undefined for an id never registered. */
  get(id: string): Promise<FleetAgent | undefined>;
  list(filter: { status?: AgentStatus | undefined; capability?: Capability | undefined }, now: Date): Promise<FleetAgent[]>;
  /** The updated agent, or undefined when there is no live agent by that id. */
  update(id: string, change: { labels?: Record<string, string> | undefined; capabilities?: Capability[] | undefined }, now: Date): Promise<FleetAgent | undefined>;
  /** True when a live agent was deleted. */
  delete(id: string, now: Date): Promise<boolean>;
  /** Records live agents' heartbeats in one transaction; a deleted agent's is dropped. */
  recordHeartbeats(beats: { id: string; beat: Heartbeat; at: Date }[]): Promise<void>;
  recordCertificate(id: string, serial: string, expiresAt: Date): Promise<void>;
  /** Agents by status, for the metrics. */
  countByStatus(now: Date): Promise<Record<AgentStatus, number>>;
  status(agent: FleetAgent, now: Date): AgentStatus;
  /** Heartbeats older than this mean offline. */
  offlineBefore(now: Date): string;
}

export function fleetAgents(db: Kysely<Tables>, { heartbeatIntervalSeconds }: { heartbeatIntervalSeconds: number }): FleetAgents {
  const offlineBefore = (now: Date) => new Date(now.getTime() - MISSED_HEARTBEATS_OFFLINE * heartbeatIntervalSeconds * 1000).toISOString();
  const status = (agent: Pick<FleetAgent, 'last_heartbeat_at' | 'reported_status'>, now: Date): AgentStatus =>
    agent.last_heartbeat_at < offlineBefore(now) ? 'offline' : agent.reported_status === 'healthy' ? 'online' : 'degraded';
  const live = () => db.selectFrom('fleet_agents').selectAll().where('deleted_at', 'is', null);

  return {
    async insert(agent, now, on = db) {
      const at = now.toISOString();
      await on
        .insertInto('fleet_agents')
        .values({
          id: agent.id,
          name: agent.name,
          version: agent.version,
          capabilities: JSON.stringify(agent.capabilities),
          labels: JSON.stringify(agent.labels),
          // Registered counts as a first heartbeat: the agent is online until it misses three.
          reported_status: 'healthy',
          last_heartbeat_at: at,
          cert_serial: agent.certSerial,
          cert_expires_at: agent.certExpiresAt.toISOString(),
          registered_at: at,
          updated_at: at,
          deleted_at: null,
        })
        .execute();
    },
    get: (id) => db.selectFrom('fleet_agents').selectAll().where('id', '=', id).executeTakeFirst(),
    list({ status: wanted, capability }, now) {
      let query = live().orderBy('name');
      if (capability) query = query.where('capabilities', 'like', `%"${capability}"%`);
      const cutoff = offlineBefore(now);
      if (wanted === 'offline') query = query.where('last_heartbeat_at', '<', cutoff);
      if (wanted === 'online') query = query.where('last_heartbeat_at', '>=', cutoff).where('reported_status', '=', 'healthy');
      if (wanted === 'degraded') query = query.where('last_heartbeat_at', '>=', cutoff).where('reported_status', '!=', 'healthy');
      return query.execute();
    },
    async update(id, { labels, capabilities }, now) {
      const result = await db
        .updateTable('fleet_agents')
        .set({
          ...(labels ? { labels: JSON.stringify(labels) } : {}),
          ...(capabilities ? { capabilities: JSON.stringify(capabilities) } : {}),
          updated_at: now.toISOString(),
        })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0 ? this.get(id) : undefined;
    },
    async delete(id, now) {
      const at = now.toISOString();
      const result = await db.updateTable('fleet_agents').set({ deleted_at: at, updated_at: at }).where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async recordHeartbeats(beats) {
      // One statement per chunk (UPDATE … FROM a VALUES list, the same on SQLite and PostgreSQL): a
      // statement per agent cost more than the rest of a heartbeat.
      for (let start = 0; start < beats.length; start += HEARTBEATS_PER_STATEMENT) {
        const rows = beats.slice(start, start + HEARTBEATS_PER_STATEMENT).map(
          ({ id, beat, at }) => sql`(${id}, ${beat.status}, ${JSON.stringify(beat.resourceUsage)}, ${String(beat.runningTasks)}, ${at.toISOString()}, ${beat.capabilities ? JSON.stringify(beat.capabilities) : null})`,
        );
        await sql`
          with beat (id, status, usage, running, at, capabilities) as (values ${sql.join(rows)})
          update fleet_agents set
            reported_status = beat.status, resource_usage = beat.usage, running_tasks = cast(beat.running as integer),
            last_heartbeat_at = beat.at, capabilities = coalesce(beat.capabilities, fleet_agents.capabilities)
          from beat
          where fleet_agents.id = beat.id and fleet_agents.deleted_at is null`.execute(db);
      }
    },
    async recordCertificate(id, serial, expiresAt) {
      await db.updateTable('fleet_agents').set({ cert_serial: serial, cert_expires_at: expiresAt.toISOString() }).where('id', '=', id).execute();
    },
    async countByStatus(now) {
      const { rows } = await sql<{ healthy: unknown; offline: unknown; count: number }>`
        select (reported_status = 'healthy') as healthy, (last_heartbeat_at < ${offlineBefore(now)}) as offline, count(*) as count
        from fleet_agents where deleted_at is null group by 1, 2`.execute(db);
      const counts: Record<AgentStatus, number> = { online: 0, degraded: 0, offline: 0 };
      for (const row of rows) counts[row.offline ? 'offline' : row.healthy ? 'online' : 'degraded'] += Number(row.count);
      return counts;
    },
    status,
    offlineBefore,
  };
}
