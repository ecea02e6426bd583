// The fleet across two `mirror serve` processes sharing a data directory (one CA, one token key)
// and PostgreSQL, with fleet events through Redis or through PostgreSQL's LISTEN/NOTIFY: a task
// created on one process reaches an agent streaming from the other; so do cancellations and
// deletions. When the process holding an agent's stream is killed with its task leased, the other
// process puts the task back when the lease ends and delivers it to the agent's new stream.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { localIssuer } from '../sidecar/auth/jwt.ts';
import { loadOrCreateCa } from '../sidecar/fleet/ca.ts';
import { httpsJson, openStream, type StreamClient } from './helpers/fleet.ts';
import { createTestDatabase, POSTGRES_MISSING, type TestDatabase } from './helpers/postgres.ts';
import { prepareDataDir, startSidecarProcess, type DataDir, type SidecarProcess } from './helpers/sidecar-process.ts';
import { runCli } from './helpers/store.ts';

const redisUrl = process.env.TEST_REDIS_URL;
const VARIANTS = [
  { name: 'PostgreSQL and Redis pub/sub', missing: POSTGRES_MISSING || (redisUrl ? false : 'TEST_REDIS_URL is not set (CI sets redis://127.0.0.1:6379)'), env: (redisUrl ? { REDIS_URL: redisUrl } : {}) as Record<string, string> },
  { name: 'PostgreSQL LISTEN/NOTIFY', missing: POSTGRES_MISSING, env: {} as Record<string, string> },
];

