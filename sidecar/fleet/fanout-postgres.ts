// Fleet events through PostgreSQL LISTEN/NOTIFY, for replicas that share a database but no Redis.
// NOTIFY goes through the state database's pool; LISTEN needs a connection of its own, opened
// again when it drops. PostgreSQL delivers a notification to its own session too, so publish does
// not also call the local listeners.
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { StateDb } from '../store/db.ts';
import { parseEvent, type Fanout, type FleetEvent } from './fanout.ts';

export interface PostgresFanoutOptions {
  state: StateDb;
  /** The same DATABASE_URL as the state database. */
  url: string;
  logger: Logger;
  /** Wait before opening a dropped LISTEN connection again. Default 1 s. */
  reconnectMs?: number;
}

export async function postgresFanout({ state, url, logger, reconnectMs = 1_000 }: PostgresFanoutOptions): Promise<Fanout> {
  const { default: pg } = await import('pg');
  // A schema of its own (tests) is a mirror of its own: its events stay apart.
  const channel = `mirror_fleet${state.schema ? `_${state.schema}` : ''}`;
  const listeners: ((event: FleetEvent) => void)[] = [];
  let client: InstanceType<typeof pg.Client> | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  async function connect(): Promise<void> {
    const next = new pg.Client({ connectionString: url });
    next.on('notification', (message) => {
      if (message.channel !== channel || message.payload === undefined) return;
      const event = parseEvent(message.payload);
      if (event) for (const listener of listeners) listener(event);
    });
    next.on('error', (error) => {
      logger.warn({ err: error }, 'fleet events: the PostgreSQL LISTEN connection failed; opening another');
      next.end().catch(() => undefined);
      if (client === next) reconnect();
    });
    await next.connect();
    await next.query(`listen ${channel}`);
    client = next;
  }

  function reconnect(): void {
    client = undefined;
    if (closed) return;
    retry = setTimeout(() => connect().catch(reconnect), reconnectMs);
  }

  await connect();
  return {
    async publish(event) {
      await sql`select pg_notify(${channel}, ${JSON.stringify(event)})`.execute(state.db);
    },
    subscribe: (listener) => void listeners.push(listener),
    async close() {
      closed = true;
      clearTimeout(retry);
      await client?.end();
    },
  };
}
