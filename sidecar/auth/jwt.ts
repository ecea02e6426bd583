// Upload token verification: Amazon Cognito in production, the sidecar as its own issuer locally.
// jose does the cryptography and key-set caching; this file only pins algorithms and claims and
// turns jose's errors into messages a client can act on.
import path from 'node:path';
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { readOrCreateSecret } from '../secret-file.ts';

export interface Principal {
  sub: string;
  /** 'cognito' | 'local' */
  issuer: string;
  scopes: string[];
}

export interface TokenVerifier {
  /** Rejects with `AuthError` when the token is refused, `KeySetUnavailableError` when keys cannot be fetched. */
  verify(token: string): Promise<Principal>;
}

/** The token was refused; the message tells the client why without internals. */
export class AuthError extends Error {
  readonly status = 401;
  readonly expose = true;
  override name = 'AuthError';
}

/** The issuer's key set could not be fetched: our outage, not the client's bad token. */
export class KeySetUnavailableError extends Error {
  readonly status = 503;
  readonly expose = false;
  override name = 'KeySetUnavailableError';
}

export interface CognitoVerifierOptions {
  /** AWS region of the user pool, e.g. `eu-west-1`. */
  region: string;
  /** User pool id, e.g. `eu-west-1_AbCdEf123`. */
  userPoolId: string;
  /** App client id the tokens must be issued to (`client_id` of access tokens, `aud` of id tokens). */
  clientId: string;
  /** Which Cognito token the uploads accept, checked against the `token_use` claim. */
  tokenUse: 'access' | 'id';
  /** Override for tests: the issuer URL; default https://cognito-idp.<region>.amazonaws.com/<pool> */
  issuer?: string;
  /** Default `<issuer>/.well-known/jwks.json`. */
  jwksUrl?: string;
  /** Milliseconds after a fetch before an unknown `kid` may trigger another; bounds refetch floods. Default 30 s. */
  cooldownDuration?: number;
  /** Milliseconds a fetched key set is trusted; bounds how long a key removed by rotation still verifies. Default 10 min. */
  cacheMaxAge?: number;
  /** Allowed clock skew for `exp`/`nbf`. Default 5. */
  clockToleranceSeconds?: number;
}

export interface LocalIssuerOptions {
  /** Where the signing key lives (`<dir>/signing-key.json`), e.g. `.mirror/auth`. */
  dir: string;
  /** `iss` of minted tokens. Default `mirror-local`. */
  issuer?: string;
  /** Allowed clock skew for `exp`/`nbf`. Default 5. */
  clockToleranceSeconds?: number;
}

export type LocalIssuer = TokenVerifier & {
  mint(sub: string, ttlSeconds: number, scopes?: string[]): Promise<string>;
  jwks(): { keys: JWK[] };
};

const UPLOAD_AUDIENCE = 'mirror-upload';
const LOCAL_ALG = 'ES256';
const KEY_FILE = 'signing-key.json';

