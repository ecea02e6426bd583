// Fleet events through Redis pub/sub: one connection publishes, one subscribes (a subscribed
// Redis connection can do nothing else). Redis hands a message to every subscriber, this
// process's included, so publish does not also call the local listeners.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { parseEvent, type Fanout, type FleetEvent } from './fanout.ts';

export interface RedisFanoutOptions {
  /** A connected client; the fanout duplicates it for its subscription and closes both. */
  client: Redis;
  /** Channel shared by the processes of one mirror. Default `mirror:fleet`. */
  channel?: string;
  logger: Logger;
  /** Follows the subscription's connection too (the sidecar's Redis health, which logs an outage once); without it, each connection error is logged. */
  watch?: (connection: Redis) => void;
}

export async function redisFanout({ client, channel = 'mirror:fleet', logger, watch }: RedisFanoutOptions): Promise<Fanout> {
  // The client is connected and fails fast offline; the subscription waits for its own connection instead.
  const subscriber = client.duplicate({ lazyConnect: false, enableOfflineQueue: true });
  const listeners: ((event: FleetEvent) => void)[] = [];
  subscriber.on('message', (from: string, text: string) => {
    if (from !== channel) return;
    const event = parseEvent(text);
    if (!event) return logger.warn({ channel }, 'ignored a message on the fleet channel that is not a fleet event');
    for (const listener of listeners) listener(event);
  });
  if (watch) watch(subscriber);
  else subscriber.on('error', (error: Error) => logger.warn({ err: error }, 'fleet events: Redis subscription lost; ioredis reconnects and resubscribes'));
  await subscriber.subscribe(channel);
  return {
    async publish(event) {
      await client.publish(channel, JSON.stringify(event));
    },
    subscribe: (listener) => void listeners.push(listener),
    async close() {
      subscriber.disconnect();
      client.disconnect();
    },
  };
}
