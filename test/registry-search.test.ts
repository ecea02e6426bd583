// One ranking contract for full-text search, run on SQLite (FTS5) and PostgreSQL (tsvector): an
// exact name first, then by relevance (name, then tags and description, then README), then by
// downloads; stemming; the last word as a prefix.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, json, manifest, publish, startRegistry, tarball, type RegistryServer } from './helpers/registry.ts';

for (const backend of BACKENDS) {
  describe(`registry search on ${backend.name}`, { skip: !process.env.CI && backend.missing }, () => {
    let server: RegistryServer;
    const names = async (query: string) => (await json(server.api(`/search?${query}`))).body.agents.map((agent: { full_name: string }) => agent.full_name);

    before(async () => {
      assert.equal(backend.missing, false, backend.missing || '');
      server = await startRegistry(backend);
      const carol = await server.signIn('carol', 77);
      const agents: [string, Record<string, unknown>, string][] = [
        ['notes', { description: 'Keeps meeting notes tidy', category: 'productivity' }, 'It can also file an email now and then.'],
        ['inbox-zero', { description: 'Sorts your emails into folders', category: 'communication' }, 'Inbox helper.'],
        ['email', { description: 'Sends messages', category: 'communication' }, 'Plain.'],
        ['mailer', { description: 'Bulk sender', category: 'communication', tags: ['email'] }, 'Plain.'],
        ['alpha-report', { description: 'Builds a weekly report', category: 'data' }, 'Same words.'],
        ['gamma-report', { description: 'Builds a weekly report', category: 'data' }, 'Same words.'],
      ];
      for (const [name, fields, readme] of agents) {
        const answer = await publish(server, carol, `@carol/${name}`, { tarball: tarball(), readme, agentYaml: manifest(name, '1.0.0', fields) });
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
      }
      await publish(server, carol, '@carol/gamma-report', { tarball: tarball(), readme: 'Same words.', agentYaml: manifest('gamma-report', '1.0.1', { description: 'Builds a weekly report', category: 'data' }) });
      await server.api('/agents/@carol/gamma-report/download/1.0.0');
      await server.api('/agents/@carol/gamma-report/download/1.0.1');
    });
    after(async () => {
      await server?.close();
    });

    test('an exact name comes first, then name and tag matches, then description, then README', async () => {
      assert.deepEqual(await names('q=email'), ['@carol/email', '@carol/mailer', '@carol/inbox-zero', '@carol/notes']);
    });

    test('stemming: `emails` finds what says `email`, and the full name matches exactly', async () => {
      assert.deepEqual(await names('q=emails'), ['@carol/email', '@carol/mailer', '@carol/inbox-zero', '@carol/notes']);
      assert.equal((await names('q=%40carol%2Fnotes'))[0], '@carol/notes');
    });

    test('equal relevance is ordered by downloads', async () => {
      assert.deepEqual(await names('q=weekly+report'), ['@carol/gamma-report', '@carol/alpha-report']);
    });

    test('the last word matches as a prefix; words that match nothing find nothing; punctuation is not syntax', async () => {
      assert.deepEqual(await names('q=inbo'), ['@carol/inbox-zero']);
      assert.deepEqual(await names('q=tidy+email'), ['@carol/notes'], 'every word must match, each in any field');
      assert.deepEqual(await names('q=zzzzqqq'), []);
      assert.deepEqual((await json(server.api('/search?q=%22%29%28*%3A'))).body, { agents: [], total: 0, page: 1, limit: 20 });
      assert.deepEqual(await names('q=report&category=communication'), []);
    });

    test('GET /agents?q filters by the same match and sorts by its own order', async () => {
      const listed = (await json(server.api('/agents?q=email&sort=downloads'))).body;
      assert.equal(listed.total, 4);
      assert.deepEqual(new Set(listed.agents.map((agent: { full_name: string }) => agent.full_name)), new Set(['@carol/email', '@carol/mailer', '@carol/inbox-zero', '@carol/notes']));
    });
  });
}
