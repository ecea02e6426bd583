// GitHub sign-in (seed 003) against the local GitHub stand-in over real HTTP, on SQLite and
// PostgreSQL: single-use, expiring states; the code exchange; GitHub's failures as 502; tokens
// stored hashed and revocable.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { BACKENDS, json, startRegistry, withDatabase, type RegistryServer } from './helpers/registry.ts';
import { sha256 } from './helpers/store.ts';

const REDIRECT = 'http://127.0.0.1:9876/callback';

for (const backend of BACKENDS) {
  describe(`registry sign-in on ${backend.name}`, { skip: !process.env.CI && backend.missing }, () => {
    let server: RegistryServer;
    const start = (body: unknown) => json(server.api('/auth/github', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }));
    const stateOf = (authUrl: string) => new URL(authUrl).searchParams.get('state')!;

    before(async () => {
      assert.equal(backend.missing, false, backend.missing || '');
      server = await startRegistry(backend);
    });
    after(async () => {
      await server?.close();
    });

    test('POST /auth/github answers GitHub’s authorize URL with the client id, the redirect and a fresh state', async () => {
      const first = await start({ redirect_uri: REDIRECT });
      assert.equal(first.status, 200);
      const url = new URL(first.body.auth_url);
      assert.equal(`${url.origin}${url.pathname}`, `${server.github.url}/login/oauth/authorize`);
      assert.equal(url.searchParams.get('client_id'), server.github.clientId);
      assert.equal(url.searchParams.get('redirect_uri'), REDIRECT);
      assert.ok((url.searchParams.get('state') ?? '').length >= 43, 'at least 256 bits of state');
      const second = await start({ redirect_uri: REDIRECT });
      assert.notEqual(stateOf(second.body.auth_url), stateOf(first.body.auth_url));
    });

    test('redirects other than loopback addresses are refused; so are bodies that are not JSON', async () => {
      assert.deepEqual((await start({ redirect_uri: 'https://evil.example/steal' })).body, { error: 'Validation failed', details: ["redirect_uri: expected a loopback address such as http://127.0.0.1:9876/callback, got 'https://evil.example/steal'"] });
      assert.deepEqual((await start({})).body, { error: 'Validation failed', details: ["redirect_uri: missing required field 'redirect_uri'"] });
      assert.equal((await json(server.api('/auth/github', { method: 'POST', body: 'redirect_uri=x', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }))).status, 415);
    });

    test('the callback exchanges the code, reads the account and answers an agentx_ token, stored only as its hash', async () => {
      const state = stateOf((await start({ redirect_uri: REDIRECT })).body.auth_url);
      const code = server.github.approve({ login: 'Sinan', id: 12345, name: 'Sinan', bio: 'Building agentx', blog: 'https://sinan.dev' }, REDIRECT);
      const answer = await json(server.api(`/auth/callback?code=${code}&state=${state}`));
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.match(answer.body.token, /^agentx_[A-Za-z0-9_-]{32}$/);
      assert.deepEqual(answer.body.user, { username: 'sinan', display_name: 'Sinan', avatar_url: 'https://avatars.githubusercontent.com/u/12345?v=4', github_id: 12345 });
      const exchange = server.github.tokenRequests.at(-1)!;
      assert.deepEqual(exchange.fields, { client_id: server.github.clientId, client_secret: server.github.clientSecret, code, redirect_uri: REDIRECT });
      assert.equal(exchange.accept, 'application/json');
      const stored = await withDatabase(server, (state) => state.db.selectFrom('registry_tokens').selectAll().execute());
      assert.ok(stored.some((row) => row.token_hash === sha256(answer.body.token)));
      assert.ok(!JSON.stringify(stored).includes(answer.body.token), 'the token itself is not stored');
      const profile = (await json(server.api('/users/sinan'))).body;
      assert.equal(profile.bio, 'Building agentx');
      assert.equal(profile.website, 'https://sinan.dev');

      const reused = await json(server.api(`/auth/callback?code=${server.github.approve({ login: 'Sinan', id: 12345 }, REDIRECT)}&state=${state}`));
      assert.deepEqual(reused.body, { error: 'Invalid OAuth state', details: ['the state was already used; start the sign-in again'] });

      const revoke = await json(server.api('/auth/token', { method: 'DELETE', headers: { Authorization: `Bearer ${answer.body.token}` } }));
      assert.equal(revoke.status, 200);
      assert.deepEqual((await json(server.api('/users/sinan', { headers: { Authorization: `Bearer ${answer.body.token}` } }))).body, { error: 'Invalid or revoked token' });
    });

    test('unknown, missing and expired states are a 400', async () => {
      assert.deepEqual((await json(server.api('/auth/callback?code=abc&state=never-issued'))).body, { error: 'Invalid OAuth state', details: ['the state is unknown to this server; start the sign-in again'] });
      assert.deepEqual((await json(server.api('/auth/callback'))).body, { error: 'Validation failed', details: ["missing required query parameter 'code'", "missing required query parameter 'state'"] });
      const state = stateOf((await start({ redirect_uri: REDIRECT })).body.auth_url);
      await withDatabase(server, (db) => sql`update registry_oauth_states set expires_at = '2000-01-01T00:00:00.000Z' where state_hash = ${sha256(state)}`.execute(db.db));
      const expired = await json(server.api(`/auth/callback?code=${server.github.approve({ login: 'late', id: 9 }, REDIRECT)}&state=${state}`));
      assert.deepEqual([expired.status, expired.body], [400, { error: 'Invalid OAuth state', details: ['the state expired; start the sign-in again'] }]);
    });

    test('GitHub refusing the code is a 400; GitHub failing is a 502 in the contract shape', async () => {
      const bad = await json(server.api(`/auth/callback?code=wrong&state=${stateOf((await start({ redirect_uri: REDIRECT })).body.auth_url)}`));
      assert.deepEqual([bad.status, bad.body.error], [400, 'GitHub refused the authorization code']);
      server.github.failNext('token', 500);
      const tokenDown = await json(server.api(`/auth/callback?code=${server.github.approve({ login: 'x', id: 1 }, REDIRECT)}&state=${stateOf((await start({ redirect_uri: REDIRECT })).body.auth_url)}`));
      assert.deepEqual([tokenDown.status, tokenDown.body], [502, { error: 'GitHub sign-in failed', details: ["GitHub's token endpoint answered 500"] }]);
      server.github.failNext('user', 503);
      const apiDown = await json(server.api(`/auth/callback?code=${server.github.approve({ login: 'x', id: 1 }, REDIRECT)}&state=${stateOf((await start({ redirect_uri: REDIRECT })).body.auth_url)}`));
      assert.deepEqual([apiDown.status, apiDown.body], [502, { error: 'GitHub sign-in failed', details: ["GitHub's API answered 503"] }]);
    });
  });
}

