// The task queue: each task belongs to one agent and is delivered (by heartbeat, poll or stream)
// as an attempt holding a lease of the task's timeout. A lease that runs out, or whose holder goes
// offline, puts the task back in the queue until its attempts are used up; the lease id is the
// fencing token that keeps a lost attempt from completing a task another attempt now holds.
// Claims lock the task row and skip rows another claim holds (PostgreSQL), or run in SQLite's
// one-at-a-time write transactions, so no task is ever leased to two holders at once.
import { randomUUID } from 'node:crypto';
import { sql, type Selectable, type Transaction } from 'kysely';
import type { StateDb } from '../store/db.ts';
import type { FleetTasksTable, Tables } from '../store/schema.ts';
import { MAX_LOG_ENTRIES, type TaskLogEntry } from './bodies.ts';
import { FleetError } from './errors.ts';

export type FleetTask = Selectable<FleetTasksTable>;
export type TaskState = FleetTask['state'];
export const TASK_STATES: TaskState[] = ['queued', 'leased', 'completed', 'failed', 'cancelled'];

/** Deliveries one heartbeat or poll hands out at most; the rest wait for the next. */
export const CLAIM_BATCH = 10;
/** Leases the sweeper looks at per pass. */
const SWEEP_BATCH = 200;

export interface TaskInput {
  taskType: string;
  payload: Record<string, unknown>;
  credentials: Record<string, string>;
  timeout: number;
  priority: number;
}

export interface Completion {
  success: boolean;
  result?: unknown;
  logs: TaskLogEntry[];
  leaseId?: string | undefined;
}

export interface TaskQueue {
  create(agentId: string, input: TaskInput, createdBy: string, now: Date): Promise<FleetTask>;
  /** Leases the agent's queued tasks to it, highest priority first, oldest first. */
  claim(agentId: string, now: Date, limit?: number): Promise<FleetTask[]>;
  /** Records the holder's completion; the same completion again is acknowledged without a second record. */
  complete(agentId: string, taskId: string, completion: Completion, now: Date): Promise<void>;
  cancel(agentId: string, taskId: string, now: Date): Promise<FleetTask>;
  /** The holder's progress, which extends its lease by the task's timeout; false when it holds no lease on the task. */
  progress(agentId: string, taskId: string, report: { progress: number; message?: string | undefined; leaseId?: string | undefined }, now: Date): Promise<boolean>;
  /** Appends the holder's log line; false when it holds no lease on the task. */
  log(agentId: string, taskId: string, entry: TaskLogEntry & { leaseId?: string | undefined }, now: Date): Promise<boolean>;
  get(agentId: string, taskId: string): Promise<FleetTask | undefined>;
  /** The agent's unfinished tasks and its latest finished ones. */
  forAgent(agentId: string, recent?: number): Promise<{ queued: FleetTask[]; leased: FleetTask[]; finished: FleetTask[] }>;
  /**
   * Ends leases that ran out or whose holder is offline (heartbeat before `offlineBefore`) or
   * deleted: back to the queue, or `failed` once every attempt is used.
   */
  expireLeases(now: Date, offlineBefore: string): Promise<{ requeued: FleetTask[]; failed: FleetTask[] }>;
  /** Fails every unfinished task of the agent (it was deleted); their ids. */
  failUnfinished(agentId: string, reason: string, now: Date): Promise<string[]>;
  countByState(): Promise<Record<TaskState, number>>;
  /** Agents with at least one queued task. */
  agentsWithQueuedTasks(): Promise<string[]>;
}

