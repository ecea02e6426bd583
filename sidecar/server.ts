// Listens, and drains on SIGINT/SIGTERM: stop accepting, let in-flight requests finish, exit.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';

/** A connection silent this long is closed: a stalled client, not a slow one. */
export const IDLE_TIMEOUT_MS = 120_000;

export interface ServerOptions {
  app: Koa;
  port: number;
  host: string;
}

export interface RunningServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function listen({ app, port, host }: ServerOptions): Promise<RunningServer> {
  const server = createServer(app.callback());
  server.keepAliveTimeout = 5_000;
  // An upload of hundreds of MiB over a slow link may take longer than Node's 300 s for a whole
  // request; what is cut instead is a connection that stops moving for 2 minutes.
  server.requestTimeout = 0;
  server.timeout = IDLE_TIMEOUT_MS;
  return bind(server, { port, host, protocol: 'http' });
}

/**
 * Binds `server` and returns it with its URL and a `close` that stops accepting, drops idle
 * connections and resolves once in-flight requests are done; `beforeClose` runs first.
 */
export async function bind(server: Server, { port, host, protocol, beforeClose }: { port: number; host: string; protocol: 'http' | 'https'; beforeClose?: () => void }): Promise<RunningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `${protocol}://${shownHost}:${address.port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        beforeClose?.();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

/**
 * Closes the server on the first SIGINT or SIGTERM, then runs `cleanup` (close the database and
 * the like); a second signal exits at once.
 */
export function drainOnSignals(running: RunningServer, log: (line: string) => void, cleanup: () => Promise<void> = async () => {}): void {
  let draining = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (draining) process.exit(1);
    draining = true;
    log(`${signal}: finishing in-flight requests`);
    running
      .close()
      .then(cleanup)
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
