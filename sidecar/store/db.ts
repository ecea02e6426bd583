// The sidecar's state database: SQLite in WAL mode by default, PostgreSQL when a URL is given.
// Every difference between the two lives in this file; the rest of the store writes one Kysely
// query for both.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  sql,
  type DatabaseConnection,
  type SqliteDialectConfig,
} from 'kysely';
import type { Pool } from 'pg';
import type { Tables } from './schema.ts';

export interface DatabaseOptions {
  /** PostgreSQL URL (postgres://…); absent: SQLite at `file`. */
  url?: string;
  /** SQLite file, e.g. `.mirror/state.db`; `:memory:` allowed. */
  file: string;
  /**
   * PostgreSQL only: the schema that holds the tables, created if missing and made the pool's
   * whole `search_path`. Tests give each run its own; the sidecar leaves it unset.
   */
  schema?: string;
  /** PostgreSQL only: an idle connection that fails (a server restart) is reported here instead of crashing the process. */
  onError?: (error: Error) => void;
}

export interface StateDb {
  db: Kysely<Tables>;
  dialect: 'sqlite' | 'postgres';
  /**
   * True where `select … for update skip locked` exists (PostgreSQL): a claim locks its rows and
   * skips others' locked ones. SQLite has no row locks; its write transactions run one at a time.
   */
  rowLocks: boolean;
  /** The schema given in `DatabaseOptions.schema`, where the migrator keeps its own tables too. */
  schema: string | undefined;
  /** Resolves when the database answers a query. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const SQLITE_BUSY_TIMEOUT_MS = 5_000;
const POSTGRES_POOL_SIZE = 10;
const POSTGRES_CONNECT_TIMEOUT_MS = 10_000;

/** Opens the database and checks it answers; a backend that cannot start throws, naming the setting. */
export async function openDatabase({ url, file, schema, onError = (error) => console.error(error) }: DatabaseOptions): Promise<StateDb> {
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new TypeError(`Expected \`schema\` to be a lower-case SQL identifier, got \`${schema}\``);
  if (schema !== undefined && url === undefined) throw new TypeError('`schema` applies to PostgreSQL only, but no `url` was given');
  const { db, dialect } = url === undefined ? await openSqlite(file) : await openPostgres(url, schema, onError);
  return {
    db,
    dialect,
    rowLocks: dialect === 'postgres',
    schema,
    async ping() {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}

/** True for an insert or update that broke a unique constraint, on either backend. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === '23505';
}

async function openSqlite(file: string): Promise<{ db: Kysely<Tables>; dialect: 'sqlite' }> {
  const { default: Database } = await import('better-sqlite3');
  let database: BetterSqlite3.Database | undefined;
  try {
    if (file !== ':memory:') await mkdir(path.dirname(path.resolve(file)), { recursive: true });
    // better-sqlite3's `timeout` is SQLite's busy_timeout.
    database = new Database(file, { timeout: SQLITE_BUSY_TIMEOUT_MS });
    const journal = database.pragma('journal_mode = WAL', { simple: true });
    if (file !== ':memory:' && journal !== 'wal') throw new Error(`the file system kept journal_mode \`${String(journal)}\` instead of WAL`);
    database.pragma('foreign_keys = ON');
    database.pragma('synchronous = NORMAL');
  } catch (error) {
    database?.close();
    throw new Error(`Cannot open the SQLite state database at \`${file}\`: ${messageOf(error)}`, { cause: error });
  }
  return { db: new Kysely<Tables>({ dialect: new LockingSqliteDialect({ database }) }), dialect: 'sqlite' };
}

async function openPostgres(url: string, schema: string | undefined, onError: (error: Error) => void): Promise<{ db: Kysely<Tables>; dialect: 'postgres' }> {
  const shown = redactedPostgresUrl(url);
  const { default: pg } = await import('pg');
  // Sizes are bigint; within this pool they come back as numbers, not pg's default strings.
  const types = new pg.TypeOverrides();
  types.setTypeParser(pg.types.builtins.INT8, parseSafeInteger);
  const pool: Pool = new pg.Pool({
    connectionString: url,
    max: POSTGRES_POOL_SIZE,
    connectionTimeoutMillis: POSTGRES_CONNECT_TIMEOUT_MS,
    types,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  pool.on('error', onError);
  try {
    await pool.query(schema === undefined ? 'select 1' : `create schema if not exists ${schema}`);
  } catch (error) {
    await pool.end();
    throw new Error(`Cannot connect to the PostgreSQL state database at DATABASE_URL (${shown}): ${messageOf(error)}`, { cause: error });
  }
  return { db: new Kysely<Tables>({ dialect: new IdentityPostgresDialect({ pool }) }), dialect: 'postgres' };
}

/**
 * Kysely's SQLite adapter migrates outside a transaction and takes no lock, so two processes
 * migrating at once both apply the same migration (kysely-org/kysely#729). SQLite's DDL is
 * transactional: declaring it makes the migrator run in one transaction, which the driver below
 * begins immediate, holding the write lock. The second process waits, then finds nothing to do,
 * and a failed migration rolls back whole. A migration cannot switch `foreign_keys` inside it;
 * a table rebuild uses `defer_foreign_keys` instead.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/**
 * Kysely begins SQLite transactions deferred. A deferred transaction that reads, then writes after
 * another process has written, fails with SQLITE_BUSY at once instead of waiting out busy_timeout;
 * taking the write lock at `begin` makes two processes' migrators and writers queue instead.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class LockingSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createAdapter(): TransactionalDdlSqliteAdapter {
    return new TransactionalDdlSqliteAdapter();
  }

  override createDriver(): ImmediateSqliteDriver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

/** Migrations say `autoIncrement()` for both backends; PostgreSQL's form of it is an identity column. */
class IdentityQueryCompiler extends PostgresQueryCompiler {
  protected override getAutoIncrement(): string {
    return 'generated by default as identity';
  }
}

class IdentityPostgresDialect extends PostgresDialect {
  override createQueryCompiler(): IdentityQueryCompiler {
    return new IdentityQueryCompiler();
  }
}

function parseSafeInteger(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) throw new RangeError(`The bigint ${value} does not fit in a JavaScript number`);
  return number;
}

/** The URL with its password masked. A value that does not parse is not echoed: it may hold one. */
function redactedPostgresUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('Expected DATABASE_URL to be a postgres:// URL, got a value that does not parse as a URL');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') throw new Error(`Expected DATABASE_URL to be a postgres:// URL, got a \`${parsed.protocol}\` URL`);
  if (parsed.password) parsed.password = '***';
  return parsed.href;
}

/** An error's message; Node reports a refused dual-stack connect as an AggregateError without one. */
function messageOf(error: unknown): string {
  if (error instanceof AggregateError && !error.message) return error.errors.map(messageOf).join('; ');
  if (error instanceof Error) return error.message || String((error as NodeJS.ErrnoException).code ?? error.name);
  return String(error);
}
