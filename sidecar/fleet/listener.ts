// The fleet's own HTTPS listener: a server certificate from the fleet CA for the configured names,
// client certificates requested (and checked per route, see auth.ts), and WebSocket upgrades
// handed to the task stream. The server certificate is short-lived and replaced daily in place.
import { createServer, type Server } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type Koa from 'koa';
import { bind, type RunningServer } from '../server.ts';
import type { FleetCa } from './ca.ts';
import type { TaskStream } from './stream.ts';

const SERVER_CERT_TTL_SECONDS = 7 * 86_400;
const SERVER_CERT_RENEW_MS = 86_400_000;

export interface FleetListenerOptions {
  app: Koa;
  stream: TaskStream;
  ca: FleetCa;
  /** Host names and IP addresses the server certificate names (FLEET_SERVER_NAMES). */
  serverNames: string[];
  port: number;
  host: string;
}

export async function listenFleet({ app, stream, ca, serverNames, port, host }: FleetListenerOptions): Promise<RunningServer> {
  const context = async (): Promise<SecureContextOptions> => {
    const { cert, key } = await ca.issueServerCertificate(serverNames, { ttlSeconds: SERVER_CERT_TTL_SECONDS });
    return { cert, key, ca: [ca.certificate] };
  };
  const server: Server = createServer({ ...(await context()), requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, app.callback());
  // Agents heartbeat every 30 s by default: their connection stays open between heartbeats.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('upgrade', (req, socket, head) => {
    if (!stream.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  const running = await bind(server, {
    port,
    host,
    protocol: 'https',
    // Open streams would keep the server from closing.
    beforeClose: () => {
      clearInterval(renew);
      stream.close();
    },
  });
  const renew = setInterval(() => {
    context().then(
      (options) => server.setSecureContext(options),
      (error: unknown) => app.emit('error', error),
    );
  }, SERVER_CERT_RENEW_MS);
  renew.unref();
  return running;
}
