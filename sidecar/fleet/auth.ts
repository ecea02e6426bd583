// Who may call what on the fleet listener. An agent call needs both a client certificate from the
// fleet CA, unexpired, naming the agent in the path, and the agent's JWT; a deleted agent's are
// refused at once. An operator call needs a Bearer token from the sidecar's issuer with the
// `fleet:admin` scope. The TLS layer asks every client for a certificate but lets one without
// through, so registration and operators reach their routes; this file decides.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Middleware } from 'koa';
import { AuthError, type Principal, type TokenVerifier } from '../auth/jwt.ts';
import type { AgentTokens } from './agent-token.ts';
import type { FleetAgent, FleetAgents } from './agents.ts';
import { agentUri } from './ca.ts';
import { FleetError } from './errors.ts';

export const OPERATOR_SCOPE = 'fleet:admin';

/** What the auth middlewares leave in `ctx.state`. */
export interface FleetAuthState {
  agent?: FleetAgent;
  /** The presented client certificate's expiry and public key, for renewals. */
  certificate?: PresentedCertificate;
  operator?: Principal;
}

export interface PresentedCertificate {
  expiresAt: Date;
  /** SPKI, PEM. */
  publicKey: string;
}

export interface AgentAuthenticator {
  (req: IncomingMessage, agentId: string): Promise<{ agent: FleetAgent; certificate: PresentedCertificate }>;
  /** Drops what is known of the agent, so its next call reads it again (it was deleted or changed). */
  forget(agentId: string): void;
}

/** Per TLS connection: its certificate, read once, and the last token that verified on it. */
interface ConnectionIdentity {
  agentId: string | undefined;
  certificate: PresentedCertificate;
  verifiedToken?: string;
}

/**
 * How long a live agent's row is trusted without reading it again. Deletion drops it at once on
 * every replica (the fleet's `agent_deleted` event); this bounds how long a replica that missed
 * the event could still let a deleted agent in.
 */
const LIVE_AGENT_MS = 5_000;
const LIVE_AGENTS_MAX = 100_000;

export function agentAuthenticator({ tokens, agents, now = () => Date.now() }: { tokens: AgentTokens; agents: Pick<FleetAgents, 'get'>; now?: () => number }): AgentAuthenticator {
  const connections = new WeakMap<TLSSocket, ConnectionIdentity>();
  const live = new Map<string, { agent: FleetAgent; until: number }>();

  async function authenticateAgent(req: IncomingMessage, agentId: string) {
    const socket = req.socket as TLSSocket;
    let identity = connections.get(socket);
    if (!identity) {
      if (typeof socket.getPeerX509Certificate !== 'function') throw new FleetError('unauthorized', 'Agent calls need TLS with a client certificate');
      const peer = socket.getPeerX509Certificate();
      if (!peer) throw new FleetError('unauthorized', 'A client certificate issued by this fleet is required; register to get one');
      if (!socket.authorized) throw new FleetError('unauthorized', `The client certificate was refused: ${describeTlsError(String(socket.authorizationError))}`);
      const uri = peer.subjectAltName?.split(', ').find((name) => name.startsWith('URI:urn:mirror:fleet:agent:'));
      identity = {
        agentId: uri?.slice('URI:'.length + agentUri('').length),
        certificate: { expiresAt: new Date(peer.validTo), publicKey: peer.publicKey.export({ type: 'spki', format: 'pem' }).toString() },
      };
      connections.set(socket, identity);
    }
    if (identity.agentId !== agentId) throw new FleetError('forbidden', `This certificate belongs to ${identity.agentId ? `agent ${identity.agentId}` : 'no agent'}, not to agent ${agentId}`);
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) throw new FleetError('unauthorized', "The agent's token from registration is required as Authorization: Bearer", { 'WWW-Authenticate': 'Bearer realm="mirror-fleet"' });
    if (identity.verifiedToken !== token) {
      const subject = await tokens.verify(token);
      if (subject !== agentId) throw new FleetError('unauthorized', subject === undefined ? 'The Bearer token is not an agent token of this fleet' : `The Bearer token belongs to agent ${subject}, not to agent ${agentId}`, { 'WWW-Authenticate': 'Bearer realm="mirror-fleet", error="invalid_token"' });
      identity.verifiedToken = token;
    }
    const known = live.get(agentId);
    if (known && known.until > now()) return { agent: known.agent, certificate: identity.certificate };
    const agent = await agents.get(agentId);
    if (!agent) throw new FleetError('agent_not_found', `Agent ${agentId} not found`);
    if (agent.deleted_at !== null) throw new FleetError('forbidden', `Agent ${agentId} was deleted: its certificates and token are revoked`);
    if (live.size >= LIVE_AGENTS_MAX) live.clear();
    live.set(agentId, { agent, until: now() + LIVE_AGENT_MS });
    return { agent, certificate: identity.certificate };
  }

  return Object.assign(authenticateAgent, { forget: (agentId: string) => void live.delete(agentId) });
}

/** Koa middleware for the `:id` agent routes. */
export function requireAgent(authenticate: AgentAuthenticator): Middleware {
  return async function requireAgentHandler(ctx, next) {
    const { agent, certificate } = await authenticate(ctx.req, ctx.params.id!);
    Object.assign(ctx.state as FleetAuthState, { agent, certificate });
    await next();
  };
}

export function requireOperator(verifier: TokenVerifier): Middleware {
  return async function requireOperatorHandler(ctx, next) {
    const token = bearerToken(ctx.get('Authorization'));
    if (token === undefined) throw new FleetError('unauthorized', `An operator token with the ${OPERATOR_SCOPE} scope is required as Authorization: Bearer`, { 'WWW-Authenticate': 'Bearer realm="mirror-fleet"' });
    let principal: Principal;
    try {
      principal = await verifier.verify(token);
    } catch (error) {
      if (error instanceof AuthError) throw new FleetError('unauthorized', error.message, { 'WWW-Authenticate': 'Bearer realm="mirror-fleet", error="invalid_token"' });
      throw error;
    }
    if (!principal.scopes.includes(OPERATOR_SCOPE)) throw new FleetError('forbidden', `The token of ${principal.sub} lacks the ${OPERATOR_SCOPE} scope`);
    (ctx.state as FleetAuthState).operator = principal;
    await next();
  };
}

export function bearerToken(header: string | undefined): string | undefined {
  const match = /^bearer[ \t]+(\S+)\s*$/i.exec(header?.trim() ?? '');
  return match?.[1];
}

function describeTlsError(code: string): string {
  if (code === 'CERT_HAS_EXPIRED') return 'it has expired; register again';
  if (code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY') return 'it was not issued by this fleet\'s CA';
  if (code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN') return 'it is self-signed';
  if (code === 'CERT_NOT_YET_VALID') return 'it is not valid yet';
  return code;
}