export function cognitoVerifier(options: CognitoVerifierOptions): TokenVerifier {
  const { region, userPoolId, clientId, tokenUse, clockToleranceSeconds = 5 } = options;
  for (const [name, value] of Object.entries({ region, userPoolId, clientId })) requireText(name, value);
  if (tokenUse !== 'access' && tokenUse !== 'id') throw new TypeError(`Expected \`tokenUse\` to be 'access' or 'id', got ${JSON.stringify(tokenUse)}`);
  const issuer = options.issuer ?? `https://cognito-idp.${region}.amazonaws.com/${userPoolId}`;
  const keySet = createRemoteJWKSet(new URL(options.jwksUrl ?? `${issuer}/.well-known/jwks.json`), {
    cooldownDuration: options.cooldownDuration ?? 30_000,
    cacheMaxAge: options.cacheMaxAge ?? 600_000,
  });
  const keys: JWTVerifyGetKey = async (header, token) => {
    try {
      return await keySet(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
      throw new KeySetUnavailableError(`Could not fetch the token key set of ${issuer}`, { cause: error });
    }
  };
  return {
    async verify(token) {
      const payload = await verifyOrExplain(() =>
        jwtVerify(token, keys, {
          issuer,
          // Cognito signs with RS256 only; pinning it refuses `none` and HS256-with-the-public-key.
          algorithms: ['RS256'],
          audience: tokenUse === 'id' ? clientId : undefined,
          requiredClaims: ['exp', 'sub', 'token_use'],
          clockTolerance: clockToleranceSeconds,
        }),
      );
      if (payload.token_use !== tokenUse) throw new AuthError(`Token use must be ${tokenUse}`);
      // Cognito access tokens carry no `aud`; the app client is in `client_id`.
      if (tokenUse === 'access' && payload.client_id !== clientId) throw new AuthError('Token audience is not accepted');
      return { sub: subjectOf(payload), issuer: 'cognito', scopes: scopesOf(payload) };
    },
  };
}

export async function localIssuer(options: LocalIssuerOptions): Promise<LocalIssuer> {
  const { dir, issuer = 'mirror-local', clockToleranceSeconds = 5 } = options;
  requireText('dir', dir);
  const privateJwk = await loadOrCreateKey(path.join(dir, KEY_FILE));
  const { kty, crv, x, y, kid } = privateJwk;
  const publicJwk: JWK = { kty, crv, x, y, kid, alg: LOCAL_ALG, use: 'sig' };
  const signingKey = await importJWK(privateJwk, LOCAL_ALG);
  const keySet = createLocalJWKSet({ keys: [publicJwk] });
  return {
    async mint(sub, ttlSeconds, scopes = []) {
      requireText('sub', sub);
      if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new TypeError(`Expected \`ttlSeconds\` to be a positive integer, got ${JSON.stringify(ttlSeconds)}`);
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ scope: scopes.join(' ') })
        .setProtectedHeader({ alg: LOCAL_ALG, kid, typ: 'JWT' })
        .setSubject(sub)
        .setIssuer(issuer)
        .setAudience(UPLOAD_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + ttlSeconds)
        .sign(signingKey);
    },
    async verify(token) {
      const payload = await verifyOrExplain(() =>
        jwtVerify(token, keySet, {
          issuer,
          audience: UPLOAD_AUDIENCE,
          algorithms: [LOCAL_ALG],
          requiredClaims: ['exp', 'sub'],
          clockTolerance: clockToleranceSeconds,
        }),
      );
      return { sub: subjectOf(payload), issuer: 'local', scopes: scopesOf(payload) };
    },
    jwks: () => ({ keys: [{ ...publicJwk }] }),
  };
}

async function verifyOrExplain(run: () => Promise<{ payload: JWTPayload }>): Promise<JWTPayload> {
  try {
    return (await run()).payload;
  } catch (error) {
    throw error instanceof errors.JOSEError ? new AuthError(explain(error)) : error;
  }
}

function explain(error: errors.JOSEError): string {
  if (error instanceof errors.JWTExpired) return 'Token expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return `Token has no "${error.claim}" claim`;
    if (error.claim === 'nbf') return 'Token not yet valid';
    if (error.claim === 'iss') return 'Token issuer is not accepted';
    if (error.claim === 'aud') return 'Token audience is not accepted';
    return `Token "${error.claim}" claim is not valid`;
  }
  if (error instanceof errors.JWKSNoMatchingKey) return 'Token signed with an unknown key';
  if (error instanceof errors.JWKSMultipleMatchingKeys) return 'Token does not identify its signing key';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'Token signature is invalid';
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) return 'Token algorithm is not accepted';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'Token is malformed';
  return 'Token is not accepted';
}

function subjectOf(payload: JWTPayload): string {
  if (typeof payload.sub !== 'string' || payload.sub === '') throw new AuthError('Token "sub" claim is not valid');
  return payload.sub;
}

function scopesOf(payload: JWTPayload): string[] {
  return typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [];
}

/** An ES256 private JWK kept in `file`, created on first use (see secret-file.ts for how two processes agree on one). */
export async function loadOrCreateKey(file: string): Promise<JWK> {
  const text = await readOrCreateSecret(file, async () => {
    const { privateKey } = await generateKeyPair(LOCAL_ALG, { extractable: true });
    const jwk = await exportJWK(privateKey);
    return `${JSON.stringify({ ...jwk, kid: await calculateJwkThumbprint(jwk), alg: LOCAL_ALG, use: 'sig' }, null, 2)}\n`;
  });
  let key: JWK;
  try {
    key = JSON.parse(text) as JWK;
  } catch {
    // JSON.parse quotes the text it chokes on, which here is a private key.
    throw new Error(`Expected ${file} to hold a JSON private JWK`);
  }
  if (key.kty !== 'EC' || key.crv !== 'P-256' || typeof key.d !== 'string' || typeof key.kid !== 'string') {
    throw new Error(`Expected ${file} to hold an ES256 private JWK with a kid, got kty ${JSON.stringify(key.kty)}, crv ${JSON.stringify(key.crv)}`);
  }
  return key;
}

function requireText(name: string, value: unknown): void {
  if (typeof value !== 'string' || value.trim() === '') throw new TypeError(`Expected \`${name}\` to be a non-empty string, got ${JSON.stringify(value)}`);
}
