// The registry's rate limits as seed 003 states them (per address signed out, per user signed in,
// publishes per user per hour), with X-RateLimit-* on every registry response and 429s in the
// contract's error shape with Retry-After.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { json, manifest, publish, sqliteBackend, startRegistry, tarball, type RegistryServer } from './helpers/registry.ts';

describe('registry rate limits', () => {
  let server: RegistryServer;
  let token: string;

  before(async () => {
    // The site-wide limit is lower than the registry's: registry requests must not count against it.
    server = await startRegistry(sqliteBackend, { RATE_LIMIT_IP_PER_MINUTE: '3', REGISTRY_RATE_LIMIT_IP_PER_MINUTE: '6', REGISTRY_RATE_LIMIT_USER_PER_MINUTE: '9', REGISTRY_RATE_LIMIT_PUBLISH_PER_HOUR: '2' });
    // Signing in is two unauthenticated requests: POST /auth/github and the callback.
    token = await server.signIn('dana', 31);
  });
  after(async () => {
    await server?.close();
  });

  test('signed out: counted per address, headers on every answer, the 429 in the contract shape', async () => {
    const remaining: string[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = await server.api(i % 2 === 0 ? '/categories' : '/agents/@dana/missing');
      assert.equal(answer.headers.get('x-ratelimit-limit'), '6');
      assert.match(answer.headers.get('x-ratelimit-reset') ?? '', /^[0-9]+$/);
      remaining.push(answer.headers.get('x-ratelimit-remaining')!);
    }
    assert.deepEqual(remaining, ['3', '2', '1', '0']);
    const refused = await json(server.api('/categories'));
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error, 'Too many requests');
    assert.match(refused.body.details[0], /^Rate limit of 6 requests per 60 s exceeded/);
    assert.match(refused.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    assert.equal((await fetch(`${server.url}/`)).status, 200, 'the site counts its own reads');
  });

  test('signed in: counted per user, apart from the address', async () => {
    const auth = { headers: { Authorization: `Bearer ${token}` } };
    const first = await server.api('/categories', auth);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get('x-ratelimit-limit'), '9');
    assert.equal(first.headers.get('x-ratelimit-remaining'), '8');
  });

  test('publishes: at most REGISTRY_RATE_LIMIT_PUBLISH_PER_HOUR per user', async () => {
    const statuses = [];
    for (const version of ['1.0.0', '1.0.1', '1.0.2']) statuses.push((await publish(server, token, '@dana/tool', { tarball: tarball(), readme: 'r', agentYaml: manifest('tool', version) })).status);
    assert.deepEqual(statuses, [200, 200, 429]);
  });
});
