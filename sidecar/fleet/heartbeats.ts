// Heartbeats are answered at once and written in batches: the latest beat of each agent is kept
// in memory and flushed every `flushMs` in one transaction, so a heartbeat costs no database
// round trip of its own (one UPDATE per heartbeat was most of its cost). An agent's status lags
// by at most one flush, against an offline threshold of three heartbeat intervals; operator reads
// on this process flush first, so they see every heartbeat it answered.
import type { Logger } from 'pino';
import type { FleetAgents, Heartbeat } from './agents.ts';

export interface HeartbeatWriter {
  record(id: string, beat: Heartbeat, at: Date): void;
  /** Writes what has been recorded; resolves once it is in the database. */
  flush(): Promise<void>;
  /** Stops the timer after a last flush. */
  close(): Promise<void>;
}

export function heartbeatWriter({ agents, flushMs, logger }: { agents: Pick<FleetAgents, 'recordHeartbeats'>; flushMs: number; logger: Logger }): HeartbeatWriter {
  let pending = new Map<string, { id: string; beat: Heartbeat; at: Date }>();
  let writing: Promise<void> = Promise.resolve();

  function flush(): Promise<void> {
    // One write at a time, in order: a later batch never lands before an earlier one.
    writing = writing.then(async () => {
      if (pending.size === 0) return;
      const batch = [...pending.values()];
      pending = new Map();
      try {
        await agents.recordHeartbeats(batch);
      } catch (error) {
        // Kept for the next flush unless a newer beat of the same agent has arrived meanwhile.
        for (const entry of batch) if (!pending.has(entry.id)) pending.set(entry.id, entry);
        logger.error({ err: error, agents: batch.length }, 'fleet: writing heartbeats failed; the next flush retries');
      }
    });
    return writing;
  }

  const timer = setInterval(() => void flush(), flushMs);
  timer.unref();
  return {
    record(id, beat, at) {
      pending.set(id, { id, beat, at });
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}
