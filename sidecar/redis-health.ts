// Whether Redis is reachable, across every connection the sidecar keeps to it (one per limiter,
// the fleet's). Redis fails open: while it is down, limits count in each process and fleet events
// wait for the next heartbeat, so the replica stays ready, degraded. The outage is logged once when
// it begins and once when it ends, with how many requests ran without Redis; ioredis reconnects
// on its own meanwhile, and its error per attempt is kept for /readyz, not logged.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface RedisHealthOptions {
  logger: Logger;
  /** What runs differently while Redis is down, for the log line that says it went. */
  whileDown: string;
}

export interface RedisHealth {
  /** Follows a connected client: down from the moment it starts reconnecting until it is ready again. */
  watch(client: Redis): void;
  /** For /readyz: rejects, naming the cause, while any watched connection is down. */
  check(): Promise<void>;
  /** Counts a request served without Redis. */
  degraded(): void;
}

export function redisHealth({ logger, whileDown }: RedisHealthOptions): RedisHealth {
  const down = new Set<Redis>();
  let cause = '';
  let since = 0;
  let requests = 0;

  const fail = (client: Redis) => {
    if (down.has(client)) return;
    down.add(client);
    if (down.size > 1) return;
    since = Date.now();
    requests = 0;
    logger.warn({ dependency: 'redis', error: cause || 'connection closed' }, `Redis unavailable; ${whileDown}`);
  };
  const recover = (client: Redis) => {
    if (!down.delete(client) || down.size > 0) return;
    logger.info({ dependency: 'redis', downSeconds: Math.round((Date.now() - since) / 100) / 10, degradedRequests: requests }, `Redis is back after ${requests} requests ran without it`);
    cause = '';
  };

  return {
    watch(client) {
      // `reconnecting`, not `close`: a connection closed on purpose, at shutdown, is not an outage.
      client.on('reconnecting', () => fail(client));
      client.on('error', (error: Error) => void (cause = error.message));
      client.on('ready', () => recover(client));
    },
    async check() {
      if (down.size > 0) throw new Error(`Redis unavailable since ${new Date(since).toISOString()}: ${cause || 'connection closed'}`);
    },
    degraded() {
      if (down.size > 0) requests++;
    },
  };
}
