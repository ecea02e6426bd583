// The sidecar's state database: one contract suite run on SQLite and on PostgreSQL, then what is
// special to each backend (WAL mode, start-up failures).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, type DatabaseOptions, type StateDb } from '../sidecar/store/db.ts';
import { migrate, pendingMigrations } from '../sidecar/store/migrate.ts';
import { UploadExistsError, uploadsRepo, type NewUpload } from '../sidecar/store/uploads.ts';
import { REPO, removeDir, tempDir } from './helpers/store.ts';

const INITIAL = '2026-11-23-initial';
const REGISTRY = '2026-12-04-registry';
const FLEET = '2026-12-05-fleet';
const ALL = [INITIAL, REGISTRY, FLEET];

interface Backend {
  /** Options for an empty database no other test uses, and how to remove it. */
  create(): Promise<{ options: DatabaseOptions; dispose(): Promise<void> }>;
}

const sqlite: Backend = {
  async create() {
    const dir = await tempDir('mirror-state-');
    return { options: { file: path.join(dir, 'state.db') }, dispose: () => removeDir(dir) };
  },
};

/** Each test gets its own schema in the one database CI provides. */
function postgres(url: string): Backend {
  return {
    async create() {
      const schema = `mirror_test_${randomBytes(6).toString('hex')}`;
      return {
        options: { url, file: '', schema },
        async dispose() {
          const admin = await openDatabase({ url, file: '' });
          try {
            await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(admin.db);
          } finally {
            await admin.close();
          }
        },
      };
    },
  };
}

function describeStateDb(name: string, backend: Backend): void {
  describe(`state database on ${name}`, () => {
    let options: DatabaseOptions;
    let state: StateDb;
    let dispose: () => Promise<void>;
    beforeEach(async () => {
      ({ options, dispose } = await backend.create());
      state = await openDatabase(options);
    });
    afterEach(async () => {
      await state.close();
      await dispose();
    });

    test('migrating an empty database applies every migration; a second run applies nothing', async () => {
      assert.deepEqual(await pendingMigrations(state), ALL);
      assert.deepEqual(await migrate(state), { applied: ALL });
      assert.deepEqual(await pendingMigrations(state), []);
      assert.deepEqual(await migrate(state), { applied: [] });
      assert.equal(await hasUploadsTable(state), true);
    });

    test('down reverts one migration at a time and latest applies them again', async () => {
      await migrate(state);
      await uploadsRepo(state.db).record(upload());
      assert.deepEqual(await migrate(state, 'down'), { applied: [FLEET] });
      assert.deepEqual(await migrate(state, 'down'), { applied: [REGISTRY] });
      assert.equal(await hasUploadsTable(state), true);
      assert.deepEqual(await migrate(state, 'down'), { applied: [INITIAL] });
      assert.equal(await hasUploadsTable(state), false);
      assert.deepEqual(await migrate(state), { applied: ALL });
      assert.deepEqual(await uploadsRepo(state.db).listByVersion('agent', '1.2.3'), []);
    });

    test('a failing migration throws naming it and stays pending', async () => {
      await sql`create table uploads (id integer)`.execute(state.db);
      await assert.rejects(migrate(state), /^Error: Migration `2026-11-23-initial` \(latest\) failed: .*"uploads" already exists/);
      assert.deepEqual(await pendingMigrations(state), ALL);
    });

    test('two processes migrating at once both succeed and the migration is applied once', async () => {
      const migrators = await Promise.all([spawnMigrator(options), spawnMigrator(options)]);
      const runs = await Promise.all(migrators.map((migrator) => migrator.go()));
      assert.deepEqual(runs.map((run) => run.applied).sort(), [[], ALL]);
      assert.deepEqual(await appliedMigrations(state), ALL);
    });

    test('two migrate calls on one handle at once apply the migration once', async () => {
      const runs = await Promise.all([migrate(state), migrate(state)]);
      assert.deepEqual(runs.map((run) => run.applied).sort(), [[], ALL]);
      assert.deepEqual(await appliedMigrations(state), ALL);
    });

    test('record, find and listByVersion return exactly what was stored, a 5 GB size as a number', async () => {
      await migrate(state);
      const repo = uploadsRepo(state.db);
      const linux = upload();
      const darwin = upload({ platform: 'darwin', arch: 'arm64', filename: 'agent_1.2.3_darwin_arm64.zip', blob_key: 'releases/agent_1.2.3_darwin_arm64.zip', size: 12 });
      const newer = upload({ version: '1.2.4', filename: 'agent_1.2.4_linux_amd64.zip', blob_key: 'releases/agent_1.2.4_linux_amd64.zip' });
      const recorded = await repo.record(linux);
      assert.equal(typeof recorded.id, 'number');
      assert.deepEqual(recorded, { id: recorded.id, ...linux });
      await repo.record(darwin);
      await repo.record(newer);
      assert.deepEqual(await repo.find('agent', linux.filename), recorded);
      assert.equal(await repo.find('agent', 'agent_9.9.9_linux_amd64.zip'), undefined);
      assert.equal(await repo.find('other', linux.filename), undefined);
      assert.deepEqual((await repo.listByVersion('agent', '1.2.3')).map(({ id: _id, ...rest }) => rest), [linux, darwin]);
      assert.deepEqual(await repo.listByVersion('agent', '1.0.0'), []);
    });

    test('a second upload of a (product, filename) throws UploadExistsError and changes nothing', async () => {
      await migrate(state);
      const repo = uploadsRepo(state.db);
      const first = await repo.record(upload());
      await assert.rejects(repo.record(upload({ version: '1.2.4', sha256: 'cd'.repeat(32) })), (error) => error instanceof UploadExistsError && error.filename === first.filename);
      assert.deepEqual(await repo.find('agent', first.filename), first);
      assert.deepEqual(await repo.listByVersion('agent', '1.2.4'), []);
      assert.equal((await repo.record(upload({ product: 'other' }))).product, 'other', 'another product may use the same file name');
    });

    test('20 concurrent records of one file name give exactly one success', async () => {
      await migrate(state);
      const repo = uploadsRepo(state.db);
      const attempts = await Promise.allSettled(Array.from({ length: 20 }, (_, attempt) => repo.record(upload({ sha256: attempt.toString(16).padStart(64, '0') }))));
      const recorded = attempts.flatMap((attempt) => (attempt.status === 'fulfilled' ? [attempt.value] : []));
      const refused = attempts.flatMap((attempt) => (attempt.status === 'rejected' ? [attempt.reason as unknown] : []));
      assert.equal(recorded.length, 1);
      assert.ok(refused.every((error) => error instanceof UploadExistsError), String(refused.find((error) => !(error instanceof UploadExistsError))));
      assert.deepEqual(await repo.listByVersion('agent', '1.2.3'), recorded);
    });

    test('ping answers while open and rejects after close', async () => {
      await state.ping();
      await state.close();
      await assert.rejects(state.ping());
    });
  });
}