export function taskQueue(state: StateDb, { maxAttempts }: { maxAttempts: number }): TaskQueue {
  const { db } = state;
  /** The task row, locked until the transaction ends where the database has row locks. */
  const locked = (trx: Transaction<Tables>, taskId: string) =>
    trx
      .selectFrom('fleet_tasks')
      .selectAll()
      .where('id', '=', taskId)
      .$if(state.rowLocks, (query) => query.forUpdate())
      .executeTakeFirst();

  async function claimOne(agentId: string, now: Date): Promise<FleetTask | undefined> {
    return db.transaction().execute(async (trx) => {
      const next = await trx
        .selectFrom('fleet_tasks')
        .select(['id', 'timeout_seconds'])
        .where('agent_id', '=', agentId)
        .where('state', '=', 'queued')
        .orderBy('priority', 'desc')
        .orderBy('created_at')
        .limit(1)
        .$if(state.rowLocks, (query) => query.forUpdate().skipLocked())
        .executeTakeFirst();
      if (!next) return undefined;
      return trx
        .updateTable('fleet_tasks')
        .set({
          state: 'leased',
          attempts: sql`attempts + 1`,
          lease_id: randomUUID(),
          lease_agent_id: agentId,
          lease_expires_at: leaseEnd(now, next.timeout_seconds),
          updated_at: now.toISOString(),
        })
        .where('id', '=', next.id)
        .where('state', '=', 'queued')
        .returningAll()
        .executeTakeFirst();
    });
  }

  /** The task as its holder may touch it: leased to this agent, by the given lease when one is named. */
  async function holderUpdate(agentId: string, taskId: string, leaseId: string | undefined, change: (task: FleetTask) => Partial<FleetTask>, now: Date): Promise<boolean> {
    return db.transaction().execute(async (trx) => {
      const task = await locked(trx, taskId);
      if (!task || task.state !== 'leased' || task.lease_agent_id !== agentId || (leaseId !== undefined && leaseId !== task.lease_id)) return false;
      await trx
        .updateTable('fleet_tasks')
        .set({ ...change(task), updated_at: now.toISOString() })
        .where('id', '=', taskId)
        .execute();
      return true;
    });
  }

  return {
    async create(agentId, input, createdBy, now) {
      const at = now.toISOString();
      return db
        .insertInto('fleet_tasks')
        .values({
          id: randomUUID(),
          agent_id: agentId,
          task_type: input.taskType,
          payload: JSON.stringify(input.payload),
          credentials: JSON.stringify(input.credentials),
          timeout_seconds: input.timeout,
          priority: input.priority,
          state: 'queued',
          max_attempts: maxAttempts,
          lease_id: null,
          lease_agent_id: null,
          lease_expires_at: null,
          progress: null,
          progress_message: null,
          success: null,
          result: null,
          failure: null,
          created_by: createdBy,
          created_at: at,
          updated_at: at,
          finished_at: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    },

    async claim(agentId, now, limit = CLAIM_BATCH) {
      // Most heartbeats find nothing queued: one read, no transaction.
      const waiting = await db.selectFrom('fleet_tasks').select('id').where('agent_id', '=', agentId).where('state', '=', 'queued').limit(1).executeTakeFirst();
      if (!waiting) return [];
      const claimed: FleetTask[] = [];
      while (claimed.length < limit) {
        const task = await claimOne(agentId, now);
        if (!task) break;
        claimed.push(task);
      }
      return claimed;
    },

    async complete(agentId, taskId, completion, now) {
      await db.transaction().execute(async (trx) => {
        const task = await locked(trx, taskId);
        if (!task || (task.agent_id !== agentId && task.lease_agent_id !== agentId)) throw taskNotFound(agentId, taskId, task);
        const lease = completion.leaseId ?? (task.lease_agent_id === agentId ? task.lease_id : undefined);
        if (task.state === 'completed') {
          if (lease !== undefined && lease === task.lease_id) return;
          throw new FleetError('conflict', `Task ${taskId} was already completed by another attempt`);
        }
        if (task.state === 'cancelled') throw new FleetError('conflict', `Task ${taskId} was cancelled; its result is not recorded`);
        if (task.state === 'failed') throw new FleetError('conflict', `Task ${taskId} has failed (${task.failure ?? 'no reason recorded'}); its result is not recorded`);
        if (task.lease_id === null) throw new FleetError('conflict', `Task ${taskId} has not been delivered yet`);
        if (lease !== task.lease_id) {
          throw new FleetError('conflict', `The lease ${lease ?? 'of this agent'} on task ${taskId} has ended; the task passed to attempt ${task.attempts} (lease ${task.lease_id})`);
        }
        await trx
          .updateTable('fleet_tasks')
          .set({
            state: 'completed',
            success: completion.success ? 1 : 0,
            result: completion.result === undefined ? null : JSON.stringify(completion.result),
            logs: JSON.stringify(appendLogs(task.logs, completion.logs, now)),
            credentials: null,
            lease_expires_at: null,
            updated_at: now.toISOString(),
            finished_at: now.toISOString(),
          })
          .where('id', '=', taskId)
          .execute();
      });
    },

    async cancel(agentId, taskId, now) {
      return db.transaction().execute(async (trx) => {
        const task = await locked(trx, taskId);
        if (!task || task.agent_id !== agentId) throw taskNotFound(agentId, taskId, undefined);
        if (task.state !== 'queued' && task.state !== 'leased') throw new FleetError('conflict', `Task ${taskId} is already ${task.state}`);
        return trx
          .updateTable('fleet_tasks')
          .set({ state: 'cancelled', credentials: null, lease_expires_at: null, updated_at: now.toISOString(), finished_at: now.toISOString() })
          .where('id', '=', taskId)
          .returningAll()
          .executeTakeFirstOrThrow();
      });
    },

    progress(agentId, taskId, { progress, message, leaseId }, now) {
      return holderUpdate(agentId, taskId, leaseId, (task) => ({ progress: Math.round(progress), progress_message: message ?? null, lease_expires_at: leaseEnd(now, task.timeout_seconds) }), now);
    },

    log(agentId, taskId, { leaseId, ...entry }, now) {
      return holderUpdate(agentId, taskId, leaseId, (task) => ({ logs: JSON.stringify(appendLogs(task.logs, [entry], now)) }), now);
    },

    get: (agentId, taskId) => db.selectFrom('fleet_tasks').selectAll().where('id', '=', taskId).where('agent_id', '=', agentId).executeTakeFirst(),

    async forAgent(agentId, recent = 20) {
      const unfinished = await db.selectFrom('fleet_tasks').selectAll().where('agent_id', '=', agentId).where('state', 'in', ['queued', 'leased']).orderBy('priority', 'desc').orderBy('created_at').execute();
      const finished = await db.selectFrom('fleet_tasks').selectAll().where('agent_id', '=', agentId).where('state', 'in', ['completed', 'failed', 'cancelled']).orderBy('finished_at', 'desc').limit(recent).execute();
      return { queued: unfinished.filter((task) => task.state === 'queued'), leased: unfinished.filter((task) => task.state === 'leased'), finished };
    },

    async expireLeases(now, offlineBefore) {
      const at = now.toISOString();
      const ended = await db
        .selectFrom('fleet_tasks')
        .selectAll()
        .where('state', '=', 'leased')
        .where((eb) =>
          eb.or([
            eb('lease_expires_at', '<', at),
            eb.exists(
              eb
                .selectFrom('fleet_agents')
                .select('fleet_agents.id')
                .whereRef('fleet_agents.id', '=', 'fleet_tasks.lease_agent_id')
                .where((agents) => agents.or([agents('fleet_agents.last_heartbeat_at', '<', offlineBefore), agents('fleet_agents.deleted_at', 'is not', null)])),
            ),
          ]),
        )
        .limit(SWEEP_BATCH)
        .execute();
      const requeued: FleetTask[] = [];
      const failed: FleetTask[] = [];
      for (const task of ended) {
        const exhausted = task.attempts >= task.max_attempts;
        // Only if the lease is still the one read: a completion or another sweeper may have come first.
        const updated = await db
          .updateTable('fleet_tasks')
          .set(
            exhausted
              ? { state: 'failed', failure: `No attempt finished: ${task.attempts} of ${task.max_attempts} leases ended without a completion`, credentials: null, lease_expires_at: null, updated_at: at, finished_at: at }
              : { state: 'queued', lease_expires_at: null, updated_at: at },
          )
          .where('id', '=', task.id)
          .where('state', '=', 'leased')
          .where('lease_id', '=', task.lease_id)
          .returningAll()
          .executeTakeFirst();
        if (updated) (exhausted ? failed : requeued).push(updated);
      }
      return { requeued, failed };
    },

    async failUnfinished(agentId, reason, now) {
      const at = now.toISOString();
      const rows = await db
        .updateTable('fleet_tasks')
        .set({ state: 'failed', failure: reason, credentials: null, lease_expires_at: null, updated_at: at, finished_at: at })
        .where('agent_id', '=', agentId)
        .where('state', 'in', ['queued', 'leased'])
        .returning('id')
        .execute();
      return rows.map((row) => row.id);
    },

    async agentsWithQueuedTasks() {
      const rows = await db.selectFrom('fleet_tasks').select('agent_id').distinct().where('state', '=', 'queued').execute();
      return rows.map((row) => row.agent_id);
    },

    async countByState() {
      const rows = await db.selectFrom('fleet_tasks').select(['state', (eb) => eb.fn.countAll<number>().as('count')]).groupBy('state').execute();
      const counts = Object.fromEntries(TASK_STATES.map((name) => [name, 0])) as Record<TaskState, number>;
      for (const row of rows) counts[row.state] = Number(row.count);
      return counts;
    },
  };
}

function leaseEnd(now: Date, timeoutSeconds: number): string {
  return new Date(now.getTime() + timeoutSeconds * 1000).toISOString();
}

/** The task's log with the new entries, stamped when they carry no time; the newest MAX_LOG_ENTRIES kept. */
function appendLogs(stored: string, entries: TaskLogEntry[], now: Date): TaskLogEntry[] {
  const logs = [...(JSON.parse(stored) as TaskLogEntry[]), ...entries.map((entry) => ({ ...entry, timestamp: entry.timestamp ?? now.toISOString() }))];
  return logs.slice(-MAX_LOG_ENTRIES);
}

function taskNotFound(agentId: string, taskId: string, task: FleetTask | undefined): FleetError {
  if (task) return new FleetError('forbidden', `Task ${taskId} belongs to another agent, not ${agentId}`);
  return new FleetError('task_not_found', `Agent ${agentId} has no task ${taskId}`);
}
