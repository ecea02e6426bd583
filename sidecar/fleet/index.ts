// The deployment-agent fleet (seed 004), on its own HTTPS listener: registration with one-time
// tokens, agents' certificates from the fleet CA, heartbeats, leased tasks and the WebSocket task
// stream. This file assembles the parts; each lives in the file named for it.
import path from 'node:path';
import Koa, { type Middleware } from 'koa';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { TokenVerifier } from '../auth/jwt.ts';
import type { RunningServer } from '../server.ts';
import type { StateDb } from '../store/db.ts';
import { agentTokens } from './agent-token.ts';
import { fleetAgents } from './agents.ts';
import { agentAuthenticator } from './auth.ts';
import type { FleetCa } from './ca.ts';
import { fleetErrors } from './errors.ts';
import { heartbeatWriter } from './heartbeats.ts';
import type { Fanout } from './fanout.ts';
import { listenFleet } from './listener.ts';
import { fleetMetrics } from './metrics.ts';
import { fleetRoutes } from './routes.ts';
import { taskStream, type TaskStream } from './stream.ts';
import { taskQueue } from './tasks.ts';

/** How often recorded heartbeats are written (see heartbeats.ts). */
const HEARTBEAT_FLUSH_MS = 1_000;

export interface FleetSettings {
  certTtlSeconds: number;
  renewBeforeSeconds: number;
  heartbeatIntervalSeconds: number;
  taskPollIntervalSeconds: number;
  maxAttempts: number;
  agentLogLevel: string;
  serverNames: string[];
}

export interface FleetDeps {
  state: StateDb;
  ca: FleetCa;
  /** Where the fleet keeps its agent-token signing key (`agent-token-key.json`). */
  dir: string;
  fanout: Fanout;
  operatorTokens: TokenVerifier;
  settings: FleetSettings;
  logger: Logger;
  /** Registry the fleet's metrics join (the sidecar's /metrics). */
  metricsRegistry: Registry;
  /** Run before the routes: request log, request metrics. */
  operations?: Middleware[];
  /** How often ended leases are looked for. Default 1 s. */
  sweepIntervalMs?: number;
  now?: () => Date;
}

export interface Fleet {
  app: Koa;
  stream: TaskStream;
  /** Ends leases that ran out or whose holder went offline; the sweeper runs it every second. */
  sweep(): Promise<void>;
  listen(port: number, host: string): Promise<RunningServer>;
  /** Stops the sweeper; the listener closes its streams itself. */
  close(): Promise<void>;
}

export async function createFleet(deps: FleetDeps): Promise<Fleet> {
  const { state, ca, fanout, settings, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const tokens = await agentTokens({ keyFile: path.join(deps.dir, 'agent-token-key.json') });
  const agents = fleetAgents(state.db, { heartbeatIntervalSeconds: settings.heartbeatIntervalSeconds });
  const queue = taskQueue(state, { maxAttempts: settings.maxAttempts });
  const authenticateAgent = agentAuthenticator({ tokens, agents });
  const heartbeats = heartbeatWriter({ agents, flushMs: HEARTBEAT_FLUSH_MS, logger });
  // Agents that may have queued tasks: every replica hears of new and requeued tasks through the
  // fan-out, and the sweeper adds what the queue holds each second, so an event lost with a
  // fan-out connection delays a heartbeat's delivery by that second at most.
  const waiting = new Set<string>(await queue.agentsWithQueuedTasks());
  fanout.subscribe((event) => {
    if (event.type === 'task_ready') waiting.add(event.agentId);
    if (event.type === 'agent_deleted') authenticateAgent.forget(event.agentId);
  });
  let stream: TaskStream | undefined;
  const metrics = fleetMetrics(deps.metricsRegistry, { agents, queue, streams: () => stream?.connections() ?? 0, flushHeartbeats: () => heartbeats.flush(), now });
  stream = taskStream({
    authenticate: authenticateAgent,
    queue,
    fanout,
    pingIntervalMs: Math.min(30, settings.heartbeatIntervalSeconds) * 1000,
    logger,
    now,
    onAssigned: () => metrics.deliveries.inc({ via: 'stream' }),
  });
  const router = fleetRoutes({
    registration: {
      db: state.db,
      agents,
      ca,
      tokens,
      certTtlSeconds: settings.certTtlSeconds,
      config: { heartbeatInterval: settings.heartbeatIntervalSeconds, taskPollInterval: settings.taskPollIntervalSeconds, logLevel: settings.agentLogLevel },
    },
    agents,
    queue,
    ca,
    fanout,
    authenticateAgent,
    heartbeats,
    waiting,
    operatorTokens: deps.operatorTokens,
    certTtlSeconds: settings.certTtlSeconds,
    renewBeforeSeconds: settings.renewBeforeSeconds,
    metrics,
    now,
  });
  const app = new Koa();
  app.silent = true;
  app.on('error', (error: unknown) => logger.error({ err: error }, 'fleet request failed'));
  for (const middleware of deps.operations ?? []) app.use(middleware);
  app.use(fleetErrors());
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: false }));

  let sweeping: Promise<void> | undefined;
  async function sweep(): Promise<void> {
    const at = now();
    const { requeued, failed } = await queue.expireLeases(at, agents.offlineBefore(at));
    for (const agentId of await queue.agentsWithQueuedTasks()) waiting.add(agentId);
    if (requeued.length > 0) metrics.leasesExpired.inc({ outcome: 'requeued' }, requeued.length);
    if (failed.length > 0) metrics.leasesExpired.inc({ outcome: 'failed' }, failed.length);
    for (const agentId of new Set(requeued.map((task) => task.agent_id))) await fanout.publish({ type: 'task_ready', agentId });
    if (failed.length > 0) logger.warn({ tasks: failed.map((task) => task.id) }, 'tasks failed: every attempt ended without a completion');
  }
  const sweeper = setInterval(() => {
    sweeping ??= sweep()
      .catch((error: unknown) => logger.error({ err: error }, 'fleet: ending expired leases failed; the next pass retries'))
      .finally(() => (sweeping = undefined));
  }, deps.sweepIntervalMs ?? 1_000);
  sweeper.unref();

  return {
    app,
    stream,
    sweep,
    listen: (port, host) => listenFleet({ app, stream: stream!, ca, serverNames: settings.serverNames, port, host }),
    async close() {
      clearInterval(sweeper);
      await sweeping;
      await heartbeats.close();
      stream!.close();
      await fanout.close();
    },
  };
}
