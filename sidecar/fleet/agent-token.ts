// The JWT an agent gets at registration and sends as `Authorization: Bearer` on every call. It is
// signed with a key of the fleet's own (ES256, under the data directory), so no upload or operator
// token passes for an agent's, nor the reverse. It has no expiry of its own: it lives as long as
// the registration, which deleting the agent ends at once, and it opens nothing without the
// agent's client certificate, which lives a day.
import { randomUUID } from 'node:crypto';
import { errors, importJWK, jwtVerify, SignJWT, type CryptoKey, type KeyObject } from 'jose';
import { loadOrCreateKey } from '../auth/jwt.ts';

const ALG = 'ES256';
const ISSUER = 'mirror-fleet';
const AUDIENCE = 'mirror-fleet-agent';

export interface AgentTokens {
  mint(agentId: string, now: Date): Promise<string>;
  /** The agent id the token was issued to, or undefined for a token this fleet did not issue. */
  verify(token: string): Promise<string | undefined>;
}

export async function agentTokens({ keyFile }: { keyFile: string }): Promise<AgentTokens> {
  const jwk = await loadOrCreateKey(keyFile);
  const { d: _private, ...publicJwk } = jwk;
  const signingKey = (await importJWK(jwk, ALG)) as CryptoKey | KeyObject;
  const verifyKey = (await importJWK(publicJwk, ALG)) as CryptoKey | KeyObject;
  return {
    mint(agentId, now) {
      return new SignJWT({})
        .setProtectedHeader({ alg: ALG, kid: jwk.kid!, typ: 'JWT' })
        .setSubject(agentId)
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt(Math.floor(now.getTime() / 1000))
        .setJti(randomUUID())
        .sign(signingKey);
    },
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, verifyKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: [ALG], requiredClaims: ['sub'] });
        return payload.sub;
      } catch (error) {
        if (error instanceof errors.JOSEError) return undefined;
        throw error;
      }
    },
  };
}
