// The fleet API of seed 004 over real TLS with real client certificates, one suite on SQLite and
// on PostgreSQL: registration with one-time tokens (from the API and from `mirror fleet token
// create`), what the issued certificate holds (checked with openssl), every refusal of a token, of
// a client certificate and of a JWT, operators' calls and their scope, the agent's status,
// revocation by deletion, certificate renewal through heartbeats, and the CA in /readyz and
// /metrics. The agent's own curl session is run with the curl binary.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { sha256Hex } from '../generator/stores/hash.ts';
import { agentUri, loadOrCreateCa } from '../sidecar/fleet/ca.ts';
import { CLOSE_REVOKED } from '../sidecar/fleet/stream.ts';
import { listen } from '../sidecar/server.ts';
import { openDatabase, type StateDb } from '../sidecar/store/db.ts';
import { BACKENDS, httpsJson, openStream, startFleet, type Credentials, type FleetServer, type JsonResponse } from './helpers/fleet.ts';
import { removeDir, runCli, tempDir } from './helpers/store.ts';

const run = promisify(execFile);

const HEALTHY = { status: 'healthy', resourceUsage: { cpu: 10, memory: 20, disk: 30 }, runningTasks: 0 };
const ISO_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const DAY_MS = 86_400_000;
/** Settings of the second fleet: heartbeats every second, certificates of a minute renewed in their last 56 s. */
const SHORT = { FLEET_HEARTBEAT_INTERVAL_SECONDS: '1', FLEET_CERT_TTL_SECONDS: '60', FLEET_RENEW_BEFORE_SECONDS: '56' };

/** Asserts the fleet's error shape, `{"error": code, "message": text}`, with the status. */
function assertFleetError(answer: JsonResponse, status: number, code: string, message?: RegExp): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.deepEqual(Object.keys(answer.body).sort(), ['error', 'message']);
  assert.equal(answer.body.error, code);
  assert.equal(typeof answer.body.message, 'string');
  assert.ok(answer.body.message.length > 0);
  if (message) assert.match(answer.body.message, message);
}

function registerWith(fleet: FleetServer, token: string | undefined, body: unknown): Promise<JsonResponse> {
  return httpsJson(`${fleet.url}/api/v1/agents/register`, 'POST', body, { ca: fleet.ca.certificate }, token === undefined ? {} : { 'X-Agent-Token': token });
}

function registration(name: string, extra: Record<string, unknown> = {}) {
  return { name, version: '1.0.0', capabilities: ['docker', 'compose'], labels: {}, ...extra };
}

/** The agent calls every refusal is tried on: heartbeat and poll. */
function agentCalls(fleet: FleetServer, agentId: string, credentials: Credentials): Promise<JsonResponse>[] {
  return [
    httpsJson(`${fleet.url}/api/v1/agents/${agentId}/heartbeat`, 'POST', HEALTHY, { ca: fleet.ca.certificate, ...credentials }),
    httpsJson(`${fleet.url}/api/v1/agents/${agentId}/tasks`, 'GET', undefined, { ca: fleet.ca.certificate, ...credentials }),
  ];
}

async function assertAgentCallsRefused(fleet: FleetServer, agentId: string, credentials: Credentials, status: number, code: string, message?: RegExp): Promise<void> {
  for (const answer of await Promise.all(agentCalls(fleet, agentId, credentials))) assertFleetError(answer, status, code, message);
}