for (const variant of VARIANTS) {
  describe(`fleet on two processes: ${variant.name}`, { skip: variant.missing }, () => {
    let data: DataDir;
    let database: TestDatabase;
    let env: Record<string, string>;
    let first: SidecarProcess;
    let second: SidecarProcess;
    let caPem: string;
    let operatorToken: string;
    let agent: { id: string; token: string; cert: string; key: string };
    const streams: StreamClient[] = [];

    const operator = (server: SidecarProcess, method: string, pathname: string, body?: unknown) => httpsJson(`${server.fleetUrl}${pathname}`, method, body, { ca: caPem, token: operatorToken });
    const stream = async (server: SidecarProcess) => {
      const opened = await openStream(`${server.fleetUrl.replace('https', 'wss')}/api/v1/agents/${agent.id}/task-stream`, { ca: caPem, cert: agent.cert, key: agent.key, token: agent.token });
      streams.push(opened);
      return opened;
    };

    before(async () => {
      data = await prepareDataDir();
      database = await createTestDatabase('mirror_fleet');
      env = { ...data.env, DATABASE_URL: database.url, ...variant.env, FLEET_HEARTBEAT_INTERVAL_SECONDS: '2' };
      const migrated = await runCli(['migrate'], env);
      assert.equal(migrated.code, 0, migrated.stderr);
      [first, second] = await Promise.all([startSidecarProcess(env), startSidecarProcess(env)]);
      caPem = (await loadOrCreateCa(path.join(env.MIRROR_DATA_DIR!, 'fleet', 'ca.json'))).certificate;
      operatorToken = await (await localIssuer({ dir: path.join(env.MIRROR_DATA_DIR!, 'auth') })).mint('ops', 3600, ['fleet:admin']);
      const created = await runCli(['fleet', 'token', 'create', '--label', 'site=two-processes'], env);
      assert.equal(created.code, 0, created.stderr);
      const registrationToken = created.stdout.trim().split('\n').at(-1)!;
      const registered = await httpsJson(`${first.fleetUrl}/api/v1/agents/register`, 'POST', { name: 'agent-two', version: '1.0.0', capabilities: ['docker'] }, { ca: caPem }, { 'X-Agent-Token': registrationToken });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      agent = { id: registered.body.agentId, token: registered.body.token, cert: registered.body.certificate.cert, key: registered.body.certificate.key };
    });

    after(async () => {
      for (const open of streams) open.close();
      for (const server of [first, second]) {
        if (server && server.child.exitCode === null && server.child.signalCode === null) {
          server.child.kill('SIGTERM');
          // A drain held up by a stream a failed test left open must not keep the suite from ending.
          const killer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
          await server.exited;
          clearTimeout(killer);
        }
      }
      await database?.drop();
      await rm(data.dir, { recursive: true, force: true });
    });

    // The agent heartbeats before each test, as a running agent keeps doing: with the 2 s interval
    // these processes use, a slow test on a loaded machine would otherwise outlast its online status.
    beforeEach(async () => {
      const beat = await httpsJson(`${second.fleetUrl}/api/v1/agents/${agent.id}/heartbeat`, 'POST', { status: 'healthy', resourceUsage: { cpu: 1 }, runningTasks: 0 }, { ca: caPem, cert: agent.cert, key: agent.key, token: agent.token });
      assert.equal(beat.status, 200, JSON.stringify(beat.body));
    });

    test('both processes share one CA: the agent registered on one is known to the other', async () => {
      const heartbeat = await httpsJson(`${second.fleetUrl}/api/v1/agents/${agent.id}/heartbeat`, 'POST', { status: 'healthy', resourceUsage: { cpu: 1 }, runningTasks: 0 }, { ca: caPem, cert: agent.cert, key: agent.key, token: agent.token });
      assert.deepEqual([heartbeat.status, heartbeat.body], [200, { tasks: [] }]);
      const listed = await operator(first, 'GET', '/api/v1/agents');
      assert.deepEqual(listed.body.map((entry: { id: string; labels: Record<string, string> }) => [entry.id, entry.labels.site]), [[agent.id, 'two-processes']]);
    });

    test('a task created on one process is pushed to the stream on the other, and so is its cancellation', async (t) => {
      const onFirst = await stream(first);
      const sent = performance.now();
      const created = await operator(second, 'POST', `/api/v1/agents/${agent.id}/tasks`, { taskType: 'docker.pull', payload: { image: 'myapp' }, credentials: { 'registry.password': 's3cret' } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const assigned = await onFirst.next('task_assigned', 10_000);
      t.diagnostic(`task_assigned on the other process ${Math.round(performance.now() - sent)} ms after the create request was sent`);
      assert.equal(assigned.task.taskId, created.body.taskId);
      assert.deepEqual(assigned.task.credentials, { 'registry.password': 's3cret' });

      const cancelled = await runCli(['fleet', 'task', 'cancel', agent.id, created.body.taskId, '--url', second.fleetUrl], env);
      assert.equal(cancelled.code, 0, cancelled.stderr);
      assert.equal(JSON.parse(cancelled.stdout).state, 'cancelled');
      assert.deepEqual(await onFirst.next('task_cancelled', 10_000), { type: 'task_cancelled', taskId: created.body.taskId });
    });

    test('`mirror fleet task create` on one process reaches the stream on the other; credentials stay out of what it prints', async () => {
      const onFirst = await stream(first);
      const created = await runCli(['fleet', 'task', 'create', agent.id, '--type', 'docker.pull', '--payload', '{"image":"myapp"}', '--credential', 'registry.password=s3cret', '--url', second.fleetUrl], env);
      assert.equal(created.code, 0, created.stderr);
      assert.doesNotMatch(created.stdout, /s3cret/);
      const task = JSON.parse(created.stdout) as { taskId: string; credentialKeys: string[] };
      assert.deepEqual(task.credentialKeys, ['registry.password']);
      assert.equal((await onFirst.next('task_assigned', 10_000)).task.taskId, task.taskId);
      const done = await httpsJson(`${first.fleetUrl}/api/v1/agents/${agent.id}/tasks/${task.taskId}/complete`, 'POST', { success: true }, { ca: caPem, cert: agent.cert, key: agent.key, token: agent.token });
      assert.deepEqual([done.status, done.body], [200, { acknowledged: true }]);
      onFirst.close();
    });

    test('killed with the task leased, the process is replaced by the other: the lease ends and the task comes back on the new stream', async () => {
      const onFirst = await stream(first);
      const created = await operator(second, 'POST', `/api/v1/agents/${agent.id}/tasks`, { taskType: 'compose.up', timeout: 2 });
      assert.equal(created.status, 201);
      const assigned = await onFirst.next('task_assigned', 10_000);
      assert.equal(assigned.task.attempt, 1);
      first.child.kill('SIGKILL');
      assert.equal(await first.exited, 'SIGKILL');
      await onFirst.closed;

      const onSecond = await stream(second);
      const again = await onSecond.next('task_assigned', 15_000);
      assert.equal(again.task.taskId, created.body.taskId);
      assert.equal(again.task.attempt, 2);
      assert.notEqual(again.task.leaseId, assigned.task.leaseId);
      const credentials = { ca: caPem, cert: agent.cert, key: agent.key, token: agent.token };
      const stale = await httpsJson(`${second.fleetUrl}/api/v1/agents/${agent.id}/tasks/${created.body.taskId}/complete`, 'POST', { success: true, leaseId: assigned.task.leaseId }, credentials);
      assert.equal(stale.status, 409, JSON.stringify(stale.body));
      const done = await httpsJson(`${second.fleetUrl}/api/v1/agents/${agent.id}/tasks/${created.body.taskId}/complete`, 'POST', { success: true, leaseId: again.task.leaseId }, credentials);
      assert.deepEqual([done.status, done.body], [200, { acknowledged: true }]);
    });

    test('deleting the agent on one process closes its stream on the other at once', async () => {
      first = await startSidecarProcess(env);
      const onFirst = await stream(first);
      const deleted = await operator(second, 'DELETE', `/api/v1/agents/${agent.id}`);
      assert.deepEqual(deleted.body, { deleted: true });
      assert.equal((await onFirst.closed).code, 4403);
      const refused = await httpsJson(`${first.fleetUrl}/api/v1/agents/${agent.id}/tasks`, 'GET', undefined, { ca: caPem, cert: agent.cert, key: agent.key, token: agent.token });
      assert.equal(refused.status, 403);
    });
  });
}
