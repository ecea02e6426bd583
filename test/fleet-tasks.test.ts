// Tasks, leases and the WebSocket task stream of the fleet (seed 004) over real mutual TLS, one
// suite on SQLite and on PostgreSQL: creation and its refusals, delivery by heartbeat, poll and
// stream, leases that expire, are extended by progress, end when the holder goes offline and fence
// off a lost attempt's completion, attempts running out, cancellation, concurrent claims, deletion,
// and credentials that no operator view and no log line ever shows.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { BACKENDS, httpsJson, startFleet, type FleetAgentClient, type FleetServer, type JsonResponse, type StreamClient } from './helpers/fleet.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Every credential value handed to the fleet, so the end can look for them in views and logs. */
const secrets: string[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A task body as an operator sends it, with a credential value of its own. */
function newTask(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const password = `secret-${randomUUID()}`;
  secrets.push(password);
  return { taskType: 'docker.pull', payload: { image: 'myapp', tag: 'v2.3.1' }, credentials: { 'registry.username': 'user', 'registry.password': password }, timeout: 300, priority: 0, ...overrides };
}

/** Resolves with the probe's first defined answer; the probe runs every 100 ms until the deadline. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * Every line the server logs, at every level, while the helper's `errors` still gets only the
 * error lines it got before: the logger's level is lowered and its destination wrapped.
 */
function recordEveryLogLine(server: FleetServer): string[] {
  const lines: string[] = [];
  const logger = server.sidecar.logger;
  const destination = (logger as unknown as Record<symbol, { write(line: string): void }>)[pino.symbols.streamSym]!;
  const write = destination.write.bind(destination);
  destination.write = (line: string) => {
    lines.push(line);
    if ((JSON.parse(line) as { level: number }).level >= 50) write(line);
  };
  logger.level = 'trace';
  return lines;
}

function assertFleetError(answer: JsonResponse, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.deepEqual(Object.keys(answer.body).sort(), ['error', 'message']);
  assert.equal(answer.body.error, code);
  assert.equal(typeof answer.body.message, 'string');
}

for (const backend of BACKENDS) {
  describe(`fleet tasks, leases and task stream on ${backend.name}`, { skip: !process.env.CI && backend.missing }, () => {
    /** Default heartbeat interval (agents stay online), two attempts per task. */
    let fleet: FleetServer;
    /** One-second heartbeat interval: an agent is offline after three silent seconds. */
    let quick: FleetServer;
    const logged: string[][] = [];
    const streams: StreamClient[] = [];

    const tasksPath = (agent: { id: string }) => `/api/v1/agents/${agent.id}/tasks`;
    const poll = (agent: FleetAgentClient) => agent.call('GET', tasksPath(agent));
    const complete = (agent: FleetAgentClient, taskId: string, body: unknown) => agent.call('POST', `${tasksPath(agent)}/${taskId}/complete`, body);
    const openStream = async (agent: FleetAgentClient) => {
      const opened = await agent.stream();
      streams.push(opened);
      return opened;
    };

    async function createTask(server: FleetServer, agent: FleetAgentClient, body: Record<string, unknown>): Promise<any> {
      const created = await server.operator('POST', tasksPath(agent), body);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return created.body;
    }

    async function taskView(server: FleetServer, agent: { id: string }, taskId: string): Promise<any> {
      const answer = await server.operator('GET', `${tasksPath(agent)}/${taskId}`);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return answer.body;
    }

    /** The tasks a heartbeat or poll answered with, after checking it answered 200. */
    function delivered(answer: JsonResponse): any[] {
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.ok(Array.isArray(answer.body.tasks), JSON.stringify(answer.body));
      return answer.body.tasks;
    }

    /** Polls until the task is delivered again; its new delivery. */
    const redelivered = (agent: FleetAgentClient, taskId: string) =>
      eventually(`task ${taskId} delivered again`, async () => {
        const tasks = delivered(await poll(agent));
        assert.ok(tasks.every((task) => task.taskId === taskId), `only ${taskId} may come back, got ${JSON.stringify(tasks)}`);
        return tasks[0];
      });

    before(async () => {
      assert.equal(backend.missing, false, backend.missing || '');
      [fleet, quick] = await Promise.all([startFleet(backend, { FLEET_TASK_MAX_ATTEMPTS: '2' }), startFleet(backend, { FLEET_HEARTBEAT_INTERVAL_SECONDS: '1' })]);
      logged.push(recordEveryLogLine(fleet), recordEveryLogLine(quick));
    });

    after(async () => {
      for (const open of streams) open.close();
      await fleet?.close();
      await quick?.close();
      assert.deepEqual(fleet?.errors ?? [], []);
      assert.deepEqual(quick?.errors ?? [], []);
    });

    test('an operator creates a task: 201 with its taskId, and its credentials shown only by name', async () => {
      const agent = await fleet.register('agent-create');
      const body = newTask({ priority: 7, timeout: 120 });
      const created = await fleet.operator('POST', tasksPath(agent), body);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.match(created.body.taskId, UUID);
      assert.equal(created.body.agentId, agent.id);
      assert.equal(created.body.taskType, 'docker.pull');
      assert.equal(created.body.state, 'queued');
      assert.equal(created.body.priority, 7);
      assert.equal(created.body.timeout, 120);
      assert.equal(created.body.attempts, 0);
      assert.deepEqual(created.body.payload, body.payload);
      assert.deepEqual(created.body.credentialKeys, ['registry.username', 'registry.password']);
      assert.equal('credentials' in created.body, false);

      const read = await taskView(fleet, agent, created.body.taskId);
      assert.equal(read.state, 'queued');
      assert.deepEqual(read.credentialKeys, ['registry.username', 'registry.password']);
      const details = await fleet.operator('GET', `/api/v1/agents/${agent.id}`);
      assert.equal(details.status, 200);
      assert.deepEqual(
        details.body.tasks.queued.map((task: any) => task.taskId),
        [created.body.taskId],
      );
      const password = (body.credentials as Record<string, string>)['registry.password']!;
      for (const view of [created.body, read, details.body]) assert.equal(JSON.stringify(view).includes(password), false);
    });

    test('a task body that is not valid is refused with 400 or 415 and creates nothing; an unknown agent is 404', async () => {
      const agent = await fleet.register('agent-refusals');
      const token = await fleet.operatorToken();
      const raw = (payload: string, contentType: string) => httpsJson(`${fleet.url}${tasksPath(agent)}`, 'POST', payload, { ca: fleet.ca.certificate, token }, { 'Content-Type': contentType });
      const refusals: [string, Promise<JsonResponse>, number, string, RegExp][] = [
        ['unknown field', fleet.operator('POST', tasksPath(agent), newTask({ colour: 'red' })), 400, 'invalid_request', /colour/],
        ['timeout 0', fleet.operator('POST', tasksPath(agent), newTask({ timeout: 0 })), 400, 'invalid_request', /timeout/],
        ['taskType with spaces', fleet.operator('POST', tasksPath(agent), newTask({ taskType: 'docker pull' })), 400, 'invalid_request', /taskType/],
        ['credentials not strings', fleet.operator('POST', tasksPath(agent), newTask({ credentials: { 'registry.password': 1234 } })), 400, 'invalid_request', /credentials/],
        ['priority not an integer', fleet.operator('POST', tasksPath(agent), newTask({ priority: 1.5 })), 400, 'invalid_request', /priority/],
        ['malformed JSON', raw('{"taskType": "docker.pull",', 'application/json'), 400, 'invalid_request', /./],
        ['a body that is not a JSON object', raw('["docker.pull"]', 'application/json'), 400, 'invalid_request', /./],
        ['wrong Content-Type', raw(JSON.stringify(newTask()), 'text/plain'), 415, 'unsupported_media_type', /./],
      ];
      for (const [what, answer, status, code, mentions] of refusals) {
        const refused = await answer;
        assert.equal(refused.status, status, `${what}: ${JSON.stringify(refused.body)}`);
        assertFleetError(refused, status, code);
        assert.match(refused.body.message, mentions, what);
      }
      const details = await fleet.operator('GET', `/api/v1/agents/${agent.id}`);
      assert.equal(details.status, 200);
      assert.deepEqual(details.body.tasks, { running: [], queued: [], recent: [] });
      assert.deepEqual(delivered(await poll(agent)), []);

      assertFleetError(await fleet.operator('POST', `/api/v1/agents/${randomUUID()}/tasks`, newTask()), 404, 'agent_not_found');
    });

    test('a heartbeat delivers the task with its credentials and lease, and no heartbeat or poll delivers it again while the lease runs', async () => {
      const agent = await fleet.register('agent-heartbeat');
      const body = newTask({ priority: 3 });
      const created = await createTask(fleet, agent, body);
      const [task, ...others] = delivered(await agent.heartbeat());
      assert.deepEqual(others, []);
      const { leaseId, leaseExpiresAt, createdAt, ...rest } = task;
      assert.deepEqual(rest, { taskId: created.taskId, taskType: 'docker.pull', payload: body.payload, credentials: body.credentials, timeout: 300, priority: 3, attempt: 1 });
      assert.match(leaseId, UUID);
      assert.ok(Date.parse(leaseExpiresAt) > Date.parse(createdAt), `lease ends ${leaseExpiresAt}, created ${createdAt}`);

      assert.deepEqual(delivered(await agent.heartbeat()), []);
      assert.deepEqual(delivered(await poll(agent)), []);
      const read = await taskView(fleet, agent, created.taskId);
      assert.equal(read.state, 'leased');
      assert.equal(read.attempts, 1);
      assert.deepEqual(read.lease, { leaseId, agentId: agent.id, expiresAt: leaseExpiresAt });
    });

    test('a poll delivers the queued tasks highest priority first', async () => {
      const agent = await fleet.register('agent-priority');
      const low = await createTask(fleet, agent, newTask({ priority: 1 }));
      const high = await createTask(fleet, agent, newTask({ priority: 50 }));
      const middle = await createTask(fleet, agent, newTask({ priority: 10 }));
      const tasks = delivered(await poll(agent));
      assert.deepEqual(
        tasks.map((task) => [task.taskId, task.priority]),
        [
          [high.taskId, 50],
          [middle.taskId, 10],
          [low.taskId, 1],
        ],
      );
      for (const task of tasks) {
        assert.equal(task.attempt, 1);
        assert.match(task.leaseId, UUID);
        assert.equal(typeof task.createdAt, 'string');
      }
      assert.equal(new Set(tasks.map((task) => task.leaseId)).size, 3);
      assert.deepEqual(delivered(await poll(agent)), []);
    });

    test('the stream pushes task_assigned when a task is created, and a stream opened later gets the queued tasks at once', async () => {
      const agent = await fleet.register('agent-stream');
      const stream = await openStream(agent);
      const body = newTask({ taskType: 'compose.up', payload: { project: 'shop' } });
      const created = await createTask(fleet, agent, body);
      const assigned = await stream.next('task_assigned');
      assert.equal(assigned.task.taskId, created.taskId);
      assert.equal(assigned.task.taskType, 'compose.up');
      assert.deepEqual(assigned.task.payload, { project: 'shop' });
      assert.deepEqual(assigned.task.credentials, body.credentials);
      assert.equal(assigned.task.timeout, 300);
      assert.equal(assigned.task.attempt, 1);
      assert.match(assigned.task.leaseId, UUID);
      assert.deepEqual(delivered(await agent.heartbeat()), []);
      assert.equal((await taskView(fleet, agent, created.taskId)).lease.leaseId, assigned.task.leaseId);

      stream.close();
      await stream.closed;
      const first = await createTask(fleet, agent, newTask({ priority: 1 }));
      const second = await createTask(fleet, agent, newTask({ priority: 9 }));
      assert.equal((await taskView(fleet, agent, first.taskId)).state, 'queued');
      assert.equal((await taskView(fleet, agent, second.taskId)).state, 'queued');
      const later = await openStream(agent);
      const pushed = [await later.next('task_assigned'), await later.next('task_assigned')];
      assert.deepEqual(
        pushed.map((message) => message.task.taskId),
        [second.taskId, first.taskId],
      );
      assert.equal((await taskView(fleet, agent, first.taskId)).state, 'leased');
      assert.deepEqual(delivered(await poll(agent)), []);
    });

    test('an expired lease brings the task back as attempt 2; the first lease cannot complete it; the same completion twice is one record', async () => {
      const agent = await fleet.register('agent-lease');
      const created = await createTask(fleet, agent, newTask({ timeout: 2 }));
      const [first] = delivered(await poll(agent));
      assert.equal(first.taskId, created.taskId);
      assert.equal(first.attempt, 1);

      const second = await redelivered(agent, created.taskId);
      assert.equal(second.attempt, 2);
      assert.match(second.leaseId, UUID);
      assert.notEqual(second.leaseId, first.leaseId);

      const logs = [
        { timestamp: '2026-01-10T14:23:45Z', level: 'info', message: 'Pulling image...' },
        { timestamp: '2026-01-10T14:23:50Z', level: 'info', message: 'Image pulled successfully' },
      ];
      assertFleetError(await complete(agent, created.taskId, { success: true, result: { imageId: 'stale' }, logs, leaseId: first.leaseId }), 409, 'conflict');
      const completion = { success: true, result: { imageId: 'sha256:abc123', containerId: 'c-1' }, logs, leaseId: second.leaseId };
      for (let time = 0; time < 2; time++) {
        const answer = await complete(agent, created.taskId, completion);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.deepEqual(answer.body, { acknowledged: true });
      }
      const read = await taskView(fleet, agent, created.taskId);
      assert.equal(read.state, 'completed');
      assert.equal(read.success, true);
      assert.equal(read.attempts, 2);
      assert.equal(read.lease, null);
      assert.deepEqual(read.result, completion.result);
      assert.deepEqual(read.logs, logs);
      assert.equal(typeof read.finishedAt, 'string');
      assertFleetError(await complete(agent, created.taskId, { success: false, leaseId: first.leaseId }), 409, 'conflict');
      assert.deepEqual((await taskView(fleet, agent, created.taskId)).result, completion.result);
      assert.deepEqual(delivered(await poll(agent)), []);
    });

    test('after FLEET_TASK_MAX_ATTEMPTS ended leases the task has failed and is never delivered again', async () => {
      const agent = await fleet.register('agent-attempts');
      const created = await createTask(fleet, agent, newTask({ timeout: 1 }));
      const [first] = delivered(await poll(agent));
      assert.equal(first.attempt, 1);
      const second = await redelivered(agent, created.taskId);
      assert.equal(second.attempt, 2);
      const failed = await eventually('the task fails', async () => {
        const read = await taskView(fleet, agent, created.taskId);
        return read.state === 'failed' ? read : undefined;
      });
      assert.equal(failed.attempts, 2);
      assert.equal(failed.maxAttempts, 2);
      assert.equal(failed.lease, null);
      assert.match(failed.failure, /2 of 2/);
      assert.deepEqual(delivered(await poll(agent)), []);
      assert.deepEqual(delivered(await agent.heartbeat()), []);
      assertFleetError(await complete(agent, created.taskId, { success: true, leaseId: second.leaseId }), 409, 'conflict');
    });

    test('task_progress from the holder extends its lease and is stored, task_log is stored, and either for a task it does not hold is an error', async () => {
      const agent = await fleet.register('agent-progress');
      const other = await fleet.register('agent-progress-other');
      const stream = await openStream(agent);
      const created = await createTask(fleet, agent, newTask({ timeout: 2 }));
      const { task } = await stream.next('task_assigned');
      assert.equal(task.taskId, created.taskId);

      // Progress every 500 ms until the completion, for more than twice the lease: without the
      // extensions the sweeper would have ended the lease and the task would have come back.
      let step = 0;
      const reporter = setInterval(() => {
        step = Math.min(step + 1, 10);
        stream.send({ type: 'task_progress', taskId: task.taskId, progress: step * 9, message: `layer ${step}/10` });
      }, 500);
      try {
        await sleep(5_500);
        const read = await eventually('the last progress stored', async () => {
          const view = await taskView(fleet, agent, task.taskId);
          return view.progress === 90 ? view : undefined;
        });
        assert.equal(read.progressMessage, 'layer 10/10');
        assert.equal(read.state, 'leased');
        assert.equal(read.attempts, 1);
        assert.equal(read.lease.leaseId, task.leaseId);
        await assert.rejects(stream.next('task_assigned', 200), /no task_assigned/);

        stream.send({ type: 'task_log', taskId: task.taskId, level: 'warn', message: 'layer 7 retried' });
        const logs = await eventually('the log line stored', async () => {
          const view = await taskView(fleet, agent, task.taskId);
          return view.logs.length > 0 ? view.logs : undefined;
        });
        assert.equal(logs.length, 1);
        assert.equal(logs[0].level, 'warn');
        assert.equal(logs[0].message, 'layer 7 retried');
        assert.equal(typeof logs[0].timestamp, 'string');

        const unknown = randomUUID();
        stream.send({ type: 'task_progress', taskId: unknown, progress: 10 });
        const refused = await stream.next('error');
        assert.equal(refused.taskId, unknown);
        assert.match(refused.message, /not leased to this agent/);
        const othersTask = await createTask(fleet, other, newTask());
        stream.send({ type: 'task_log', taskId: othersTask.taskId, level: 'info', message: 'not mine' });
        assert.equal((await stream.next('error')).taskId, othersTask.taskId);
        stream.send({ type: 'task_progress', taskId: task.taskId, progress: 95, leaseId: randomUUID() });
        assert.equal((await stream.next('error')).taskId, task.taskId);
        stream.send({ type: 'task_progress', taskId: task.taskId, progress: 'half' });
        assert.match((await stream.next('error')).message, /progress/);
        assert.deepEqual((await taskView(fleet, other, othersTask.taskId)).logs, []);
        const held = await taskView(fleet, agent, task.taskId);
        assert.equal(held.progress, 90);
        assert.equal(held.attempts, 1);
      } finally {
        clearInterval(reporter);
      }

      const answer = await complete(agent, task.taskId, { success: true, leaseId: task.leaseId, logs: [{ level: 'info', message: 'done' }] });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const done = await taskView(fleet, agent, task.taskId);
      assert.equal(done.state, 'completed');
      assert.deepEqual(
        done.logs.map((entry: any) => entry.message),
        ['layer 7 retried', 'done'],
      );
      stream.send({ type: 'task_progress', taskId: task.taskId, progress: 100 });
      assert.equal((await stream.next('error')).taskId, task.taskId);
    });

    test('an agent that stops heartbeating has its leased task put back before the lease would end', async () => {
      const agent = await quick.register('agent-offline');
      const created = await createTask(quick, agent, newTask({ timeout: 600 }));
      const [first] = delivered(await agent.heartbeat());
      assert.equal(first.taskId, created.taskId);
      assert.equal(first.attempt, 1);
      const requeued = await eventually('the task requeued', async () => {
        const read = await taskView(quick, agent, created.taskId);
        return read.state === 'queued' ? read : undefined;
      });
      assert.equal(requeued.attempts, 1);
      const status = await quick.operator('GET', `/api/v1/agents/${agent.id}`);
      assert.equal(status.body.status, 'offline');

      const [second, ...others] = delivered(await agent.heartbeat());
      assert.deepEqual(others, []);
      assert.equal(second.taskId, created.taskId);
      assert.equal(second.attempt, 2);
      assert.notEqual(second.leaseId, first.leaseId);
      assertFleetError(await complete(agent, created.taskId, { success: true, leaseId: first.leaseId }), 409, 'conflict');
      assert.equal((await complete(agent, created.taskId, { success: true, leaseId: second.leaseId })).status, 200);
    });

    test("completing another agent's task is 403, an unknown task 404, a cancelled task 409, and a completion without success 400", async () => {
      const owner = await fleet.register('agent-owner');
      const intruder = await fleet.register('agent-intruder');
      const created = await createTask(fleet, owner, newTask());
      const [leased] = delivered(await poll(owner));
      assert.equal(leased.taskId, created.taskId);

      assertFleetError(await intruder.call('POST', `/api/v1/agents/${intruder.id}/tasks/${created.taskId}/complete`, { success: true, leaseId: leased.leaseId }), 403, 'forbidden');
      assertFleetError(await intruder.call('POST', `/api/v1/agents/${owner.id}/tasks/${created.taskId}/complete`, { success: true }), 403, 'forbidden');
      assertFleetError(await complete(owner, randomUUID(), { success: true }), 404, 'task_not_found');
      for (const body of [{ result: { imageId: 'x' } }, { success: 'yes' }, { success: true, logs: [{ level: 'loud', message: 'x' }] }]) {
        const refused = await complete(owner, created.taskId, body);
        assertFleetError(refused, 400, 'invalid_request');
      }
      assert.equal((await taskView(fleet, owner, created.taskId)).state, 'leased');

      const cancelled = await fleet.operator('POST', `${tasksPath(owner)}/${created.taskId}/cancel`);
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      assertFleetError(await complete(owner, created.taskId, { success: true, leaseId: leased.leaseId }), 409, 'conflict');
      const read = await taskView(fleet, owner, created.taskId);
      assert.equal(read.state, 'cancelled');
      assert.equal(read.success, null);
    });

    test('cancelling a task tells its open stream, cancelling a finished one is 409, and a cancelled task is never delivered', async () => {
      const agent = await fleet.register('agent-cancel');
      const stream = await openStream(agent);
      const created = await createTask(fleet, agent, newTask());
      assert.equal((await stream.next('task_assigned')).task.taskId, created.taskId);
      const cancelled = await fleet.operator('POST', `${tasksPath(agent)}/${created.taskId}/cancel`);
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      assert.equal(cancelled.body.taskId, created.taskId);
      assert.equal(cancelled.body.state, 'cancelled');
      assert.deepEqual(await stream.next('task_cancelled'), { type: 'task_cancelled', taskId: created.taskId });
      assertFleetError(await fleet.operator('POST', `${tasksPath(agent)}/${created.taskId}/cancel`), 409, 'conflict');

      stream.close();
      await stream.closed;
      const queued = await createTask(fleet, agent, newTask());
      assert.equal((await fleet.operator('POST', `${tasksPath(agent)}/${queued.taskId}/cancel`)).body.state, 'cancelled');
      assert.deepEqual(delivered(await poll(agent)), []);
      assert.deepEqual(delivered(await agent.heartbeat()), []);

      const finished = await createTask(fleet, agent, newTask());
      const [leased] = delivered(await poll(agent));
      assert.equal(leased.taskId, finished.taskId);
      assert.equal((await complete(agent, finished.taskId, { success: true })).status, 200);
      assertFleetError(await fleet.operator('POST', `${tasksPath(agent)}/${finished.taskId}/cancel`), 409, 'conflict');
      assert.equal((await taskView(fleet, agent, finished.taskId)).state, 'completed');
      assertFleetError(await fleet.operator('POST', `${tasksPath(agent)}/${randomUUID()}/cancel`), 404, 'task_not_found');
    });

    test('concurrent polls and heartbeats lease every queued task exactly once', async () => {
      const agent = await fleet.register('agent-concurrent');
      const created: string[] = [];
      for (let batch = 0; batch < 3; batch++) {
        const tasks = await Promise.all(Array.from({ length: 10 }, (_, index) => createTask(fleet, agent, newTask({ priority: index }))));
        created.push(...tasks.map((task) => task.taskId));
      }
      const answers = await Promise.all(Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? poll(agent) : agent.heartbeat())));
      const deliveries = answers.flatMap(delivered);
      const ids = deliveries.map((task) => task.taskId);
      assert.equal(new Set(ids).size, ids.length, `a task was delivered twice: ${ids.join(' ')}`);
      assert.deepEqual([...ids].sort(), [...created].sort());
      assert.equal(new Set(deliveries.map((task) => task.leaseId)).size, created.length);
      assert.ok(deliveries.every((task) => task.attempt === 1));
      assert.deepEqual(delivered(await poll(agent)), []);
      const details = await fleet.operator('GET', `/api/v1/agents/${agent.id}`);
      assert.equal(details.body.tasks.running.length, created.length);
      assert.deepEqual(details.body.tasks.queued, []);
    });

    test('the stream refuses an upgrade without a client certificate (401), with another agent\'s (403) or without the token (401); a plain GET is 426', async () => {
      const agent = await fleet.register('agent-upgrade');
      const other = await fleet.register('agent-upgrade-other');
      const refusal = (override: Parameters<FleetAgentClient['stream']>[0]) =>
        agent.stream(override).then(
          (opened) => {
            opened.close();
            throw new Error('the stream opened');
          },
          (refused: unknown) => refused as { status: number; body: any },
        );
      const withoutCertificate = await refusal({ cert: '', key: '' });
      assert.equal(withoutCertificate.status, 401);
      assert.equal(withoutCertificate.body.error, 'unauthorized');
      const othersCertificate = await refusal({ cert: other.cert, key: other.key });
      assert.equal(othersCertificate.status, 403);
      assert.equal(othersCertificate.body.error, 'forbidden');
      const withoutToken = await refusal({ token: '' });
      assert.equal(withoutToken.status, 401);
      assert.equal(withoutToken.body.error, 'unauthorized');

      const plain = await agent.call('GET', `/api/v1/agents/${agent.id}/task-stream`);
      assertFleetError(plain, 426, 'upgrade_required');
      assert.equal(plain.headers.upgrade, 'websocket');
    });

    test('deleting an agent fails its unfinished tasks, keeps its finished ones, and closes its stream with 4403', async () => {
      const agent = await fleet.register('agent-deleted');
      const finished = await createTask(fleet, agent, newTask());
      assert.equal(delivered(await poll(agent))[0].taskId, finished.taskId);
      assert.equal((await complete(agent, finished.taskId, { success: true })).status, 200);
      const polled = await createTask(fleet, agent, newTask());
      assert.equal(delivered(await poll(agent))[0].taskId, polled.taskId);
      const queued = await createTask(fleet, agent, newTask());
      assert.equal((await taskView(fleet, agent, queued.taskId)).state, 'queued');
      const stream = await openStream(agent);
      assert.equal((await stream.next('task_assigned')).task.taskId, queued.taskId);
      const streamed = await createTask(fleet, agent, newTask());
      assert.equal((await stream.next('task_assigned')).task.taskId, streamed.taskId);

      const deleted = await fleet.operator('DELETE', `/api/v1/agents/${agent.id}`);
      assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
      assert.deepEqual(deleted.body, { deleted: true });
      const closed = await Promise.race([stream.closed, sleep(5_000).then(() => ({ code: 0, reason: 'still open after 5 s' }))]);
      assert.equal(closed.code, 4403, closed.reason);
      for (const taskId of [polled.taskId, queued.taskId, streamed.taskId]) {
        const read = await taskView(fleet, agent, taskId);
        assert.equal(read.state, 'failed', taskId);
        assert.match(read.failure, /deleted/);
        assert.equal(read.lease, null);
      }
      assert.equal((await taskView(fleet, agent, finished.taskId)).state, 'completed');
      assertFleetError(await poll(agent), 403, 'forbidden');
      assertFleetError(await fleet.operator('POST', tasksPath(agent), newTask()), 404, 'agent_not_found');
    });

    test('no credential value appears in any operator view or in anything the server logged', async () => {
      const listed = await fleet.operator('GET', '/api/v1/agents');
      assert.equal(listed.status, 200);
      const views = [JSON.stringify(listed.body)];
      for (const agent of listed.body as { id: string }[]) {
        const details = await fleet.operator('GET', `/api/v1/agents/${agent.id}`);
        views.push(JSON.stringify(details.body));
        for (const task of [...details.body.tasks.running, ...details.body.tasks.queued, ...details.body.tasks.recent]) views.push(JSON.stringify(await taskView(fleet, agent, task.taskId)));
      }
      assert.ok(views.length > listed.body.length, 'the operator views were read');
      const lines = logged.flat();
      assert.ok(lines.some((line) => line.includes('/tasks')), 'the request log recorded task calls');
      assert.ok(secrets.length > 30);
      for (const secret of secrets) {
        for (const view of views) assert.equal(view.includes(secret), false, `an operator view shows ${secret}`);
        for (const line of lines) assert.equal(line.includes(secret), false, `the log shows ${secret}: ${line}`);
      }
    });
  });
}
