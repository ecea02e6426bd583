// The registry API of seed 003 over real HTTP, one suite on SQLite and on PostgreSQL: sign-in
// through the GitHub stand-in, publish (multipart), discovery, search, trending, details,
// versions, downloads, unpublish, users, telemetry, caching, and every refusal in the contract's
// error shape with nothing changed.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { parseAgentManifest } from '../generator/load/registry-schema.ts';
import { registryPackages } from '../sidecar/registry/packages.ts';
import { fullTextFor } from '../sidecar/registry/search.ts';
import { BACKENDS, filesUnder, json, manifest, publish, startRegistry, tarball, withDatabase, type RegistryServer } from './helpers/registry.ts';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const run = promisify(execFile);

for (const backend of BACKENDS) {
  describe(`registry API on ${backend.name}`, { skip: !process.env.CI && backend.missing }, () => {
    let server: RegistryServer;
    let alice: string;
    let bob: string;
    const mailV1 = tarball('mail agent 1.0.0\n');
    const mailV2 = tarball('mail agent 1.1.0\n');

    before(async () => {
      assert.equal(backend.missing, false, backend.missing || '');
      server = await startRegistry(backend, { REGISTRY_MAX_TARBALL_BYTES: String(256 * 1024) });
      alice = await server.signIn('alice', 4242);
      bob = await server.signIn('bob', 5353);
    });
    after(async () => {
      await server?.close();
      assert.deepEqual(server?.errors ?? [], []);
    });

    test('an agent CLI publishes @alice/mail-agent 1.0.0 and 1.1.0, then finds, reads and downloads it', async () => {
      const readme = '# Mail Agent\n\nTriage **emails** and draft replies.\n';
      const first = await publish(server, alice, '@alice/mail-agent', {
        tarball: mailV1,
        readme,
        agentYaml: manifest('mail-agent', '1.0.0', { description: 'AI email assistant', category: 'communication', tags: ['email', 'gmail'] }),
      });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.deepEqual(first.body, { success: true, version: '1.0.0', full_name: '@alice/mail-agent', url: `${server.url}/agents/@alice/mail-agent` });
      const second = await publish(server, alice, '@alice/mail-agent', {
        tarball: mailV2,
        readme,
        agentYaml: manifest('mail-agent', '1.1.0', {
          description: 'AI email assistant',
          category: 'communication',
          tags: ['email', 'gmail'],
          license: 'MIT',
          repository: 'https://github.com/alice/mail-agent',
          permissions: { network: true },
          mcp_servers: ['gmail'],
          examples: [{ prompt: 'summarize unread emails' }],
        }),
      });
      assert.equal(second.status, 200, JSON.stringify(second.body));

      const listed = await json(server.api('/agents?q=mail'));
      assert.equal(listed.status, 200);
      assert.equal(listed.body.total, 1);
      assert.deepEqual(Object.keys(listed.body), ['agents', 'total', 'page', 'limit']);
      const summary = listed.body.agents[0];
      assert.deepEqual(
        { ...summary, updated_at: 'checked below' },
        {
          scope: '@alice',
          name: 'mail-agent',
          full_name: '@alice/mail-agent',
          description: 'AI email assistant',
          category: 'communication',
          tags: ['email', 'gmail'],
          latest_version: '1.1.0',
          download_count: 0,
          star_count: 0,
          is_verified: false,
          author: { username: 'alice', avatar_url: 'https://avatars.githubusercontent.com/u/4242?v=4' },
          updated_at: 'checked below',
        },
      );
      assert.match(summary.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal((await json(server.api('/search?q=mail'))).body.agents[0].full_name, '@alice/mail-agent');
      assert.equal((await json(server.api('/trending'))).body.agents[0].full_name, '@alice/mail-agent');

      const details = await json(server.api('/agents/@alice/mail-agent'));
      assert.equal(details.status, 200);
      assert.deepEqual(details.body.permissions, { filesystem: false, network: true, execute_commands: false });
      assert.deepEqual(details.body.mcp_servers, ['gmail']);
      assert.deepEqual(details.body.examples, [{ prompt: 'summarize unread emails' }]);
      assert.equal(details.body.readme, readme);
      assert.equal(details.body.license, 'MIT');
      assert.deepEqual(details.body.author, { username: 'alice', display_name: 'Alice', avatar_url: 'https://avatars.githubusercontent.com/u/4242?v=4' });
      assert.deepEqual(
        Object.keys(details.body),
        ['scope', 'name', 'full_name', 'description', 'readme', 'category', 'tags', 'license', 'repository', 'latest_version', 'download_count', 'star_count', 'is_verified', 'is_featured', 'author', 'permissions', 'mcp_servers', 'examples', 'created_at', 'updated_at'],
      );
      assert.deepEqual((await json(server.api('/agents/%40alice/mail-agent'))).body, details.body, '%40alice is @alice');

      const versions = await json(server.api('/agents/@alice/mail-agent/versions'));
      assert.deepEqual(
        versions.body.versions.map((entry: { version: string; tarball_size: number; download_count: number }) => [entry.version, entry.tarball_size, entry.download_count]),
        [
          ['1.1.0', mailV2.length, 0],
          ['1.0.0', mailV1.length, 0],
        ],
      );

      const descriptor = await json(server.api('/agents/@alice/mail-agent/download/1.1.0'));
      assert.deepEqual(descriptor.body, { tarball_url: `${server.url}/agents/@alice/mail-agent/1.1.0.tar.gz`, sha256: sha256(mailV2), size: mailV2.length });
      const fetched = await fetch(descriptor.body.tarball_url);
      assert.equal(fetched.status, 200);
      assert.match(fetched.headers.get('cache-control') ?? '', /immutable/);
      const bytes = new Uint8Array(await fetched.arrayBuffer());
      assert.equal(sha256(bytes), descriptor.body.sha256, 'the tarball matches the descriptor');

      const telemetry = await json(server.api('/telemetry', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ agent_name: 'mail-agent', agent_version: '1.1.0', success: true, duration_ms: 3500, os: 'linux', cli_version: '0.1.0' }) }));
      assert.deepEqual([telemetry.status, telemetry.body], [200, { ok: true }]);

      const moved = (await json(server.api('/agents/@alice/mail-agent'))).body;
      assert.equal(moved.download_count, 1, 'the download counted');
      assert.equal((await json(server.api('/agents/@alice/mail-agent/versions'))).body.versions[0].download_count, 1);
      assert.deepEqual((await json(server.api('/users/alice'))).body.total_downloads, 1);
      await server.api('/agents/@alice/mail-agent/download/1.1.0');
      assert.equal((await json(server.api('/agents/@alice/mail-agent'))).body.download_count, 1, 'a second download from the same address within the hour is not counted');
    });

    test('the agent web page is served at the url publish answered', async () => {
      const page = await fetch(`${server.url}/agents/@alice/mail-agent`, { headers: { Accept: 'text/html' } });
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /text\/html/);
      assert.match(await page.text(), /mail-agent/);
    });

    test('publishing with curl -F, files and text fields as the README shows', async () => {
      const file = path.join(server.dir, 'curl-agent.tar.gz');
      const readme = path.join(server.dir, 'README.md');
      const bytes = tarball('curl\n');
      await writeFile(file, bytes);
      await writeFile(readme, '# Curl agent\n\nPublished with curl.\n');
      const yaml = JSON.stringify(manifest('curl-agent', '0.1.0', { category: 'devtools' }));
      const { stdout } = await run('curl', ['-sS', '-X', 'PUT', '-H', `Authorization: Bearer ${bob}`, '-F', `tarball=@${file}`, '-F', `agent_yaml=${yaml}`, '-F', `readme=@${readme}`, '-w', '\n%{http_code}', `${server.url}/api/v1/agents/@bob/curl-agent`]);
      const [body, status] = stdout.split('\n');
      assert.equal(status, '200', body);
      assert.equal(JSON.parse(body!).full_name, '@bob/curl-agent');
      const details = (await json(server.api('/agents/@bob/curl-agent'))).body;
      assert.equal(details.readme, '# Curl agent\n\nPublished with curl.\n');
      const descriptor = (await json(server.api('/agents/@bob/curl-agent/download/0.1.0'))).body;
      assert.deepEqual([descriptor.sha256, descriptor.size], [sha256(bytes), bytes.length]);
      await server.api('/agents/@bob/curl-agent/0.1.0', { method: 'DELETE', headers: { Authorization: `Bearer ${bob}` } });
    });

    test('refusals: 401 without or with a bad token, 403 under another scope, 409 for a taken version; nothing changes', async () => {
      const before = await filesUnder(server.dir);
      const valid = { tarball: tarball(), readme: '# x', agentYaml: manifest('mail-agent', '2.0.0') };
      const anonymous = await publish(server, undefined, '@alice/mail-agent', valid);
      assert.deepEqual([anonymous.status, anonymous.body], [401, { error: 'Authentication required' }]);
      const forged = await publish(server, 'agentx_forged', '@alice/mail-agent', valid);
      assert.deepEqual([forged.status, forged.body], [401, { error: 'Invalid or revoked token' }]);
      const other = await publish(server, bob, '@alice/mail-agent', valid);
      assert.deepEqual([other.status, other.body], [403, { error: 'You can only publish under @bob scope' }]);
      const taken = await publish(server, alice, '@alice/mail-agent', { ...valid, agentYaml: manifest('mail-agent', '1.1.0') });
      assert.deepEqual([taken.status, taken.body], [409, { error: 'Version 1.1.0 already exists. Bump the version number.' }]);
      assert.deepEqual(await filesUnder(server.dir), before, 'no file was added or left behind');
      assert.equal((await json(server.api('/agents/@alice/mail-agent'))).body.latest_version, '1.1.0');
    });

    test('400 Validation failed lists every problem in the contract form', async () => {
      const before = await filesUnder(server.dir);
      const refused = await publish(server, alice, '@alice/mail-agent', {
        tarball: Buffer.from('PK\x03\x04 not gzip'),
        readme: '# x',
        agentYaml: { name: 'other-name', version: '1.2', category: 'nope', tags: 'email', permissions: { network: 'yes' } },
      });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error, 'Validation failed');
      assert.deepEqual(refused.body.details.sort(), [
        "agent.yaml: field 'permissions.network' must be a boolean, got string",
        "agent.yaml: field 'tags' must be an array, got string",
        "agent.yaml: missing required field 'description'",
        "agent.yaml: name 'other-name' does not match the package name 'mail-agent' in the URL",
        "agent.yaml: unknown category 'nope'; expected one of productivity, devtools, communication, data, research, security, finance, other",
        "agent.yaml: version '1.2' is not valid semver",
        'tarball: not a gzip file; expected a .tar.gz',
      ]);
      const missing = await publish(server, alice, '@alice/mail-agent', { agentYaml: '{not json' });
      assert.deepEqual(missing.body.details.filter((detail: string) => !detail.startsWith('agent.yaml')), ["missing required field 'tarball'", "missing required field 'readme'"]);
      assert.match(missing.body.details.find((detail: string) => detail.startsWith('agent.yaml')), /^agent\.yaml: not valid JSON \(/);
      const empty = await publish(server, alice, '@alice/mail-agent', { tarball: Buffer.alloc(0), readme: 'x'.repeat(512 * 1024 + 1), agentYaml: manifest('mail-agent', '3.0.0') });
      assert.deepEqual(empty.body.details.sort(), ['readme: larger than the limit of 524288 bytes', 'tarball: the file is empty']);
      const hugeYaml = await publish(server, alice, '@alice/mail-agent', { tarball: tarball(), readme: 'r', agentYaml: manifest('mail-agent', '3.0.0', { notes: 'x'.repeat(64 * 1024) }) });
      assert.deepEqual(hugeYaml.body, { error: 'Validation failed', details: ['agent_yaml: larger than the limit of 65536 bytes'] });
      assert.deepEqual(await filesUnder(server.dir), before);
    });

    test('413 for a tarball over REGISTRY_MAX_TARBALL_BYTES, 415 for a body that is not multipart', async () => {
      const before = await filesUnder(server.dir);
      const big = await publish(server, alice, '@alice/mail-agent', { tarball: Buffer.concat([tarball(), Buffer.alloc(300 * 1024)]), readme: 'x', agentYaml: manifest('mail-agent', '4.0.0') });
      assert.deepEqual([big.status, big.body], [413, { error: `The tarball is larger than the limit of ${256 * 1024} bytes (REGISTRY_MAX_TARBALL_BYTES)` }]);
      const wrongType = await json(server.api('/agents/@alice/mail-agent', { method: 'PUT', headers: { Authorization: `Bearer ${alice}`, 'Content-Type': 'application/json' }, body: '{}' }));
      assert.deepEqual([wrongType.status, wrongType.body], [415, { error: "Expected Content-Type multipart/form-data, got 'application/json'" }]);
      assert.deepEqual(await filesUnder(server.dir), before);
    });

    test('concurrent publishes of one version: exactly one 200; of different versions: all land', async () => {
      const same = await Promise.all(Array.from({ length: 6 }, () => publish(server, bob, '@bob/race', { tarball: tarball(), readme: 'r', agentYaml: manifest('race', '1.0.0') })));
      assert.deepEqual(same.map((answer) => answer.status).sort(), [200, 409, 409, 409, 409, 409]);
      const different = await Promise.all(['1.1.0', '1.2.0', '1.3.0', '2.0.0-beta.1'].map((version) => publish(server, bob, '@bob/race', { tarball: tarball(), readme: 'r', agentYaml: manifest('race', version) })));
      assert.deepEqual(different.map((answer) => answer.status), [200, 200, 200, 200]);
      const versions = (await json(server.api('/agents/@bob/race/versions'))).body.versions.map((entry: { version: string }) => entry.version);
      assert.deepEqual(versions, ['2.0.0-beta.1', '1.3.0', '1.2.0', '1.1.0', '1.0.0']);
    });

    test('a version being published is taken; a reservation left by a crashed publish expires and the number can be published', async () => {
      const reserveAs = (version: string, at: Date) =>
        withDatabase(server, async (state) => {
          const owner = await state.db.selectFrom('registry_users').select('id').where('username', '=', 'bob').executeTakeFirstOrThrow();
          const agent = parseAgentManifest(manifest('crashed', version)).manifest!;
          return registryPackages(state.db, fullTextFor(state)).reserve({ scope: 'bob', name: 'crashed', version, ownerId: owner.id, tarball: { blob: 'registry/bob/crashed/x.tar.gz', sha256: '0'.repeat(64), size: 1 }, manifest: agent, readme: '' }, at);
        });
      assert.ok(await reserveAs('1.0.0', new Date()));
      const busy = await publish(server, bob, '@bob/crashed', { tarball: tarball(), readme: 'r', agentYaml: manifest('crashed', '1.0.0') });
      assert.equal(busy.status, 409, 'a publish under way holds its number');
      assert.deepEqual((await json(server.api('/agents/@bob/crashed'))).body, { error: 'Agent not found' }, 'a reservation lists nothing');
      assert.ok(await reserveAs('2.0.0', new Date(Date.now() - 6 * 60 * 1000)));
      const retaken = await publish(server, bob, '@bob/crashed', { tarball: tarball(), readme: 'r', agentYaml: manifest('crashed', '2.0.0') });
      assert.equal(retaken.status, 200, JSON.stringify(retaken.body));
      assert.deepEqual((await json(server.api('/agents/@bob/crashed/versions'))).body.versions.map((entry: { version: string }) => entry.version), ['2.0.0']);
    });

    test('unpublish: owner only, 404 for an unknown version; the version leaves every list and is never published again', async () => {
      await publish(server, bob, '@bob/gone', { tarball: tarball(), readme: 'r', agentYaml: manifest('gone', '1.0.0') });
      await publish(server, bob, '@bob/gone', { tarball: tarball(), readme: 'r', agentYaml: manifest('gone', '1.1.0', { description: 'newest gone' }) });
      const byOther = await json(server.api('/agents/@bob/gone/1.1.0', { method: 'DELETE', headers: { Authorization: `Bearer ${alice}` } }));
      assert.equal(byOther.status, 403);
      const unknown = await json(server.api('/agents/@bob/gone/9.9.9', { method: 'DELETE', headers: { Authorization: `Bearer ${bob}` } }));
      assert.deepEqual([unknown.status, unknown.body], [404, { error: 'Version not found' }]);
      const removed = await json(server.api('/agents/@bob/gone/1.1.0', { method: 'DELETE', headers: { Authorization: `Bearer ${bob}` } }));
      assert.deepEqual([removed.status, removed.body], [200, { success: true, message: 'Version 1.1.0 unpublished' }]);
      assert.equal((await json(server.api('/agents/@bob/gone'))).body.latest_version, '1.0.0');
      assert.deepEqual((await json(server.api('/agents/@bob/gone/versions'))).body.versions.map((entry: { version: string }) => entry.version), ['1.0.0']);
      assert.deepEqual((await json(server.api('/agents/@bob/gone/download/1.1.0'))).body, { error: 'Version not found' });
      assert.equal((await fetch(`${server.url}/agents/@bob/gone/1.1.0.tar.gz`)).status, 404, 'its tarball is no longer served');
      assert.equal((await fetch(`${server.url}/agents/@bob/gone/1.0.0.tar.gz`)).status, 200);
      assert.equal((await json(server.api('/search?q=newest'))).body.total, 0, 'search no longer finds what only the unpublished version said');
      const again = await publish(server, bob, '@bob/gone', { tarball: tarball(), readme: 'r', agentYaml: manifest('gone', '1.1.0') });
      assert.deepEqual([again.status, again.body], [409, { error: 'Version 1.1.0 already exists. Bump the version number.' }]);
      await server.api('/agents/@bob/gone/1.0.0', { method: 'DELETE', headers: { Authorization: `Bearer ${bob}` } });
      assert.deepEqual((await json(server.api('/agents/@bob/gone'))).body, { error: 'Agent not found' }, 'with no version left the agent is listed nowhere');
    });

    test('discovery: 404 bodies, 405 with Allow, parameter errors naming the parameter', async () => {
      assert.deepEqual((await json(server.api('/agents/@alice/nothing'))).body, { error: 'Agent not found' });
      assert.deepEqual((await json(server.api('/agents/@alice/mail-agent/download/9.0.0'))).body, { error: 'Version not found' });
      assert.deepEqual((await json(server.api('/agents/@alice/mail-agent/download/1.2'))).body, { error: 'Version not found', details: ["'1.2' is not valid semver"] });
      assert.deepEqual((await json(server.api('/users/nobody'))).body, { error: 'User not found' });
      assert.deepEqual((await json(server.api('/nowhere'))).body, { error: 'Not found' });
      const wrongMethod = await server.api('/categories', { method: 'POST' });
      assert.equal(wrongMethod.status, 405);
      assert.match(wrongMethod.headers.get('allow') ?? '', /GET/);
      assert.match(((await wrongMethod.json()) as { error: string }).error, /^Method POST not allowed/);
      for (const [query, detail] of [
        ['limit=abc', 'Expected `limit` to be an integer from 1 to 100, got `abc`'],
        ['limit=101', 'Expected `limit` to be an integer from 1 to 100, got `101`'],
        ['page=0', 'Expected `page` to be an integer from 1 to 100000, got `0`'],
        ['sort=best', 'Expected `sort` to be one of downloads, stars, newest, got `best`'],
        ['category=games', 'Expected `category` to be one of productivity, devtools, communication, data, research, security, finance, other, got `games`'],
      ] as const) {
        assert.deepEqual((await json(server.api(`/agents?${query}`))).body, { error: 'Invalid query parameters', details: [detail] }, query);
      }
      assert.deepEqual((await json(server.api('/trending?period=year'))).body.details, ['Expected `period` to be one of day, week, month, got `year`']);
      assert.equal((await json(server.api('/search'))).status, 400);
    });

    test('lists: total counts every match, pages, categories with counts, a user and their agents', async () => {
      const page = await json(server.api('/agents?limit=1&page=2&sort=newest'));
      assert.equal(page.body.agents.length, 1);
      assert.equal(page.body.total, 3);
      assert.deepEqual([page.body.page, page.body.limit], [2, 1]);
      const categories = (await json(server.api('/categories'))).body.categories;
      assert.deepEqual(categories.find((category: { slug: string }) => category.slug === 'communication'), { slug: 'communication', name: 'Communication', count: 1 });
      assert.equal(categories.find((category: { slug: string }) => category.slug === 'productivity').count, 2, '@bob/race and @bob/crashed');
      const profile = (await json(server.api('/users/alice'))).body;
      assert.deepEqual({ ...profile, created_at: undefined }, { username: 'alice', display_name: 'Alice', avatar_url: 'https://avatars.githubusercontent.com/u/4242?v=4', bio: null, website: null, agent_count: 1, total_downloads: 1, created_at: undefined });
      const agents = (await json(server.api('/users/bob/agents'))).body;
      assert.deepEqual(agents.agents.map((agent: { full_name: string }) => agent.full_name), ['@bob/crashed', '@bob/race']);
      assert.equal((await json(server.api('/agents?category=communication'))).body.total, 1);
    });

    test('trending sorts by the downloads inside the period', async () => {
      const day = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 10);
      await withDatabase(server, async (state) => {
        const ids = new Map((await state.db.selectFrom('registry_agents').select(['id', 'name']).execute()).map((row) => [row.name, row.id]));
        await state.db
          .insertInto('registry_downloads_daily')
          .values([
            { agent_id: ids.get('race')!, day: day(20), count: 500 },
            { agent_id: ids.get('crashed')!, day: day(3), count: 40 },
          ])
          .execute();
      });
      const order = async (period: string) => (await json(server.api(`/trending?period=${period}`))).body.agents.map((agent: { full_name: string }) => agent.full_name);
      assert.deepEqual((await order('week')).slice(0, 2), ['@bob/crashed', '@alice/mail-agent'], 'crashed: 40 this week; mail-agent: one today; race: 500, but 20 days ago');
      assert.deepEqual((await order('month')).slice(0, 3), ['@bob/race', '@bob/crashed', '@alice/mail-agent']);
      assert.deepEqual((await order('day'))[0], '@alice/mail-agent');
    });

    test('read responses carry Cache-Control and an ETag, and answer 304 to If-None-Match', async () => {
      const first = await server.api('/agents/@alice/mail-agent');
      const etag = first.headers.get('etag');
      assert.ok(etag);
      assert.equal(first.headers.get('cache-control'), 'public, max-age=60');
      const again = await server.api('/agents/@alice/mail-agent', { headers: { 'If-None-Match': etag! } });
      assert.equal(again.status, 304);
      assert.equal(await again.text(), '');
      assert.equal((await server.api('/agents/@alice/mail-agent/download/1.0.0')).headers.get('cache-control'), 'no-store', 'a download descriptor must reach the server to count');
    });

    test('telemetry: validated, bounded, unknown agents accepted', async () => {
      const downloads = (await json(server.api('/agents/@alice/mail-agent'))).body.download_count;
      const bad = await json(server.api('/telemetry', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ agent_name: 'mail-agent', success: 'yes', duration_ms: -1 }) }));
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error, 'Validation failed');
      assert.equal(bad.body.details.length, 2);
      assert.match(bad.body.details.join('\n'), /'success'/);
      assert.match(bad.body.details.join('\n'), /'duration_ms'/);
      const unknown = await json(server.api('/telemetry', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ agent_name: 'no-such-agent', success: false }) }));
      assert.deepEqual([unknown.status, unknown.body], [200, { ok: true }]);
      const malformed = await json(server.api('/telemetry', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"agent_name":' }));
      assert.equal(malformed.status, 400);
      assert.match(malformed.body.error, /^Malformed JSON body/);
      const huge = await json(server.api('/telemetry', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ agent_name: 'x'.repeat(20_000), success: true }) }));
      assert.deepEqual([huge.status, huge.body], [413, { error: 'The request body is larger than the limit of 8192 bytes' }]);
      await server.api('/telemetry', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ agent_name: '@alice/mail-agent', agent_version: '1.1.0', success: false, os: 'darwin', duration_ms: 20 }) });
      await server.api('/telemetry', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ agent_name: '@alice/mail-agent', agent_version: '1.1.0', success: false, os: 'darwin', duration_ms: 30 }) });
      const aggregates = await withDatabase(server, (state) =>
        state.db.selectFrom('registry_telemetry_daily').select(['version', 'os', 'success', 'count', 'duration_ms_total']).orderBy('os').execute(),
      );
      assert.deepEqual(aggregates, [
        { version: '1.1.0', os: 'darwin', success: 0, count: 2, duration_ms_total: 50 },
        { version: '1.1.0', os: 'linux', success: 1, count: 1, duration_ms_total: 3500 },
      ], 'one row per day, agent, version, os and outcome; nothing for the unknown agent');
      assert.equal((await json(server.api('/agents/@alice/mail-agent'))).body.download_count, downloads, 'telemetry is not a download');
    });
  });
}
