// Brings the state database's tables to the latest migration, or one migration back. Safe to run
// from two processes at once: the migrator applies in one transaction under a lock (an advisory
// lock on PostgreSQL, the write lock of an immediate transaction on SQLite; see db.ts).
import { Migrator, type Migration, type MigrationProvider, type MigrationResultSet } from 'kysely';
import type { StateDb } from './db.ts';

// Listed, not read from the directory, so a bundled sidecar finds them. Names sort by date.
const MIGRATIONS: Record<string, () => Promise<Migration>> = {
  '2026-11-23-initial': () => import('./migrations/2026-11-23-initial.ts'),
  '2026-12-04-registry': () => import('./migrations/2026-12-04-registry.ts'),
  '2026-12-05-fleet': () => import('./migrations/2026-12-05-fleet.ts'),
};

const provider: MigrationProvider = {
  async getMigrations() {
    const entries = await Promise.all(Object.entries(MIGRATIONS).map(async ([name, load]) => [name, await load()] as const));
    return Object.fromEntries(entries);
  },
};

/** `latest` applies every pending migration; `down` reverts the last applied one. Returns the names it ran. */
export async function migrate(state: StateDb, direction: 'latest' | 'down' = 'latest'): Promise<{ applied: string[] }> {
  const migrator = migratorFor(state);
  const result = direction === 'latest' ? await migrator.migrateToLatest() : await migrator.migrateDown();
  if (result.error !== undefined) throw migrationError(direction, result);
  return { applied: (result.results ?? []).filter((step) => step.status === 'Success').map((step) => step.migrationName) };
}

/** Names of the migrations not yet applied, oldest first. */
export async function pendingMigrations(state: StateDb): Promise<string[]> {
  const migrations = await migratorFor(state).getMigrations();
  return migrations.filter((migration) => migration.executedAt === undefined).map((migration) => migration.name);
}

function migratorFor(state: StateDb): Migrator {
  return new Migrator({ db: state.db, provider, ...(state.schema === undefined ? {} : { migrationTableSchema: state.schema }) });
}

function migrationError(direction: string, { error, results }: MigrationResultSet): Error {
  const message = error instanceof Error ? error.message : String(error);
  const failed = results?.find((step) => step.status === 'Error');
  const what = failed ? `Migration \`${failed.migrationName}\` (${direction}) failed` : `Migrating the state database (${direction}) failed`;
  return new Error(`${what}: ${message}`, { cause: error });
}
