// Fleet agents (seed 004): each registered once with a one-time token an operator created on the
// other replica, then heartbeating on a loop against the live replicas' fleet listeners in turn,
// over mutual TLS with the certificate and token registration gave it, one kept-alive connection
// per replica. At the end every agent must be online on every replica.
import { Agent, request } from 'node:https';
import type { Replica } from './cluster.ts';
import { jsonOf, type Answer, type Traffic } from './traffic.ts';

/** Pause between one agent's heartbeats: far more often than an agent would, so the soak sees many. */
const HEARTBEAT_PAUSE_MS = 100;
const BEAT = { status: 'healthy', resourceUsage: { cpu: 12.5, memory: 40, disk: 60 }, capabilities: ['docker', 'compose'], runningTasks: 0 };

export interface SoakAgent {
  id: string;
  name: string;
  /** The JWT from registration. */
  token: string;
  /** Presents the agent's certificate and trusts the fleet CA; keeps connections alive between heartbeats. */
  tls: Agent;
}

export interface FleetAccess {
  replicas: Replica[];
  /** The fleet CA's certificate (PEM): the replicas' fleet listeners present certificates it issued. */
  ca: string;
  /** A token with the fleet:admin scope. */
  operatorToken: string;
}

/** Registers `count` agents named soak-agent-<n>; fails the soak's start when a replica refuses. */
export async function registerAgents(count: number, { replicas, ca, operatorToken }: FleetAccess): Promise<SoakAgent[]> {
  const operator = new Agent({ ca });
  const agents: SoakAgent[] = [];
  for (let n = 0; n < count; n++) {
    const issuing = replicas[n % replicas.length]!;
    const registering = replicas[(n + 1) % replicas.length]!;
    const created = await httpsAnswer(`${issuing.fleetUrl}/api/v1/agents/registration-tokens`, 'POST', { ttlSeconds: 3600, labels: { role: 'soak' } }, operator, { Authorization: `Bearer ${operatorToken}` });
    if (created.status !== 201) throw new Error(`registration token on ${issuing.name}: ${created.status} ${created.body.toString()}`);
    const name = `soak-agent-${n + 1}`;
    const { token: registrationToken } = jsonOf(created) as { token: string };
    const registered = await httpsAnswer(`${registering.fleetUrl}/api/v1/agents/register`, 'POST', { name, version: '1.0.0', capabilities: ['docker', 'compose'] }, operator, { 'X-Agent-Token': registrationToken });
    if (registered.status !== 201) throw new Error(`register ${name} on ${registering.name}: ${registered.status} ${registered.body.toString()}`);
    const { agentId, token, certificate } = jsonOf(registered) as { agentId: string; token: string; certificate: { cert: string; key: string; ca: string } };
    agents.push({ id: agentId, name, token, tls: new Agent({ keepAlive: true, ca: certificate.ca, cert: certificate.cert, key: certificate.key }) });
  }
  operator.destroy();
  return agents;
}

export interface HeartbeatDeps {
  traffic: Traffic;
  replicas: Replica[];
  running: () => boolean;
}

/** Heartbeats until the soak stops, on the live replicas in turn; resolves with how many were answered 200. */
export async function heartbeater(agent: SoakAgent, offset: number, { traffic, replicas, running }: HeartbeatDeps): Promise<number> {
  let answered = 0;
  for (let n = 0; running(); n++) {
    const live = replicas.filter((each) => each.alive);
    const target = live[(n + offset) % live.length] ?? replicas[0]!;
    const label = `POST /api/v1/agents/${agent.id}/heartbeat`;
    const answer = await traffic.send('heartbeat', target, label, () => httpsAnswer(`${target.fleetUrl}/api/v1/agents/${agent.id}/heartbeat`, 'POST', BEAT, agent.tls, { Authorization: `Bearer ${agent.token}` }));
    if (answer?.status === 200 && Array.isArray((jsonOf(answer) as { tasks?: unknown } | undefined)?.tasks)) answered++;
    else if (answer) traffic.fail('heartbeat', `${target.name} ${label}: ${answer.status} ${answer.body.toString().slice(0, 200)}`);
    await new Promise((resolve) => setTimeout(resolve, HEARTBEAT_PAUSE_MS));
  }
  return answered;
}

/** The agents each replica's operator list shows online, and what it shows otherwise. */
export async function agentsOnline(agents: SoakAgent[], { replicas, ca, operatorToken }: FleetAccess): Promise<{ online: number; failures: string[] }> {
  const operator = new Agent({ ca });
  const failures: string[] = [];
  let online = 0;
  for (const each of replicas) {
    const answer = await httpsAnswer(`${each.fleetUrl}/api/v1/agents`, 'GET', undefined, operator, { Authorization: `Bearer ${operatorToken}` });
    const listed = answer.status === 200 ? (jsonOf(answer) as { id: string; status: string }[]) : [];
    for (const agent of agents) {
      const status = listed.find((entry) => entry.id === agent.id)?.status;
      if (status === 'online') online++;
      else failures.push(`${agent.name} is ${status ?? `not listed (${answer.status})`} on ${each.name}`);
    }
  }
  operator.destroy();
  return { online, failures };
}

/** One HTTPS request through `agent`, its body read to the end. */
function httpsAnswer(url: string, method: string, body: unknown, agent: Agent, headers: Record<string, string>): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: { ...headers, ...(payload === undefined ? {} : { 'Content-Type': 'application/json' }) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}
