// Upload authentication over real HTTP: a local JWKS server plays Cognito, a tiny Koa app mounts
// requireBearer, and every refusal is checked for its status, challenge and exact body.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { base64url, calculateJwkThumbprint, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import Koa from 'koa';
import { requireBearer, TOKEN_REQUIRED } from '../sidecar/auth/bearer.ts';
import { cognitoVerifier, localIssuer, type Principal, type TokenVerifier } from '../sidecar/auth/jwt.ts';
import { errorBodies } from '../sidecar/middleware/error-bodies.ts';
import { listen } from '../sidecar/server.ts';

const POOL = 'us-east-1_TEST';
const CLIENT_ID = 'mirror-upload-client';
const CHALLENGE = 'Bearer realm="mirror"';
const REFUSED = `${CHALLENGE}, error="invalid_token"`;
const now = () => Math.floor(Date.now() / 1000);

interface RsaKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
}

async function rsaKey(): Promise<RsaKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, privateKey, publicKey, publicJwk: { ...jwk, kid, alg: 'RS256', use: 'sig' } };
}

interface JwksServer {
  issuer: string;
  /** Served as-is on every fetch; push to rotate. */
  keys: JWK[];
  fetches: number;
  close(): Promise<void>;
}

async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  const state = { keys, fetches: 0 };
  const server = createServer((request, response) => {
    if (request.url !== `/${POOL}/.well-known/jwks.json`) {
      response.writeHead(404).end();
      return;
    }
    state.fetches += 1;
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    issuer: `http://127.0.0.1:${port}/${POOL}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  });
}

interface Guarded {
  url: string;
  reached: number;
  errors: unknown[];
  close(): Promise<void>;
}

/** A Koa app whose only route echoes the principal; `reached` counts requests that got past auth. */
async function serveBehind(verifier: TokenVerifier): Promise<Guarded> {
  const app = new Koa();
  app.silent = true;
  const state = { reached: 0, errors: [] as unknown[] };
  app.on('error', (error: unknown) => state.errors.push(error));
  app.use(errorBodies());
  app.use(requireBearer({ verifier }));
  app.use(async function echoPrincipal(ctx) {
    state.reached += 1;
    ctx.body = { principal: ctx.state.principal as Principal };
  });
  const running = await listen({ app, port: 0, host: '127.0.0.1' });
  return Object.assign(state, { url: running.url, close: running.close });
}

async function call(guarded: Guarded, authorization?: string) {
  const response = await fetch(`${guarded.url}/binary/releases/agent-as-code/1/12/upload`, {
    method: 'POST',
    headers: authorization === undefined ? {} : { authorization },
  });
  const text = await response.text();
  return { status: response.status, challenge: response.headers.get('www-authenticate'), text, body: JSON.parse(text) };
}

/** Asserts a 401 with the exact body, the right challenge, no echo of the token, and no handler run. */
async function assertRefused(guarded: Guarded, authorization: string | undefined, message: string, challenge = REFUSED) {
  const before = guarded.reached;
  const response = await call(guarded, authorization);
  assert.equal(response.status, 401);
  assert.deepEqual(response.body, { error: 'Unauthorized', message });
  assert.equal(response.challenge, challenge);
  const token = authorization?.split(' ')[1];
  if (token) assert.ok(!response.text.includes(token), 'the token is echoed');
  assert.equal(guarded.reached, before, 'the handler behind auth ran');
}

function sign(key: RsaKey, issuer: string, claims: JWTPayload = {}, exp = now() + 300): Promise<string> {
  return new SignJWT({ sub: 'user-123', token_use: 'access', client_id: CLIENT_ID, scope: 'mirror/upload', iss: issuer, iat: now(), exp, ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .sign(key.privateKey);
}

describe('Cognito tokens behind requireBearer', () => {
  let keyA: RsaKey;
  let jwks: JwksServer;
  let access: Guarded;
  let id: Guarded;
  const bearer = (token: string) => `Bearer ${token}`;

  before(async () => {
    keyA = await rsaKey();
    jwks = await startJwksServer([keyA.publicJwk]);
    const options = { region: 'us-east-1', userPoolId: POOL, clientId: CLIENT_ID, issuer: jwks.issuer };
    access = await serveBehind(cognitoVerifier({ ...options, tokenUse: 'access' }));
    id = await serveBehind(cognitoVerifier({ ...options, tokenUse: 'id' }));
  });
  after(async () => {
    await Promise.all([access.close(), id.close(), jwks.close()]);
    assert.deepEqual([...access.errors, ...id.errors], []);
  });

  test('no token', () => assertRefused(access, undefined, TOKEN_REQUIRED, CHALLENGE));
  test('Basic scheme counts as no token', () => assertRefused(access, 'Basic dXNlcjpwYXNz', TOKEN_REQUIRED, CHALLENGE));
  test('Bearer without a token counts as no token', () => assertRefused(access, 'Bearer ', TOKEN_REQUIRED, CHALLENGE));
  test('malformed token', () => assertRefused(access, bearer('abc'), 'Token is malformed'));

  test('expired', async () => {
    await assertRefused(access, bearer(await sign(keyA, jwks.issuer, { iat: now() - 600 }, now() - 60)), 'Token expired');
  });

  test('not yet valid', async () => {
    await assertRefused(access, bearer(await sign(keyA, jwks.issuer, { nbf: now() + 600 })), 'Token not yet valid');
  });

  test('wrong issuer', async () => {
    const other = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHER';
    await assertRefused(access, bearer(await sign(keyA, jwks.issuer, { iss: other })), 'Token issuer is not accepted');
  });

  test('access token for another app client', async () => {
    await assertRefused(access, bearer(await sign(keyA, jwks.issuer, { client_id: 'someone-else' })), 'Token audience is not accepted');
  });

  test('id token for another app client', async () => {
    const token = await sign(keyA, jwks.issuer, { token_use: 'id', client_id: undefined, aud: 'someone-else' });
    await assertRefused(id, bearer(token), 'Token audience is not accepted');
  });

  test('an id token where access tokens are required', async () => {
    const token = await sign(keyA, jwks.issuer, { token_use: 'id', aud: CLIENT_ID });
    await assertRefused(access, bearer(token), 'Token use must be access');
  });

  test('unknown kid', async () => {
    const stranger = await rsaKey();
    await assertRefused(access, bearer(await sign(stranger, jwks.issuer)), 'Token signed with an unknown key');
  });

  test('alg none', async () => {
    const encode = (value: object) => base64url.encode(JSON.stringify(value));
    const token = `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ sub: 'admin', token_use: 'access', client_id: CLIENT_ID, iss: jwks.issuer, exp: now() + 300 })}.`;
    await assertRefused(access, bearer(token), 'Token algorithm is not accepted');
  });

  test('HS256 signed with the RSA public key as the HMAC secret', async () => {
    const secret = new TextEncoder().encode(await exportSPKI(keyA.publicKey));
    const token = await new SignJWT({ sub: 'admin', token_use: 'access', client_id: CLIENT_ID, iss: jwks.issuer, exp: now() + 300 })
      .setProtectedHeader({ alg: 'HS256', kid: keyA.kid })
      .sign(secret);
    await assertRefused(access, bearer(token), 'Token algorithm is not accepted');
  });

  test('tampered payload', async () => {
    const [header, payload, signature] = (await sign(keyA, jwks.issuer)).split('.') as [string, string, string];
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload)));
    const forged = base64url.encode(JSON.stringify({ ...claims, sub: 'admin' }));
    await assertRefused(access, bearer(`${header}.${forged}.${signature}`), 'Token signature is invalid');
  });

  test('a valid access token reaches the handler with its principal', async () => {
    const response = await call(access, `bearer ${await sign(keyA, jwks.issuer)}`);
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { principal: { sub: 'user-123', issuer: 'cognito', scopes: ['mirror/upload'] } });
  });

  test('a valid id token for this app client reaches the handler', async () => {
    const token = await sign(keyA, jwks.issuer, { token_use: 'id', client_id: undefined, scope: undefined, aud: CLIENT_ID, sub: 'user-456' });
    const response = await call(id, `Bearer ${token}`);
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { principal: { sub: 'user-456', issuer: 'cognito', scopes: [] } });
  });
});

describe('Cognito key rotation and JWKS caching', () => {
  test('an unknown kid refetches the key set after the cooldown, and known kids never refetch', async (t) => {
    const keyA = await rsaKey();
    const keyB = await rsaKey();
    const jwks = await startJwksServer([keyA.publicJwk]);
    const cooldownDuration = 100;
    const guarded = await serveBehind(cognitoVerifier({ region: 'us-east-1', userPoolId: POOL, clientId: CLIENT_ID, tokenUse: 'access', issuer: jwks.issuer, cooldownDuration }));
    t.after(() => Promise.all([guarded.close(), jwks.close()]));
    const withA = `Bearer ${await sign(keyA, jwks.issuer)}`;
    const withB = `Bearer ${await sign(keyB, jwks.issuer)}`;

    for (let i = 0; i < 20; i += 1) assert.equal((await call(guarded, withA)).status, 200);
    assert.equal(jwks.fetches, 1, 'verifications with a known kid refetched the key set');

    await sleep(cooldownDuration + 20);
    await assertRefused(guarded, withB, 'Token signed with an unknown key');
    assert.equal(jwks.fetches, 2, 'an unknown kid after the cooldown refetches once');

    jwks.keys.push(keyB.publicJwk);
    await assertRefused(guarded, withB, 'Token signed with an unknown key');
    assert.equal(jwks.fetches, 2, 'an unknown kid within the cooldown must not refetch');

    await sleep(cooldownDuration + 20);
    assert.equal((await call(guarded, withB)).status, 200);
    for (let i = 0; i < 10; i += 1) assert.equal((await call(guarded, i % 2 ? withA : withB)).status, 200);
    assert.equal(jwks.fetches, 3);
    assert.deepEqual(guarded.errors, []);
  });

  test('an unreachable key set is a 503 that hides the cause, not a 401', async (t) => {
    const key = await rsaKey();
    const jwks = await startJwksServer([]);
    const guarded = await serveBehind(cognitoVerifier({ region: 'us-east-1', userPoolId: POOL, clientId: CLIENT_ID, tokenUse: 'access', issuer: jwks.issuer, jwksUrl: `${jwks.issuer}/missing` }));
    t.after(() => Promise.all([guarded.close(), jwks.close()]));
    const response = await call(guarded, `Bearer ${await sign(key, jwks.issuer)}`);
    assert.equal(response.status, 503);
    assert.deepEqual(response.body, { error: 'Service Unavailable', message: 'The server could not complete the request' });
    assert.equal(guarded.reached, 0);
    assert.equal(guarded.errors.length, 1, 'the outage is logged');
  });

  test('options are checked when the verifier is built', () => {
    assert.throws(() => cognitoVerifier({ region: 'us-east-1', userPoolId: POOL, clientId: '', tokenUse: 'access' }), /Expected `clientId` to be a non-empty string, got ""/);
    assert.throws(() => requireBearer({ verifier: { verify: async () => ({ sub: '', issuer: '', scopes: [] }) }, realm: 'a"b' }), /Expected `realm`/);
  });
});

describe('local issuer', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'mirror-auth-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  test('a minted token verifies over HTTP and carries its claims', async (t) => {
    const issuer = await localIssuer({ dir: path.join(root, 'a') });
    const guarded = await serveBehind(issuer);
    t.after(() => guarded.close());
    const response = await call(guarded, `Bearer ${await issuer.mint('ci-bot', 60, ['upload', 'publish'])}`);
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { principal: { sub: 'ci-bot', issuer: 'local', scopes: ['upload', 'publish'] } });
  });

  test('a token minted by another local issuer is refused', async (t) => {
    const ours = await localIssuer({ dir: path.join(root, 'a') });
    const theirs = await localIssuer({ dir: path.join(root, 'b') });
    const guarded = await serveBehind(ours);
    t.after(() => guarded.close());
    await assertRefused(guarded, `Bearer ${await theirs.mint('ci-bot', 60)}`, 'Token signed with an unknown key');
  });

  test('the key file is private and the JWKS holds only the public key', async () => {
    const issuer = await localIssuer({ dir: path.join(root, 'a') });
    assert.equal((await stat(path.join(root, 'a', 'signing-key.json'))).mode & 0o777, 0o600);
    const [key, ...rest] = issuer.jwks().keys;
    assert.deepEqual(rest, []);
    assert.equal(key?.d, undefined);
    assert.deepEqual({ kty: key?.kty, crv: key?.crv, alg: key?.alg }, { kty: 'EC', crv: 'P-256', alg: 'ES256' });
  });

  test('issuers starting at once on a fresh dir share one key', async () => {
    const dir = path.join(root, 'race');
    const issuers = await Promise.all(Array.from({ length: 4 }, () => localIssuer({ dir })));
    assert.equal(new Set(issuers.map((issuer) => issuer.jwks().keys[0]?.kid)).size, 1);
    assert.deepEqual(await readdir(dir), ['signing-key.json']);
    const token = await issuers[1]!.mint('ci-bot', 60);
    assert.equal((await issuers[3]!.verify(token)).sub, 'ci-bot');
  });

  test('a token is refused once its ttl has passed', async (t) => {
    const issuer = await localIssuer({ dir: path.join(root, 'a'), clockToleranceSeconds: 0 });
    const guarded = await serveBehind(issuer);
    t.after(() => guarded.close());
    const token = await issuer.mint('ci-bot', 1);
    await sleep(1_100);
    await assertRefused(guarded, `Bearer ${token}`, 'Token expired');
  });

  test('mint checks its arguments', async () => {
    const issuer = await localIssuer({ dir: path.join(root, 'a') });
    await assert.rejects(issuer.mint('ci-bot', 0), /Expected `ttlSeconds` to be a positive integer, got 0/);
    await assert.rejects(issuer.mint('', 60), /Expected `sub` to be a non-empty string/);
  });
});