function spki(certPem: string): string {
  return new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

/** Runs `work` on a connection of its own to the fleet's state database. */
async function withDatabase<T>(fleet: FleetServer, work: (state: StateDb) => Promise<T>): Promise<T> {
  const state = await openDatabase({ ...(fleet.env.DATABASE_URL ? { url: fleet.env.DATABASE_URL } : {}), file: path.join(fleet.env.MIRROR_DATA_DIR!, 'state.db') });
  try {
    return await work(state);
  } finally {
    await state.close();
  }
}

/** Resolves with `promise`, or rejects saying what did not happen within `ms` (a guard, not an assertion on time). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The value of an unlabelled or labelled sample in Prometheus text. */
function sample(metrics: string, name: string): number {
  const line = metrics.split('\n').find((entry) => entry.startsWith(`${name} `));
  assert.ok(line, `${name} is in /metrics`);
  return Number(line.slice(name.length + 1));
}

for (const backend of BACKENDS) {
  describe(`fleet API on ${backend.name}`, { skip: !process.env.CI && backend.missing }, () => {
    let fleet: FleetServer;
    let short: FleetServer;
    let dir: string;
    let caFile: string;

    before(async () => {
      assert.equal(backend.missing, false, backend.missing || '');
      dir = await tempDir('mirror-fleet-api-');
      [fleet, short] = await Promise.all([startFleet(backend), startFleet(backend, SHORT)]);
      caFile = path.join(dir, 'ca.pem');
      await writeFile(caFile, fleet.ca.certificate);
    });
    after(async () => {
      await fleet?.close();
      await short?.close();
      await removeDir(dir);
      assert.deepEqual(fleet?.errors ?? [], []);
      assert.deepEqual(short?.errors ?? [], []);
    });

    test('registration answers 201 with the seed’s body; the certificate verifies for client auth, names the agent and lasts 24 h; the token’s labels join the agent’s', async () => {
      const token = await fleet.registrationToken({ team: 'ops', site: 'berlin' });
      const issuedAfter = Date.now();
      const answer = await registerWith(fleet, token, registration('agent-prod-01', { labels: { datacenter: 'us-east-1', team: 'dev' } }));
      const issuedBefore = Date.now();
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      assert.match(String(answer.headers['content-type']), /^application\/json/);
      const body = answer.body;
      assert.deepEqual(Object.keys(body).sort(), ['agentId', 'certificate', 'config', 'token']);
      assert.match(body.agentId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.match(body.token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
      assert.equal(decodeJwt(body.token).sub, body.agentId);
      assert.deepEqual(body.config, { heartbeatInterval: 30, taskPollInterval: 5, logLevel: 'info' });
      assert.deepEqual(Object.keys(body.certificate).sort(), ['ca', 'cert', 'expiresAt', 'key']);
      assert.match(body.certificate.cert, /^-----BEGIN CERTIFICATE-----\n/);
      assert.match(body.certificate.key, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.equal(body.certificate.ca, fleet.ca.certificate);
      assert.match(body.certificate.expiresAt, ISO_SECONDS);

      const expiresAt = Date.parse(body.certificate.expiresAt);
      assert.ok(expiresAt >= issuedAfter + DAY_MS - 1000 && expiresAt <= issuedBefore + DAY_MS, `expires 24 h after issue, got ${body.certificate.expiresAt}`);
      const cert = new X509Certificate(body.certificate.cert);
      assert.equal(Date.parse(cert.validTo), expiresAt, 'expiresAt is the certificate’s notAfter');
      assert.ok(cert.checkPrivateKey(createPrivateKey(body.certificate.key)), 'the key is the certificate’s');
      assert.ok(cert.checkIssued(new X509Certificate(fleet.ca.certificate)));

      const certFile = path.join(dir, 'registered.crt');
      await writeFile(certFile, body.certificate.cert);
      const verified = await run('openssl', ['verify', '-CAfile', caFile, '-purpose', 'sslclient', certFile]);
      assert.equal(verified.stdout.trim(), `${certFile}: OK`);
      const text = (await run('openssl', ['x509', '-in', certFile, '-noout', '-text'])).stdout;
      assert.match(text, new RegExp(`Subject: CN ?= ?${body.agentId}\\n`));
      assert.match(text, new RegExp(`URI:${agentUri(body.agentId)}(\\n|,)`));
      assert.match(text, /TLS Web Client Authentication/);

      const details = await fleet.operator('GET', `/api/v1/agents/${body.agentId}`);
      assert.equal(details.status, 200, JSON.stringify(details.body));
      assert.deepEqual(details.body.labels, { datacenter: 'us-east-1', team: 'ops', site: 'berlin' }, 'the operator’s labels on the token win');
      assert.equal(details.body.name, 'agent-prod-01');
      assert.equal(details.body.certificate.expiresAt, body.certificate.expiresAt);
      assert.equal(BigInt(`0x${details.body.certificate.serial}`), BigInt(`0x${cert.serialNumber}`));
    });

    test('mirror fleet token create --label prints the token alone on the last line, and it registers an agent with the label', async () => {
      const created = await runCli(['fleet', 'token', 'create', '--ttl', '1h', '--label', 'site=lisbon', '--label', 'tier=edge'], fleet.env);
      assert.equal(created.code, 0, created.stderr);
      const lines = created.stdout.trimEnd().split('\n');
      assert.ok(lines.length >= 2, `an explanation, then the token: ${created.stdout}`);
      const token = lines.at(-1)!;
      assert.match(token, /^[A-Za-z0-9_-]{22,}$/, 'the token alone: 128 bits or more, nothing around it');
      assert.doesNotMatch(created.stdout.slice(0, -token.length - 1), new RegExp(token), 'printed once');
      const answer = await registerWith(fleet, token, registration('cli-registered', { labels: { site: 'agent-says', own: 'yes' } }));
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      const details = await fleet.operator('GET', `/api/v1/agents/${answer.body.agentId}`);
      assert.deepEqual(details.body.labels, { site: 'lisbon', tier: 'edge', own: 'yes' });
      assertFleetError(await registerWith(fleet, token, registration('cli-registered-again')), 401, 'invalid_registration_token');
    });

    test('a token used twice, expired, unknown or missing answers 401 invalid_registration_token', async () => {
      const used = await fleet.registrationToken();
      assert.equal((await registerWith(fleet, used, registration('token-once'))).status, 201);
      assertFleetError(await registerWith(fleet, used, registration('token-twice')), 401, 'invalid_registration_token', /already been used/);

      const expired = await fleet.registrationToken();
      const expiresAt = new Date(Date.now() - 1000).toISOString();
      const updated = await withDatabase(fleet, (state) => state.db.updateTable('fleet_registration_tokens').set({ expires_at: expiresAt }).where('token_hash', '=', sha256Hex(expired)).executeTakeFirst());
      assert.equal(Number(updated.numUpdatedRows), 1, 'the token is stored by its sha256');
      assertFleetError(await registerWith(fleet, expired, registration('token-expired')), 401, 'invalid_registration_token', /expired/);

      assertFleetError(await registerWith(fleet, `fleetreg_${'A'.repeat(43)}`, registration('token-unknown')), 401, 'invalid_registration_token');
      assertFleetError(await registerWith(fleet, undefined, registration('token-missing')), 401, 'invalid_registration_token', /X-Agent-Token/);

      const listed = await fleet.operator('GET', '/api/v1/agents');
      const names = (listed.body as { name: string }[]).map((agent) => agent.name);
      for (const refused of ['token-twice', 'token-expired', 'token-unknown', 'token-missing']) assert.ok(!names.includes(refused), `${refused} was not registered`);
    });

    test('a registration refused with 400 does not use up its token; a name already registered answers 409 and does not either', async () => {
      const token = await fleet.registrationToken();
      const refusals: [unknown, RegExp][] = [
        [registration('bad name!'), /`name`/],
        [registration('capability-outside', { capabilities: ['docker', 'kubernetes'] }), /`capabilities\.1`/],
        [registration('labels-not-strings', { labels: { datacenter: 1 } }), /`labels\.datacenter`/],
        [registration('labels-not-a-map', { labels: ['a', 'b'] }), /`labels`/],
        [{ name: 'no-version', capabilities: [] }, /`version`/],
        ['{"name": "malformed", "version": ', /JSON/],
      ];
      for (const [body, message] of refusals) assertFleetError(await registerWith(fleet, token, body), 400, 'invalid_request', message);

      const first = await fleet.register('taken-name');
      assertFleetError(await registerWith(fleet, token, registration('taken-name')), 409, 'name_taken', /taken-name/);

      const answer = await registerWith(fleet, token, registration('after-refusals'));
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      assert.notEqual(answer.body.agentId, first.id);
      assertFleetError(await registerWith(fleet, token, registration('after-refusals-2')), 401, 'invalid_registration_token');
    });

    test('registrations racing on one token: exactly one 201, the rest 401', async () => {
      const token = await fleet.registrationToken();
      const names = Array.from({ length: 5 }, (_, index) => `racer-${index}`);
      const answers = await Promise.all(names.map((name) => registerWith(fleet, token, registration(name))));
      const created = answers.filter((answer) => answer.status === 201);
      assert.equal(created.length, 1, JSON.stringify(answers.map((answer) => answer.status)));
      for (const answer of answers.filter((entry) => entry.status !== 201)) assertFleetError(answer, 401, 'invalid_registration_token');
      const listed = await fleet.operator('GET', '/api/v1/agents');
      const racers = (listed.body as { id: string; name: string }[]).filter((agent) => agent.name.startsWith('racer-'));
      assert.deepEqual(racers.map((agent) => agent.id), [created[0]!.body.agentId]);
    });

    test('the agent’s curl session: register with --cacert, then heartbeat with --cert, --key and its JWT', async () => {
      const token = await fleet.registrationToken();
      const curl = async (args: string[]) => {
        const { stdout } = await run('curl', ['-sS', '--cacert', caFile, '-w', '\n%{http_code}', ...args]);
        const at = stdout.lastIndexOf('\n');
        return { status: Number(stdout.slice(at + 1)), body: JSON.parse(stdout.slice(0, at)) };
      };
      const registered = await curl([
        '-H', `X-Agent-Token: ${token}`,
        '-H', 'Content-Type: application/json',
        '-d', JSON.stringify({ name: 'curl-agent', version: '1.0.0', capabilities: ['docker', 'compose'], labels: { datacenter: 'us-east-1', role: 'deployment' } }),
        `${fleet.url}/api/v1/agents/register`,
      ]);
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      const { agentId, token: jwt, certificate } = registered.body;
      const certFile = path.join(dir, 'agent.crt');
      const keyFile = path.join(dir, 'agent.key');
      await writeFile(certFile, certificate.cert);
      await writeFile(keyFile, certificate.key, { mode: 0o600 });
      const heartbeat = ['-H', 'Content-Type: application/json', '-d', JSON.stringify({ status: 'healthy', resourceUsage: { cpu: 15.5, memory: 45.2, disk: 60.0 }, capabilities: ['docker', 'compose'], runningTasks: 2 }), `${fleet.url}/api/v1/agents/${agentId}/heartbeat`];
      const beat = await curl(['--cert', certFile, '--key', keyFile, '-H', `Authorization: Bearer ${jwt}`, ...heartbeat]);
      assert.equal(beat.status, 200, JSON.stringify(beat.body));
      assert.deepEqual(beat.body, { tasks: [] });
      const withoutCertificate = await curl(['-H', `Authorization: Bearer ${jwt}`, ...heartbeat]);
      assert.equal(withoutCertificate.status, 401);
      assert.equal(withoutCertificate.body.error, 'unauthorized');
      const details = await fleet.operator('GET', `/api/v1/agents/${agentId}`);
      assert.deepEqual(details.body.resourceUsage, { cpu: 15.5, memory: 45.2, disk: 60 });
      assert.equal(details.body.runningTasks, 2);
    });

    test('agent calls refused: no certificate, another CA’s, self-signed or expired (401), another agent’s (403); no JWT, another agent’s or a forged one (401)', async () => {
      const alpha = await fleet.register('refusals-alpha');
      const beta = await fleet.register('refusals-beta');
      const own: Credentials = { cert: alpha.cert, key: alpha.key, token: alpha.token };
      for (const answer of await Promise.all(agentCalls(fleet, alpha.id, own))) {
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.deepEqual(answer.body, { tasks: [] }, 'a certificate of a day is not renewed yet');
      }

      await assertAgentCallsRefused(fleet, alpha.id, { token: alpha.token }, 401, 'unauthorized', /client certificate/);

      const otherCa = await loadOrCreateCa(path.join(dir, 'other-ca', 'ca.json'));
      const foreign = await otherCa.issueAgentCertificate(alpha.id, { ttlSeconds: 3600 });
      await assertAgentCallsRefused(fleet, alpha.id, { cert: foreign.cert, key: foreign.key!, token: alpha.token }, 401, 'unauthorized', /not issued by this fleet/);

      const selfCert = path.join(dir, 'self.crt');
      const selfKey = path.join(dir, 'self.key');
      await run('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-keyout', selfKey, '-out', selfCert, '-subj', `/CN=${alpha.id}`,
        '-addext', `subjectAltName=URI:${agentUri(alpha.id)}`, '-addext', 'extendedKeyUsage=clientAuth',
      ]);
      const selfSigned = { cert: await readFile(selfCert, 'utf8'), key: await readFile(selfKey, 'utf8') };
      assert.match((await run('openssl', ['x509', '-in', selfCert, '-noout', '-text'])).stdout, new RegExp(`URI:${agentUri(alpha.id)}`));
      await assertAgentCallsRefused(fleet, alpha.id, { ...selfSigned, token: alpha.token }, 401, 'unauthorized', /self-signed/);

      const expired = await fleet.ca.issueAgentCertificate(alpha.id, { ttlSeconds: 60, now: new Date(Date.now() - 2 * DAY_MS) });
      assert.ok(expired.expiresAt.getTime() < Date.now() - DAY_MS);
      await assertAgentCallsRefused(fleet, alpha.id, { cert: expired.cert, key: expired.key!, token: alpha.token }, 401, 'unauthorized', /expired/);

      await assertAgentCallsRefused(fleet, alpha.id, { cert: beta.cert, key: beta.key, token: alpha.token }, 403, 'forbidden', new RegExp(beta.id));
      await assertAgentCallsRefused(fleet, alpha.id, { cert: beta.cert, key: beta.key, token: beta.token }, 403, 'forbidden');

      await assertAgentCallsRefused(fleet, alpha.id, { cert: alpha.cert, key: alpha.key }, 401, 'unauthorized', /Bearer/);
      await assertAgentCallsRefused(fleet, alpha.id, { cert: alpha.cert, key: alpha.key, token: beta.token }, 401, 'unauthorized', new RegExp(beta.id));
      const claims = decodeJwt(alpha.token);
      const { privateKey } = await generateKeyPair('ES256');
      const forged = await new SignJWT({})
        .setProtectedHeader({ ...decodeProtectedHeader(alpha.token), alg: 'ES256' })
        .setSubject(alpha.id)
        .setIssuer(claims.iss!)
        .setAudience(claims.aud!)
        .setIssuedAt()
        .sign(privateKey);
      await assertAgentCallsRefused(fleet, alpha.id, { cert: alpha.cert, key: alpha.key, token: forged }, 401, 'unauthorized');
      await assertAgentCallsRefused(fleet, alpha.id, { cert: alpha.cert, key: alpha.key, token: await fleet.operatorToken() }, 401, 'unauthorized');

      const streamUrl = `${fleet.url.replace(/^https/, 'wss')}/api/v1/agents/${alpha.id}/task-stream`;
      await assert.rejects(openStream(streamUrl, { ca: fleet.ca.certificate, token: alpha.token }), (error: { status?: number; body?: { error?: string } }) => error.status === 401 && error.body?.error === 'unauthorized');
      await assert.rejects(openStream(streamUrl, { ca: fleet.ca.certificate, cert: beta.cert, key: beta.key, token: beta.token }), (error: { status?: number; body?: { error?: string } }) => error.status === 403 && error.body?.error === 'forbidden');
      await assert.rejects(openStream(streamUrl, { ca: fleet.ca.certificate, cert: alpha.cert, key: alpha.key }), (error: { status?: number }) => error.status === 401);

      for (const answer of await Promise.all(agentCalls(fleet, alpha.id, own))) assert.equal(answer.status, 200, 'the refusals left the agent able to call');
    });

    test('operator calls need a token (401) with the fleet:admin scope (403)', async () => {
      const agent = await fleet.register('operator-auth');
      const noScope = await fleet.operatorToken([]);
      const otherScope = await fleet.operatorToken(['upload']);
      const calls: [string, string, unknown][] = [
        ['GET', '/api/v1/agents', undefined],
        ['GET', `/api/v1/agents/${agent.id}`, undefined],
        ['PUT', `/api/v1/agents/${agent.id}`, { labels: { changed: 'yes' } }],
        ['DELETE', `/api/v1/agents/${agent.id}`, undefined],
        ['POST', `/api/v1/agents/${agent.id}/tasks`, { taskType: 'docker.pull' }],
        ['POST', '/api/v1/agents/registration-tokens', {}],
      ];
      for (const [method, pathname, body] of calls) {
        const anonymous = await httpsJson(`${fleet.url}${pathname}`, method, body, { ca: fleet.ca.certificate });
        assertFleetError(anonymous, 401, 'unauthorized');
        assert.match(String(anonymous.headers['www-authenticate']), /^Bearer /);
        assertFleetError(await fleet.operator(method, pathname, body, 'not-a-jwt'), 401, 'unauthorized');
        assertFleetError(await fleet.operator(method, pathname, body, agent.token), 401, 'unauthorized');
        assertFleetError(await fleet.operator(method, pathname, body, noScope), 403, 'forbidden', /fleet:admin/);
        assertFleetError(await fleet.operator(method, pathname, body, otherScope), 403, 'forbidden', /fleet:admin/);
      }
      const details = await fleet.operator('GET', `/api/v1/agents/${agent.id}`);
      assert.equal(details.status, 200);
      assert.deepEqual(details.body.labels, {}, 'the refused update changed nothing');
      assert.deepEqual(details.body.tasks, { running: [], queued: [], recent: [] }, 'the refused task was not created');
    });

    test('list filters by status and capability; an unknown filter value answers 400', async () => {
      const docker = await fleet.register('filter-docker', { capabilities: ['docker'] });
      const ssh = await fleet.register('filter-ssh', { capabilities: ['ssh', 'winrm'] });
      const degraded = await fleet.register('filter-degraded', { capabilities: ['docker', 'nomad'] });
      const beat = await degraded.heartbeat({ status: 'updating', resourceUsage: { cpu: 90 }, runningTasks: 1 });
      assert.equal(beat.status, 200);
      const mine = new Set([docker.id, ssh.id, degraded.id]);
      const list = async (query: string) => {
        const answer = await fleet.operator('GET', `/api/v1/agents${query}`);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.ok(Array.isArray(answer.body));
        return answer.body as { id: string; name: string; status: string; capabilities: string[] }[];
      };
      const names = (agents: { id: string; name: string }[]) => agents.filter((agent) => mine.has(agent.id)).map((agent) => agent.name).sort();

      const all = await list('');
      assert.deepEqual(names(all), ['filter-degraded', 'filter-docker', 'filter-ssh']);
      const summary = all.find((agent) => agent.id === degraded.id)!;
      for (const field of ['id', 'name', 'version', 'status', 'capabilities', 'lastHeartbeat', 'resourceUsage']) assert.ok(field in summary, `list entries have ${field}`);
      assert.equal(summary.status, 'degraded');
      assert.deepEqual((summary as unknown as { resourceUsage: unknown }).resourceUsage, { cpu: 90 });

      const withSsh = await list('?capability=ssh');
      assert.deepEqual(names(withSsh), ['filter-ssh']);
      assert.ok(withSsh.every((agent) => agent.capabilities.includes('ssh')));
      assert.deepEqual(names(await list('?capability=docker')), ['filter-degraded', 'filter-docker']);
      assert.deepEqual(names(await list('?capability=ecs')), []);

      const online = await list('?status=online');
      assert.deepEqual(names(online), ['filter-docker', 'filter-ssh']);
      assert.ok(online.every((agent) => agent.status === 'online'));
      const degradedList = await list('?status=degraded');
      assert.deepEqual(names(degradedList), ['filter-degraded']);
      assert.ok(degradedList.every((agent) => agent.status === 'degraded'));
      assert.deepEqual(names(await list('?status=offline')), []);
      assert.deepEqual(names(await list('?status=online&capability=docker')), ['filter-docker']);

      assertFleetError(await fleet.operator('GET', '/api/v1/agents?status=sleeping'), 400, 'invalid_request', /`status`.*sleeping/);
      assertFleetError(await fleet.operator('GET', '/api/v1/agents?capability=kubernetes'), 400, 'invalid_request', /`capability`.*kubernetes/);

      assert.equal((await degraded.heartbeat()).status, 200);
      assert.deepEqual(names(await list('?status=online')), ['filter-degraded', 'filter-docker', 'filter-ssh'], 'a healthy heartbeat brings it back online');
    });

    test('get shows the full details (labels, capabilities, certificate, resource usage, tasks); update changes labels and capabilities and refuses unknown fields', async () => {
      const agent = await fleet.register('detailed', { capabilities: ['docker', 'compose'], labels: { datacenter: 'us-east-1' } });
      assert.equal((await agent.heartbeat({ status: 'healthy', resourceUsage: { cpu: 15.5, memory: 45.2, disk: 60 }, runningTasks: 2 })).status, 200);
      const created = await fleet.operator('POST', `/api/v1/agents/${agent.id}/tasks`, { taskType: 'docker.pull', payload: { image: 'myapp', tag: 'v2.3.1' }, credentials: { 'registry.password': 'hunter2-secret' }, timeout: 300, priority: 10 });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const queuedOnly = await fleet.operator('POST', `/api/v1/agents/${agent.id}/tasks`, { taskType: 'docker.run', priority: 0 });
      assert.equal(queuedOnly.status, 201);

      const polled = await agent.call('GET', `/api/v1/agents/${agent.id}/tasks`);
      assert.equal(polled.status, 200);
      const delivered = polled.body.tasks.find((task: { taskId: string }) => task.taskId === created.body.taskId);
      assert.deepEqual(delivered.credentials, { 'registry.password': 'hunter2-secret' }, 'the agent gets the credentials');
      const queuedOnlyDelivered = polled.body.tasks.find((task: { taskId: string }) => task.taskId === queuedOnly.body.taskId);
      assert.ok(queuedOnlyDelivered, 'the poll delivers both tasks');
      const third = await fleet.operator('POST', `/api/v1/agents/${agent.id}/tasks`, { taskType: 'docker.stop' });
      assert.equal(third.status, 201);

      const details = await fleet.operator('GET', `/api/v1/agents/${agent.id}`);
      assert.equal(details.status, 200, JSON.stringify(details.body));
      const body = details.body;
      assert.equal(body.id, agent.id);
      assert.equal(body.name, 'detailed');
      assert.equal(body.version, '1.0.0');
      assert.equal(body.status, 'online');
      assert.deepEqual(body.capabilities, ['docker', 'compose']);
      assert.deepEqual(body.labels, { datacenter: 'us-east-1' });
      assert.deepEqual(body.resourceUsage, { cpu: 15.5, memory: 45.2, disk: 60 });
      assert.equal(body.runningTasks, 2);
      assert.match(body.lastHeartbeat, ISO_SECONDS);
      assert.equal(body.certificate.expiresAt, agent.registration.certificate.expiresAt);
      assert.deepEqual(body.tasks.running.map((task: { taskId: string }) => task.taskId).sort(), [created.body.taskId, queuedOnly.body.taskId].sort());
      assert.deepEqual(body.tasks.queued.map((task: { taskId: string }) => task.taskId), [third.body.taskId]);
      const running = body.tasks.running.find((task: { taskId: string }) => task.taskId === created.body.taskId);
      assert.equal(running.state, 'leased');
      assert.deepEqual(running.credentialKeys, ['registry.password']);
      assert.doesNotMatch(JSON.stringify(body), /hunter2-secret/, 'operators never see credential values');

      const updated = await fleet.operator('PUT', `/api/v1/agents/${agent.id}`, { labels: { datacenter: 'us-west-2' }, capabilities: ['docker', 'compose', 'ssh'] });
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
      assert.deepEqual(updated.body.labels, { datacenter: 'us-west-2' });
      assert.deepEqual(updated.body.capabilities, ['docker', 'compose', 'ssh']);
      assert.equal(updated.body.id, agent.id);
      const onlyCapabilities = await fleet.operator('PUT', `/api/v1/agents/${agent.id}`, { capabilities: ['ssh'] });
      assert.equal(onlyCapabilities.status, 200);
      assert.deepEqual(onlyCapabilities.body.labels, { datacenter: 'us-west-2' }, 'labels not given stay');
      assert.deepEqual(onlyCapabilities.body.capabilities, ['ssh']);

      assertFleetError(await fleet.operator('PUT', `/api/v1/agents/${agent.id}`, { labels: { datacenter: 'eu' }, color: 'red' }), 400, 'invalid_request', /color/);
      assertFleetError(await fleet.operator('PUT', `/api/v1/agents/${agent.id}`, { capabilities: ['kubernetes'] }), 400, 'invalid_request');
      assertFleetError(await fleet.operator('PUT', `/api/v1/agents/${agent.id}`, {}), 400, 'invalid_request');
      assertFleetError(await fleet.operator('PUT', `/api/v1/agents/${agent.id}`, { labels: { ok: 1 } }), 400, 'invalid_request');
      const after = await fleet.operator('GET', `/api/v1/agents/${agent.id}`);
      assert.deepEqual(after.body.labels, { datacenter: 'us-west-2' }, 'refused updates changed nothing');
      assert.deepEqual(after.body.capabilities, ['ssh']);
      const withSsh = await fleet.operator('GET', '/api/v1/agents?capability=ssh');
      assert.ok((withSsh.body as { id: string }[]).some((entry) => entry.id === agent.id), 'the capability filter sees the update');

      const unknown = randomUUID();
      assertFleetError(await fleet.operator('GET', `/api/v1/agents/${unknown}`), 404, 'agent_not_found');
      assertFleetError(await fleet.operator('PUT', `/api/v1/agents/${unknown}`, { labels: {} }), 404, 'agent_not_found');
    });

    test('delete answers {"deleted": true} and revokes at once: the next heartbeat is 403, the stream closes with 4403, the agent is gone', async () => {
      const agent = await fleet.register('to-delete');
      const bystander = await fleet.register('bystander');
      const stream = await agent.stream();
      const bystanderStream = await bystander.stream();
      assert.equal((await agent.heartbeat()).status, 200);

      const deleted = await fleet.operator('DELETE', `/api/v1/agents/${agent.id}`);
      assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
      assert.deepEqual(deleted.body, { deleted: true });

      const closed = await within(stream.closed, 5_000, 'the deleted agent’s stream closing');
      assert.equal(closed.code, CLOSE_REVOKED);
      assert.equal(closed.code, 4403);
      assertFleetError(await agent.heartbeat(), 403, 'forbidden', /deleted/);
      assertFleetError(await agent.call('GET', `/api/v1/agents/${agent.id}/tasks`), 403, 'forbidden');
      await assert.rejects(agent.stream(), (error: { status?: number }) => error.status === 403, 'a new stream is refused');

      const listed = await fleet.operator('GET', '/api/v1/agents');
      assert.ok(!(listed.body as { id: string }[]).some((entry) => entry.id === agent.id), 'gone from the list');
      assert.ok((listed.body as { id: string }[]).some((entry) => entry.id === bystander.id));
      assertFleetError(await fleet.operator('GET', `/api/v1/agents/${agent.id}`), 404, 'agent_not_found');
      assertFleetError(await fleet.operator('DELETE', `/api/v1/agents/${agent.id}`), 404, 'agent_not_found');
      assertFleetError(await fleet.operator('POST', `/api/v1/agents/${agent.id}/tasks`, { taskType: 'docker.pull' }), 404, 'agent_not_found');
      assertFleetError(await fleet.operator('DELETE', `/api/v1/agents/${randomUUID()}`), 404, 'agent_not_found');

      assert.equal(bystanderStream.socket.readyState, bystanderStream.socket.OPEN, 'another agent’s stream stays open');
      assert.equal((await bystander.heartbeat()).status, 200);
      bystanderStream.close();

      const again = await registerWith(fleet, await fleet.registrationToken(), registration('to-delete'));
      assert.equal(again.status, 201, 'the name is free again');
      assert.notEqual(again.body.agentId, agent.id);
    });

    test('/readyz shows the fleet CA and its expiry; /metrics counts agents by status and heartbeats', async () => {
      const agent = await fleet.register('metrics-agent');
      // The blob store's directory appears with the first upload; the fleet needs none, /readyz does.
      await mkdir(path.join(fleet.env.MIRROR_DATA_DIR!, 'blobs'), { recursive: true });
      const main = await listen({ app: fleet.sidecar.app, port: 0, host: '127.0.0.1' });
      try {
        const ready = await fetch(`${main.url}/readyz`);
        const readiness = (await ready.json()) as { status: string; checks: Record<string, string>; details: { fleetCa: { expiresAt: string; daysLeft: number } } };
        assert.equal(ready.status, 200, JSON.stringify(readiness));
        assert.equal(readiness.status, 'ready');
        assert.equal(readiness.checks.fleetCa, 'ok');
        assert.equal(readiness.details.fleetCa.expiresAt, fleet.ca.expiresAt.toISOString());
        assert.equal(Date.parse(readiness.details.fleetCa.expiresAt), Date.parse(new X509Certificate(fleet.ca.certificate).validTo));
        assert.ok(readiness.details.fleetCa.daysLeft > 3000, 'a new CA lasts ten years');

        const scrape = async () => {
          const answer = await fetch(`${main.url}/metrics`);
          assert.equal(answer.status, 200);
          return answer.text();
        };
        const before = await scrape();
        assert.match(before, /^# TYPE fleet_agents gauge$/m);
        const online = (await fleet.operator('GET', '/api/v1/agents?status=online')).body as unknown[];
        assert.ok(online.length > 0);
        assert.equal(sample(before, 'fleet_agents{status="online"}'), online.length);
        const degraded = (await fleet.operator('GET', '/api/v1/agents?status=degraded')).body as unknown[];
        assert.equal(sample(before, 'fleet_agents{status="degraded"}'), degraded.length);
        const offline = (await fleet.operator('GET', '/api/v1/agents?status=offline')).body as unknown[];
        assert.equal(sample(before, 'fleet_agents{status="offline"}'), offline.length);

        assert.equal((await agent.heartbeat()).status, 200);
        assert.equal((await agent.heartbeat({ status: 'draining', resourceUsage: {}, runningTasks: 0 })).status, 200);
        const afterBeats = await scrape();
        assert.equal(sample(afterBeats, 'fleet_heartbeats_total'), sample(before, 'fleet_heartbeats_total') + 2);
        assert.equal(sample(afterBeats, 'fleet_agents{status="online"}'), online.length - 1);
        assert.equal(sample(afterBeats, 'fleet_agents{status="degraded"}'), degraded.length + 1);
        assert.equal((await agent.heartbeat()).status, 200);
      } finally {
        await main.close();
      }
    });

    test('with a heartbeat interval of 1 s: registration hands it out, silence for 3 intervals is offline, and a task for an offline agent answers 503', async () => {
      const agent = await short.register('goes-quiet');
      assert.deepEqual(agent.registration.config, { heartbeatInterval: 1, taskPollInterval: 5, logLevel: 'info' });
      assert.equal((await agent.heartbeat()).status, 200);
      const fresh = await short.operator('GET', `/api/v1/agents/${agent.id}`);
      assert.equal(fresh.body.status, 'online');

      let seen = fresh.body;
      for (let waited = 0; seen.status !== 'offline' && waited < 10_000; waited += 250) {
        await sleep(250);
        seen = (await short.operator('GET', `/api/v1/agents/${agent.id}`)).body;
        assert.notEqual(seen.status, 'degraded');
      }
      assert.equal(seen.status, 'offline');
      assert.ok(Date.now() - Date.parse(seen.lastHeartbeat) >= 3_000, `offline only after 3 missed intervals (last heartbeat ${seen.lastHeartbeat})`);
      const offline = (await short.operator('GET', '/api/v1/agents?status=offline')).body as { id: string; status: string }[];
      assert.deepEqual(offline.filter((entry) => entry.id === agent.id).map((entry) => entry.status), ['offline']);
      assert.ok(!((await short.operator('GET', '/api/v1/agents?status=online')).body as { id: string }[]).some((entry) => entry.id === agent.id));

      const offlineTaskPath = `/api/v1/agents/${agent.id}/tasks`;
      assertFleetError(await short.operator('POST', offlineTaskPath, { taskType: 'docker.pull' }), 503, 'agent_offline', new RegExp(agent.id));
      assert.deepEqual((await short.operator('GET', `/api/v1/agents/${agent.id}`)).body.tasks.queued, [], 'no task was created');

      assert.equal((await agent.heartbeat()).status, 200);
      assert.equal((await short.operator('GET', `/api/v1/agents/${agent.id}`)).body.status, 'online');
      const created = await short.operator('POST', `/api/v1/agents/${agent.id}/tasks`, { taskType: 'docker.pull' });
      assert.equal(created.status, 201, JSON.stringify(created.body));
    });

    test('renewal: near its expiry a heartbeat answers certificateRenewal for the same key, later, verified by openssl, and usable with the original key', async () => {
      const agent = await short.register('renews');
      const original = new X509Certificate(agent.cert);
      const first = await agent.heartbeat();
      assert.equal(first.status, 200);
      assert.deepEqual(first.body, { tasks: [] }, 'no renewal a minute before expiry');

      let renewal: { cert: string; expiresAt: string } | undefined;
      for (let waited = 0; !renewal && waited < 15_000; waited += 500) {
        await sleep(500);
        const beat = await agent.heartbeat();
        assert.equal(beat.status, 200, JSON.stringify(beat.body));
        renewal = beat.body.certificateRenewal;
      }
      assert.ok(renewal, 'a heartbeat within FLEET_RENEW_BEFORE_SECONDS of expiry carries certificateRenewal');
      assert.deepEqual(Object.keys(renewal).sort(), ['cert', 'expiresAt']);
      assert.match(renewal.expiresAt, ISO_SECONDS);
      const renewed = new X509Certificate(renewal.cert);
      assert.equal(spki(renewal.cert), spki(agent.cert), 'the same public key');
      assert.ok(renewed.checkPrivateKey(createPrivateKey(agent.key)));
      assert.equal(Date.parse(renewed.validTo), Date.parse(renewal.expiresAt));
      assert.ok(Date.parse(renewal.expiresAt) > Date.parse(original.validTo), 'a later expiry');
      assert.notEqual(renewed.serialNumber, original.serialNumber);
      assert.equal(renewed.subject, original.subject);
      assert.equal(renewed.subjectAltName, `URI:${agentUri(agent.id)}`);

      const renewedFile = path.join(dir, 'renewed.crt');
      const shortCaFile = path.join(dir, 'short-ca.pem');
      await writeFile(renewedFile, renewal.cert);
      await writeFile(shortCaFile, short.ca.certificate);
      assert.equal((await run('openssl', ['verify', '-CAfile', shortCaFile, '-purpose', 'sslclient', renewedFile])).stdout.trim(), `${renewedFile}: OK`);

      const withRenewed = await agent.call('POST', `/api/v1/agents/${agent.id}/heartbeat`, HEALTHY, { cert: renewal.cert, key: agent.key });
      assert.equal(withRenewed.status, 200, JSON.stringify(withRenewed.body));
      assert.deepEqual(withRenewed.body, { tasks: [] }, 'the renewed certificate is not yet due for renewal');
      const details = await short.operator('GET', `/api/v1/agents/${agent.id}`);
      assert.equal(details.body.certificate.expiresAt, renewal.expiresAt);
      assert.equal(BigInt(`0x${details.body.certificate.serial}`), BigInt(`0x${renewed.serialNumber}`));
    });
  });
}
