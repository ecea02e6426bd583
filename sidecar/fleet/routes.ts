// The seed-004 paths on @koa/router. Registration takes the one-time token; the agent's own calls
// (heartbeat, poll, completion) take its certificate and JWT; everything else is an operator's.
import Router from '@koa/router';
import type { Context } from 'koa';
import type { TokenVerifier } from '../auth/jwt.ts';
import { jsonBody } from '../middleware/json-body.ts';
import type { FleetAgents } from './agents.ts';
import { requireAgent, requireOperator, type AgentAuthenticator, type FleetAuthState } from './auth.ts';
import { CAPABILITIES, completeBody, heartbeatBody, parse, registrationTokenBody, taskBody, updateBody } from './bodies.ts';
import type { FleetCa } from './ca.ts';
import { FleetError } from './errors.ts';
import type { Fanout } from './fanout.ts';
import type { FleetMetrics } from './metrics.ts';
import { createRegistrationToken, register, type RegistrationDeps } from './registration.ts';
import { CLAIM_BATCH, type TaskQueue } from './tasks.ts';
import type { HeartbeatWriter } from './heartbeats.ts';
import { agentDetails, agentSummary, deliveredTask, isoSeconds, operatorTask } from './views.ts';

export const FLEET_PREFIX = '/api/v1';
const SMALL_BODY_BYTES = 64 * 1024;
/** A completion carries the task's result and up to 1,000 log lines. */
const COMPLETION_BODY_BYTES = 4 * 1024 * 1024;

export interface FleetRoutesDeps {
  registration: RegistrationDeps;
  agents: FleetAgents;
  queue: TaskQueue;
  ca: FleetCa;
  fanout: Fanout;
  authenticateAgent: AgentAuthenticator;
  /** Verifies operators' tokens (the sidecar's issuer); they need the fleet:admin scope. */
  operatorTokens: TokenVerifier;
  heartbeats: HeartbeatWriter;
  /** Agents that may have queued tasks (see index.ts); a heartbeat from another claims nothing. */
  waiting: Set<string>;
  certTtlSeconds: number;
  renewBeforeSeconds: number;
  metrics: FleetMetrics;
  now: () => Date;
}

