// The WebSocket task stream (`/api/v1/agents/{id}/task-stream`): the upgrade is authenticated like
// any agent call (client certificate and JWT); the server pushes `task_assigned` the moment a task
// is ready for the agent (each push is a delivery with its own lease) and `task_cancelled`; the
// agent sends `task_progress` (which extends its lease) and `task_log`. Pings find dead peers.
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { AgentAuthenticator } from './auth.ts';
import { problems, streamMessage } from './bodies.ts';
import { FleetError } from './errors.ts';
import type { Fanout, FleetEvent } from './fanout.ts';
import { CLAIM_BATCH, type TaskQueue } from './tasks.ts';
import { deliveredTask } from './views.ts';

const STREAM_PATH = /^\/api\/v1\/agents\/([^/]+)\/task-stream$/;
/** Close code for a stream whose agent was deleted (4000–4999 are the application's). */
export const CLOSE_REVOKED = 4403;
const MAX_MESSAGE_BYTES = 64 * 1024;

export interface TaskStreamOptions {
  authenticate: AgentAuthenticator;
  queue: TaskQueue;
  fanout: Fanout;
  /** How often each connection is pinged; one that has not answered the last ping is closed. */
  pingIntervalMs: number;
  logger: Logger;
  now: () => Date;
  /** Told of each task pushed (metrics). */
  onAssigned?: () => void;
}

export interface TaskStream {
  /** True when the upgrade request is for a task stream; the stream then answers it. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  connections(): number;
  /** Closes every stream (going away) and stops pinging. */
  close(): void;
}

interface Peer extends WebSocket {
  agentId: string;
  alive: boolean;
}

export function taskStream({ authenticate, queue, fanout, pingIntervalMs, logger, now, onAssigned }: TaskStreamOptions): TaskStream {
  const server = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const byAgent = new Map<string, Set<Peer>>();
  /** Deliveries run one after another per agent, so one process never claims for an agent twice at once. */
  const deliveries = new Map<string, Promise<void>>();

  function deliver(agentId: string): void {
    const previous = deliveries.get(agentId) ?? Promise.resolve();
    const next = previous
      .then(async () => {
        for (;;) {
          if (openPeers(agentId).length === 0) return;
          const tasks = await queue.claim(agentId, now());
          for (const task of tasks) {
            // The newest connection: an agent that reconnected has left the older one behind.
            const peer = openPeers(agentId).at(-1);
            // No connection left: the lease runs out and the task is delivered again.
            if (!peer) return;
            peer.send(JSON.stringify({ type: 'task_assigned', task: deliveredTask(task) }));
            onAssigned?.();
          }
          if (tasks.length < CLAIM_BATCH) return;
        }
      })
      .catch((error: unknown) => logger.error({ err: error, agentId }, 'task stream: delivering tasks failed; the next heartbeat or event retries'))
      .finally(() => {
        if (deliveries.get(agentId) === next) deliveries.delete(agentId);
      });
    deliveries.set(agentId, next);
  }

  function openPeers(agentId: string): Peer[] {
    return [...(byAgent.get(agentId) ?? [])].filter((peer) => peer.readyState === WebSocket.OPEN);
  }

  fanout.subscribe(function onFleetEvent(event: FleetEvent) {
    if (!byAgent.has(event.agentId)) return;
    if (event.type === 'task_ready') deliver(event.agentId);
    else if (event.type === 'task_cancelled') for (const peer of openPeers(event.agentId)) peer.send(JSON.stringify({ type: 'task_cancelled', taskId: event.taskId }));
    else for (const peer of byAgent.get(event.agentId) ?? []) peer.close(CLOSE_REVOKED, 'agent deleted: credentials revoked');
  });

  async function onMessage(peer: Peer, data: RawData): Promise<void> {
    let message;
    try {
      const parsed = streamMessage.safeParse(JSON.parse(data.toString()));
      if (!parsed.success) return reply(peer, { type: 'error', message: problems(parsed.error, 'message') });
      message = parsed.data;
    } catch {
      return reply(peer, { type: 'error', message: 'Invalid message: expected JSON' });
    }
    const at = now();
    const held =
      message.type === 'task_progress'
        ? await queue.progress(peer.agentId, message.taskId, message, at)
        : await queue.log(peer.agentId, message.taskId, { level: message.level, message: message.message, timestamp: message.timestamp, leaseId: message.leaseId }, at);
    if (!held) reply(peer, { type: 'error', taskId: message.taskId, message: `Task ${message.taskId} is not leased to this agent${message.leaseId ? ` under lease ${message.leaseId}` : ''}; ${message.type} ignored` });
  }

  const pinger = setInterval(() => {
    for (const peers of byAgent.values()) {
      for (const peer of peers) {
        if (!peer.alive) {
          peer.terminate();
          continue;
        }
        peer.alive = false;
        peer.ping();
      }
    }
  }, pingIntervalMs);
  pinger.unref();

  return {
    handleUpgrade(req, socket, head) {
      const match = STREAM_PATH.exec(new URL(req.url ?? '/', 'https://fleet').pathname);
      if (!match) return false;
      const agentId = decodeURIComponent(match[1]!);
      authenticate(req, agentId).then(
        () =>
          server.handleUpgrade(req, socket, head, (ws) => {
            const peer = Object.assign(ws, { agentId, alive: true }) as Peer;
            const peers = byAgent.get(agentId) ?? new Set<Peer>();
            byAgent.set(agentId, peers.add(peer));
            peer.on('pong', () => (peer.alive = true));
            peer.on('message', (data) => onMessage(peer, data).catch((error: unknown) => logger.error({ err: error, agentId }, 'task stream: handling a message failed')));
            peer.on('error', (error) => logger.warn({ err: error, agentId }, 'task stream: connection error'));
            peer.on('close', () => {
              peers.delete(peer);
              if (peers.size === 0) byAgent.delete(agentId);
            });
            deliver(agentId);
          }),
        (error: unknown) => refuseUpgrade(socket, error, logger),
      );
      return true;
    },
    connections: () => [...byAgent.values()].reduce((sum, peers) => sum + peers.size, 0),
    close() {
      clearInterval(pinger);
      for (const peers of byAgent.values()) for (const peer of peers) peer.close(1001, 'server shutting down');
      server.close();
    },
  };
}

function reply(peer: Peer, message: Record<string, unknown>): void {
  if (peer.readyState === WebSocket.OPEN) peer.send(JSON.stringify(message));
}

/** The refusal as an HTTP response in the fleet's error shape, then the connection closed. */
function refuseUpgrade(socket: Duplex, error: unknown, logger: Logger): void {
  const refusal = error instanceof FleetError ? error : undefined;
  if (!refusal) logger.error({ err: error }, 'task stream: authenticating an upgrade failed');
  const status = refusal?.status ?? 500;
  const body = JSON.stringify(refusal ? { error: refusal.code, message: refusal.message } : { error: 'internal_error', message: 'Internal server error' });
  const headers = { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close', ...(refusal?.headers ?? {}) };
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${Object.entries(headers).map(([name, value]) => `${name}: ${value}`).join('\r\n')}\r\n\r\n${body}`);
}
