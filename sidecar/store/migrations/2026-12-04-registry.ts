// The registry of agent packages (seed 003): users, their hashed tokens, OAuth states, agents,
// versions, download and telemetry aggregates, and the full-text index (FTS5 on SQLite, weighted
// tsvectors with GIN indexes on PostgreSQL).
import { PostgresAdapter, sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('registry_users')
    .addColumn('id', 'integer', (column) => column.primaryKey().autoIncrement())
    .addColumn('github_id', 'bigint', (column) => column.notNull().unique())
    .addColumn('username', 'text', (column) => column.notNull().unique())
    .addColumn('display_name', 'text', (column) => column.notNull())
    .addColumn('avatar_url', 'text', (column) => column.notNull())
    .addColumn('bio', 'text')
    .addColumn('website', 'text')
    .addColumn('created_at', 'text', (column) => column.notNull())
    .addColumn('updated_at', 'text', (column) => column.notNull())
    .execute();
  await db.schema
    .createTable('registry_tokens')
    .addColumn('token_hash', 'text', (column) => column.primaryKey())
    .addColumn('user_id', 'integer', (column) => column.notNull().references('registry_users.id').onDelete('cascade'))
    .addColumn('created_at', 'text', (column) => column.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema
    .createTable('registry_oauth_states')
    .addColumn('state_hash', 'text', (column) => column.primaryKey())
    .addColumn('redirect_uri', 'text', (column) => column.notNull())
    .addColumn('expires_at', 'text', (column) => column.notNull())
    .addColumn('used_at', 'text')
    .execute();
  await db.schema.createIndex('registry_oauth_states_expires_idx').on('registry_oauth_states').column('expires_at').execute();
  await db.schema
    .createTable('registry_agents')
    .addColumn('id', 'integer', (column) => column.primaryKey().autoIncrement())
    .addColumn('scope', 'text', (column) => column.notNull())
    .addColumn('name', 'text', (column) => column.notNull())
    .addColumn('owner_id', 'integer', (column) => column.notNull().references('registry_users.id'))
    .addColumn('description', 'text', (column) => column.notNull().defaultTo(''))
    .addColumn('category', 'text', (column) => column.notNull().defaultTo('other'))
    .addColumn('tags', 'text', (column) => column.notNull().defaultTo('[]'))
    .addColumn('license', 'text')
    .addColumn('repository', 'text')
    .addColumn('readme', 'text', (column) => column.notNull().defaultTo(''))
    .addColumn('permissions', 'text', (column) => column.notNull().defaultTo('{}'))
    .addColumn('mcp_servers', 'text', (column) => column.notNull().defaultTo('[]'))
    .addColumn('examples', 'text', (column) => column.notNull().defaultTo('[]'))
    .addColumn('latest_version', 'text')
    .addColumn('download_count', 'bigint', (column) => column.notNull().defaultTo(0))
    .addColumn('star_count', 'integer', (column) => column.notNull().defaultTo(0))
    .addColumn('is_verified', 'integer', (column) => column.notNull().defaultTo(0))
    .addColumn('is_featured', 'integer', (column) => column.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (column) => column.notNull())
    .addColumn('updated_at', 'text', (column) => column.notNull())
    .addUniqueConstraint('registry_agents_scope_name_key', ['scope', 'name'])
    .execute();
  await db.schema.createIndex('registry_agents_category_idx').on('registry_agents').columns(['category', 'download_count']).execute();
  await db.schema.createIndex('registry_agents_downloads_idx').on('registry_agents').column('download_count').execute();
  await db.schema.createIndex('registry_agents_owner_idx').on('registry_agents').column('owner_id').execute();
  await db.schema
    .createTable('registry_versions')
    .addColumn('agent_id', 'integer', (column) => column.notNull().references('registry_agents.id'))
    .addColumn('version', 'text', (column) => column.notNull())
    .addColumn('state', 'text', (column) => column.notNull())
    .addColumn('reserved_at', 'text', (column) => column.notNull())
    .addColumn('published_at', 'text')
    .addColumn('unpublished_at', 'text')
    .addColumn('tarball_blob', 'text', (column) => column.notNull())
    .addColumn('sha256', 'text', (column) => column.notNull())
    .addColumn('size', 'bigint', (column) => column.notNull())
    .addColumn('download_count', 'bigint', (column) => column.notNull().defaultTo(0))
    .addColumn('agent_json', 'text', (column) => column.notNull())
    .addColumn('readme', 'text', (column) => column.notNull())
    .addPrimaryKeyConstraint('registry_versions_pkey', ['agent_id', 'version'])
    .execute();
  await db.schema
    .createTable('registry_downloads_daily')
    .addColumn('agent_id', 'integer', (column) => column.notNull().references('registry_agents.id'))
    .addColumn('day', 'text', (column) => column.notNull())
    .addColumn('count', 'bigint', (column) => column.notNull())
    .addPrimaryKeyConstraint('registry_downloads_daily_pkey', ['agent_id', 'day'])
    .execute();
  await db.schema.createIndex('registry_downloads_daily_day_idx').on('registry_downloads_daily').columns(['day', 'agent_id']).execute();
  await db.schema
    .createTable('registry_download_seen')
    .addColumn('key', 'text', (column) => column.primaryKey())
    .addColumn('hour', 'integer', (column) => column.notNull())
    .execute();
  await db.schema.createIndex('registry_download_seen_hour_idx').on('registry_download_seen').column('hour').execute();
  await db.schema
    .createTable('registry_telemetry_daily')
    .addColumn('day', 'text', (column) => column.notNull())
    .addColumn('agent_id', 'integer', (column) => column.notNull().references('registry_agents.id'))
    .addColumn('version', 'text', (column) => column.notNull())
    .addColumn('os', 'text', (column) => column.notNull())
    .addColumn('success', 'integer', (column) => column.notNull())
    .addColumn('count', 'bigint', (column) => column.notNull())
    .addColumn('duration_ms_total', 'bigint', (column) => column.notNull())
    .addPrimaryKeyConstraint('registry_telemetry_daily_pkey', ['day', 'agent_id', 'version', 'os', 'success'])
    .execute();
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    // One vector matches (everything, GIN-indexed); a small one ranks, so ranking never reads a README.
    await sql`alter table registry_agents add column search_vector tsvector, add column search_head tsvector`.execute(db);
    await sql`create index registry_agents_search_idx on registry_agents using gin (search_vector)`.execute(db);
  } else {
    await sql`create virtual table registry_search using fts5(name, description, tags, readme, tokenize = 'porter unicode61')`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) await sql`drop table registry_search`.execute(db);
  for (const table of ['registry_telemetry_daily', 'registry_download_seen', 'registry_downloads_daily', 'registry_versions', 'registry_agents', 'registry_oauth_states', 'registry_tokens', 'registry_users']) {
    await db.schema.dropTable(table).execute();
  }
}