export function fleetRoutes(deps: FleetRoutesDeps): Router {
  const { agents, queue, ca, fanout, metrics, now } = deps;
  const router = new Router({ prefix: FLEET_PREFIX });
  const agent = requireAgent(deps.authenticateAgent);
  const operator = requireOperator(deps.operatorTokens);
  const small = jsonBody({ limitBytes: SMALL_BODY_BYTES, refuse });

  router.post('/agents/register', small, async function registerHandler(ctx) {
    try {
      ctx.body = await register(deps.registration, ctx.get('X-Agent-Token') || undefined, ctx.request.body, now());
      ctx.status = 201;
      metrics.registrations.inc({ result: 'registered' });
    } catch (error) {
      metrics.registrations.inc({ result: 'refused' });
      throw error;
    }
  });

  router.post('/agents/registration-tokens', operator, small, async function createRegistrationTokenHandler(ctx) {
    const { ttlSeconds, labels } = parse(registrationTokenBody, ctx.request.body);
    const created = await createRegistrationToken(deps.registration.db, { ttlSeconds, labels, createdBy: (ctx.state as FleetAuthState).operator!.sub }, now());
    ctx.status = 201;
    ctx.body = { token: created.token, expiresAt: isoSeconds(created.expiresAt.toISOString()), labels: created.labels };
  });

  router.get('/agents', operator, async function listAgentsHandler(ctx) {
    const status = oneOf(ctx, 'status', ['online', 'offline', 'degraded'] as const);
    const capability = oneOf(ctx, 'capability', CAPABILITIES);
    await deps.heartbeats.flush();
    const at = now();
    ctx.body = (await agents.list({ status, capability }, at)).map((row) => agentSummary(row, agents.status(row, at)));
  });

  router.get('/agents/:id', operator, async function getAgentHandler(ctx) {
    await deps.heartbeats.flush();
    const row = await liveAgent(agents, ctx.params.id!);
    ctx.body = agentDetails(row, agents.status(row, now()), await queue.forAgent(row.id));
  });

  router.put('/agents/:id', operator, small, async function updateAgentHandler(ctx) {
    const change = parse(updateBody, ctx.request.body);
    await deps.heartbeats.flush();
    const row = await agents.update(ctx.params.id!, change, now());
    if (!row) throw agentNotFound(ctx.params.id!);
    deps.authenticateAgent.forget(row.id);
    ctx.body = agentDetails(row, agents.status(row, now()), await queue.forAgent(row.id));
  });

  router.delete('/agents/:id', operator, async function deleteAgentHandler(ctx) {
    const id = ctx.params.id!;
    const at = now();
    if (!(await agents.delete(id, at))) throw agentNotFound(id);
    deps.authenticateAgent.forget(id);
    await queue.failUnfinished(id, 'The agent was deleted', at);
    await fanout.publish({ type: 'agent_deleted', agentId: id });
    ctx.body = { deleted: true };
  });

  router.post('/agents/:id/heartbeat', agent, small, async function heartbeatHandler(ctx) {
    const beat = parse(heartbeatBody, ctx.request.body, 'heartbeat');
    const { agent: caller, certificate } = ctx.state as Required<FleetAuthState>;
    const at = now();
    deps.heartbeats.record(caller.id, beat, at);
    metrics.heartbeats.inc();
    const tasks = deps.waiting.has(caller.id) ? await queue.claim(caller.id, at) : [];
    if (tasks.length < CLAIM_BATCH) deps.waiting.delete(caller.id);
    if (tasks.length > 0) metrics.deliveries.inc({ via: 'heartbeat' }, tasks.length);
    const body: { tasks: ReturnType<typeof deliveredTask>[]; certificateRenewal?: { cert: string; expiresAt: string } } = { tasks: tasks.map(deliveredTask) };
    if (certificate.expiresAt.getTime() - at.getTime() <= deps.renewBeforeSeconds * 1000) {
      const renewed = await ca.issueAgentCertificate(caller.id, { ttlSeconds: deps.certTtlSeconds, publicKey: certificate.publicKey, now: at });
      await agents.recordCertificate(caller.id, renewed.serial, renewed.expiresAt);
      body.certificateRenewal = { cert: renewed.cert, expiresAt: isoSeconds(renewed.expiresAt.toISOString()) };
    }
    ctx.body = body;
  });

  router.get('/agents/:id/tasks', agent, async function pollTasksHandler(ctx) {
    const tasks = await queue.claim(ctx.params.id!, now());
    if (tasks.length > 0) metrics.deliveries.inc({ via: 'poll' }, tasks.length);
    ctx.body = { tasks: tasks.map(deliveredTask) };
  });

  router.post('/agents/:id/tasks', operator, small, async function createTaskHandler(ctx) {
    const input = parse(taskBody, ctx.request.body, 'task');
    await deps.heartbeats.flush();
    const row = await liveAgent(agents, ctx.params.id!);
    const at = now();
    if (agents.status(row, at) === 'offline') throw new FleetError('agent_offline', `Agent ${row.id} is offline (last heartbeat ${isoSeconds(row.last_heartbeat_at)}); the task was not created`);
    const task = await queue.create(row.id, input, (ctx.state as FleetAuthState).operator!.sub, at);
    deps.waiting.add(row.id);
    await fanout.publish({ type: 'task_ready', agentId: row.id });
    ctx.status = 201;
    ctx.body = operatorTask(task);
  });

  router.get('/agents/:id/tasks/:taskId', operator, async function getTaskHandler(ctx) {
    const task = await queue.get(ctx.params.id!, ctx.params.taskId!);
    if (!task) throw new FleetError('task_not_found', `Agent ${ctx.params.id} has no task ${ctx.params.taskId}`);
    ctx.body = operatorTask(task);
  });

  router.post('/agents/:id/tasks/:taskId/complete', agent, jsonBody({ limitBytes: COMPLETION_BODY_BYTES, refuse }), async function completeTaskHandler(ctx) {
    await queue.complete(ctx.params.id!, ctx.params.taskId!, parse(completeBody, ctx.request.body, 'completion'), now());
    ctx.body = { acknowledged: true };
  });

  router.post('/agents/:id/tasks/:taskId/cancel', operator, async function cancelTaskHandler(ctx) {
    const task = await queue.cancel(ctx.params.id!, ctx.params.taskId!, now());
    await fanout.publish({ type: 'task_cancelled', agentId: task.agent_id, taskId: task.id });
    ctx.body = operatorTask(task);
  });

  router.get('/agents/:id/task-stream', async function streamWithoutUpgradeHandler() {
    throw new FleetError('upgrade_required', 'The task stream is a WebSocket: connect with Upgrade: websocket (wss://)', { Upgrade: 'websocket' });
  });

  return router;
}

async function liveAgent(agents: FleetAgents, id: string) {
  const row = await agents.get(id);
  if (!row || row.deleted_at !== null) throw agentNotFound(id);
  return row;
}

function agentNotFound(id: string): FleetError {
  return new FleetError('agent_not_found', `Agent ${id} not found`);
}

function oneOf<T extends string>(ctx: Context, name: string, allowed: readonly T[]): T | undefined {
  const value = ctx.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new FleetError('invalid_request', `Expected \`${name}\` to be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function refuse(status: 400 | 413 | 415, message: string): FleetError {
  return new FleetError(status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'invalid_request', message);
}
