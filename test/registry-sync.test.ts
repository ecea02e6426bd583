// The sample store's registry versions reach a fresh state database at start, as the store says
// they are (an unpublished one listed nowhere, its number taken); a second start adds nothing.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { importRegistryStore } from '../sidecar/registry/sync.ts';
import { registryQueries } from '../sidecar/registry/queries.ts';
import { fullTextFor } from '../sidecar/registry/search.ts';
import { openDatabase, type StateDb } from '../sidecar/store/db.ts';
import { migrate } from '../sidecar/store/migrate.ts';
import { createTestDatabase, POSTGRES_MISSING } from './helpers/postgres.ts';
import { SAMPLE_RELEASES } from './helpers/sample-site.ts';
import { removeDir, tempDir } from './helpers/store.ts';

const backends: { name: string; missing: string | false; open(): Promise<{ state: StateDb; dispose(): Promise<void> }> }[] = [
  {
    name: 'SQLite',
    missing: false,
    async open() {
      const dir = await tempDir('mirror-sync-');
      const state = await openDatabase({ file: path.join(dir, 'state.db') });
      return { state, dispose: () => removeDir(dir) };
    },
  },
  {
    name: 'PostgreSQL',
    missing: POSTGRES_MISSING,
    async open() {
      const database = await createTestDatabase('mirror_sync');
      const state = await openDatabase({ url: database.url, file: '' });
      return { state, dispose: () => database.drop() };
    },
  },
];

for (const backend of backends) {
  describe(`registry import from the manifest store on ${backend.name}`, { skip: !process.env.CI && backend.missing }, () => {
    test('every sample version once, as the store says; nothing the second time', async () => {
      assert.equal(backend.missing, false, backend.missing || '');
      const { state, dispose } = await backend.open();
      try {
        await migrate(state);
        assert.equal(await importRegistryStore({ releasesDir: SAMPLE_RELEASES, state }), 9);
        assert.equal(await importRegistryStore({ releasesDir: SAMPLE_RELEASES, state }), 0);
        const queries = registryQueries(state.db, fullTextFor(state));
        const listed = await queries.list({ sort: 'downloads', page: 1, limit: 100 });
        assert.equal(listed.total, 6);
        assert.equal((await queries.details('alice', 'paper-digest'))?.latest_version, '0.1.0', '0.2.0 is unpublished in the store');
        assert.deepEqual((await queries.versions('agentx', 'gmail-agent'))?.map((version) => [version.version, version.published_at]), [
          ['1.2.0', '2026-02-01T09:30:00Z'],
          ['1.1.0', '2026-01-20T10:00:00Z'],
        ]);
        assert.equal((await queries.details('agentx', 'gmail-agent'))?.updated_at, '2026-02-01T09:30:00Z', "an import dates the agent by its latest version, not by the import");
        assert.equal((await queries.list({ q: 'email', sort: 'relevance', page: 1, limit: 20 })).agents[0]?.full_name, '@agentx/gmail-agent');
      } finally {
        await state.close();
        await dispose();
      }
    });
  });
}
