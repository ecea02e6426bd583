// Lock backend: a PostgreSQL session-level advisory lock, on a connection of its own for each
// hold. The server ends the session, and with it the lock, as soon as the holder's connection
// closes: a killed process's kernel closes it at once; a vanished host is noticed by TCP
// keep-alive. Waiting happens in the server (`pg_advisory_lock` blocks), in arrival order.
import { createHash } from 'node:crypto';
import type { Locks } from './locks.ts';

export interface PostgresLocksOptions {
  /** The database every sharer uses (DATABASE_URL). */
  url: string;
  /** Told when a held lock's connection fails: from then on the section runs without the lock. */
  onLost?: (name: string, error: Error) => void;
}

const KEEP_ALIVE_MS = 10_000;

export function postgresLocks({ url, onLost }: PostgresLocksOptions): Locks {
  const shown = redact(url);
  return {
    where: shown,
    async withLock(name, section) {
      const { default: pg } = await import('pg');
      const client = new pg.Client({ connectionString: url, keepAlive: true, keepAliveInitialDelayMillis: KEEP_ALIVE_MS, application_name: `mirror lock ${name}`.slice(0, 63) });
      let lost: Error | undefined;
      client.on('error', (error: Error) => {
        lost = error;
        onLost?.(name, error);
      });
      try {
        await client.connect();
        await client.query('select pg_advisory_lock($1::bigint)', [keyOf(name)]);
      } catch (error) {
        await client.end().catch(() => undefined);
        throw new Error(`Cannot take the lock \`${name}\` in PostgreSQL at ${shown}: ${(error as Error).message}`, { cause: error });
      }
      try {
        return await section();
      } finally {
        // Ending the session releases the lock; unlocking first only spares the server the wait.
        if (!lost) await client.query('select pg_advisory_unlock($1::bigint)', [keyOf(name)]).catch(() => undefined);
        await client.end().catch(() => undefined);
      }
    },
  };
}

/** A signed 64-bit key from the name, namespaced so other users of advisory locks do not collide. */
function keyOf(name: string): string {
  return createHash('sha256').update(`release-mirror:${name}`).digest().readBigInt64BE(0).toString();
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