describe('registry sign-in with REGISTRY_REDIRECT_URIS', () => {
  test('a listed prefix is allowed and loopback is no longer', async () => {
    const server = await startRegistry(BACKENDS[0]!, { REGISTRY_REDIRECT_URIS: 'https://app.example.com/oauth/, https://other.example.com/cb' });
    try {
      const start = (redirect: string) => json(server.api('/auth/github', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ redirect_uri: redirect }) }));
      assert.equal((await start('https://app.example.com/oauth/done')).status, 200);
      assert.deepEqual((await start(REDIRECT)).body, { error: 'Validation failed', details: [`redirect_uri: '${REDIRECT}' is not an allowed redirect (REGISTRY_REDIRECT_URIS)`] });
    } finally {
      await server.close();
    }
  });
});

describe('registry sign-in without GitHub settings', () => {
  test('answers 503 saying what to configure', async () => {
    const server = await startRegistry(BACKENDS[0]!, { GITHUB_CLIENT_ID: '', GITHUB_CLIENT_SECRET: '' });
    try {
      const answer = await json(server.api('/auth/github', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ redirect_uri: REDIRECT }) }));
      assert.deepEqual([answer.status, answer.body], [503, { error: 'GitHub sign-in is not configured on this server (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET)' }]);
    } finally {
      await server.close();
    }
  });
});