describeStateDb('SQLite', sqlite);

const postgresUrl = process.env.TEST_DATABASE_URL;
if (postgresUrl) {
  describeStateDb('PostgreSQL', postgres(postgresUrl));
} else {
  describe('state database on PostgreSQL', { skip: process.env.CI ? false : 'set TEST_DATABASE_URL=postgres://… to run it' }, () => {
    test('has a server', () => assert.fail('CI must run the PostgreSQL suite, but TEST_DATABASE_URL is not set'));
  });
}

describe('SQLite state database file', () => {
  test('is in WAL mode, waits for locks, enforces foreign keys', async () => {
    const dir = await tempDir('mirror-state-');
    const state = await openDatabase({ file: path.join(dir, 'nested', 'state.db') });
    try {
      assert.equal(await pragma(state, 'journal_mode'), 'wal');
      assert.equal(await pragma(state, 'busy_timeout'), 5000);
      assert.equal(await pragma(state, 'foreign_keys'), 1);
      assert.equal(await pragma(state, 'synchronous'), 1);
    } finally {
      await state.close();
      await removeDir(dir);
    }
  });

  test('a path inside a regular file is refused, naming the path', async () => {
    await assert.rejects(openDatabase({ file: '/etc/hostname/state.db' }), /`\/etc\/hostname\/state\.db`: .*(ENOTDIR|EEXIST)/);
  });
});

describe('PostgreSQL state database start-up', () => {
  test('an unreachable server is refused, naming DATABASE_URL and the cause but not the password', async () => {
    await assert.rejects(openDatabase({ url: 'postgres://postgres:secret@127.0.0.1:1/test', file: '' }), (error: Error) => {
      assert.match(error.message, /DATABASE_URL \(postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/test\): .*ECONNREFUSED/);
      assert.doesNotMatch(error.message, /secret/);
      return true;
    });
  });

  test('a value that is not a postgres:// URL is refused, naming DATABASE_URL', async () => {
    await assert.rejects(openDatabase({ url: 'not a url', file: '' }), /DATABASE_URL .*does not parse/);
    await assert.rejects(openDatabase({ url: 'mysql://root@127.0.0.1/test', file: '' }), /DATABASE_URL .*`mysql:` URL/);
  });
});

function upload(overrides: Partial<NewUpload> = {}): NewUpload {
  return {
    product: 'agent',
    version: '1.2.3',
    platform: 'linux',
    arch: 'amd64',
    filename: 'agent_1.2.3_linux_amd64.zip',
    blob_key: 'releases/agent_1.2.3_linux_amd64.zip',
    size: 5_000_000_000,
    sha256: 'ab'.repeat(32),
    content_type: 'application/zip',
    uploaded_by: 'ci@example.com',
    uploaded_at: '2024-01-15T10:30:00Z',
    ...overrides,
  };
}

async function hasUploadsTable(state: StateDb): Promise<boolean> {
  const tables = await state.db.introspection.getTables();
  return tables.some((table) => table.name === 'uploads' && (state.schema === undefined || table.schema === state.schema));
}

async function appliedMigrations(state: StateDb): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(state.db);
  return rows.map((row) => row.name);
}

async function pragma(state: StateDb, name: string): Promise<unknown> {
  const { rows } = await sql.raw<Record<string, unknown>>(`pragma ${name}`).execute(state.db);
  return Object.values(rows[0] ?? {})[0];
}

const MIGRATOR_SCRIPT = `
import { openDatabase } from ${JSON.stringify(pathToFileURL(path.join(REPO, 'sidecar/store/db.ts')).href)};
import { migrate } from ${JSON.stringify(pathToFileURL(path.join(REPO, 'sidecar/store/migrate.ts')).href)};
const state = await openDatabase(JSON.parse(process.argv[1]));
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
try {
  process.stdout.write(JSON.stringify(await migrate(state)));
} finally {
  await state.close();
}
`;

/** A process that opens the database and migrates when told to `go`, so two can start together. */
async function spawnMigrator(options: DatabaseOptions): Promise<{ go(): Promise<{ applied: string[] }> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', MIGRATOR_SCRIPT, JSON.stringify(options)], { cwd: REPO });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`the migrating process exited with ${code}: ${stderr}`))));
  });
  const ready = new Promise<void>((resolve) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.startsWith('ready\n')) resolve();
    });
  });
  await Promise.race([ready, exited]);
  return {
    async go() {
      child.stdin.end('go\n');
      await exited;
      return JSON.parse(stdout.slice('ready\n'.length)) as { applied: string[] };
    },
  };
}
