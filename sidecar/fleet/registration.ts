// One-time registration tokens and the registration they open (seed 004). A token is 256 random
// bits, kept only as its sha256, used by exactly one registration: using it and creating the agent
// are one transaction, so of two registrations racing on a token one gets 201 and the other 401,
// and a registration refused (400, 409) leaves the token unused.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { sha256Hex } from '../../generator/stores/hash.ts';
import { isUniqueViolation } from '../store/db.ts';
import type { Tables } from '../store/schema.ts';
import type { AgentTokens } from './agent-token.ts';
import type { FleetAgents } from './agents.ts';
import { parse, registerBody, type Capability } from './bodies.ts';
import type { FleetCa } from './ca.ts';
import { FleetError } from './errors.ts';

export const REGISTRATION_TOKEN_PREFIX = 'fleetreg_';

export interface RegistrationToken {
  token: string;
  expiresAt: Date;
  labels: Record<string, string>;
}

export async function createRegistrationToken(db: Kysely<Tables>, options: { ttlSeconds: number; labels: Record<string, string>; createdBy: string }, now: Date): Promise<RegistrationToken> {
  const token = `${REGISTRATION_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(now.getTime() + options.ttlSeconds * 1000);
  await db
    .insertInto('fleet_registration_tokens')
    .values({ token_hash: sha256Hex(token), labels: JSON.stringify(options.labels), created_by: options.createdBy, created_at: now.toISOString(), expires_at: expiresAt.toISOString(), used_at: null, agent_id: null })
    .execute();
  return { token, expiresAt, labels: options.labels };
}

export interface RegistrationDeps {
  db: Kysely<Tables>;
  agents: FleetAgents;
  ca: FleetCa;
  tokens: AgentTokens;
  certTtlSeconds: number;
  config: { heartbeatInterval: number; taskPollInterval: number; logLevel: string };
}

export interface Registration {
  agentId: string;
  token: string;
  config: RegistrationDeps['config'];
  certificate: { cert: string; key: string; ca: string; expiresAt: string };
}

export async function register(deps: RegistrationDeps, registrationToken: string | undefined, body: unknown, now: Date): Promise<Registration> {
  if (!registrationToken) throw new FleetError('invalid_registration_token', 'The X-Agent-Token header with a registration token is required');
  const tokenHash = sha256Hex(registrationToken);
  const stored = await deps.db.selectFrom('fleet_registration_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  refuseUnusable(stored, now);
  const request = parse(registerBody, body, 'registration');
  // The operator's labels on the token win over the agent's own.
  const labels = { ...request.labels, ...(JSON.parse(stored!.labels) as Record<string, string>) };
  const agentId = randomUUID();
  // Signing happens before the transaction, which stays short; a refused registration's certificate is never handed out.
  const certificate = await deps.ca.issueAgentCertificate(agentId, { ttlSeconds: deps.certTtlSeconds, now });
  const token = await deps.tokens.mint(agentId, now);
  try {
    await deps.db.transaction().execute(async (trx) => {
      const used = await trx
        .updateTable('fleet_registration_tokens')
        .set({ used_at: now.toISOString(), agent_id: agentId })
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now.toISOString())
        .executeTakeFirst();
      if (Number(used.numUpdatedRows) === 0) throw new FleetError('invalid_registration_token', 'The registration token has already been used');
      await deps.agents.insert(
        { id: agentId, name: request.name, version: request.version, capabilities: request.capabilities as Capability[], labels, certSerial: certificate.serial, certExpiresAt: certificate.expiresAt },
        now,
        trx,
      );
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new FleetError('name_taken', `An agent named ${request.name} is already registered; delete it first or choose another name`);
    throw error;
  }
  return {
    agentId,
    token,
    config: deps.config,
    certificate: { cert: certificate.cert, key: certificate.key!, ca: deps.ca.certificate, expiresAt: `${certificate.expiresAt.toISOString().slice(0, 19)}Z` },
  };
}

function refuseUnusable(stored: { used_at: string | null; expires_at: string } | undefined, now: Date): void {
  if (!stored) throw new FleetError('invalid_registration_token', 'The registration token is not one this fleet issued');
  if (stored.used_at !== null) throw new FleetError('invalid_registration_token', 'The registration token has already been used');
  if (stored.expires_at <= now.toISOString()) throw new FleetError('invalid_registration_token', `The registration token expired at ${stored.expires_at}`);
}
