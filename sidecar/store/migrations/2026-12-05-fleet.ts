// The deployment-agent fleet (seed 004): one-time registration tokens, agents, and their tasks
// with leases. An agent is deleted by marking it: its id stays known, so its certificate and token
// are refused as revoked, while its name is free again. No index covers `last_heartbeat_at`: every
// heartbeat writes it, and an unindexed column lets PostgreSQL update the row in place (HOT).
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('fleet_registration_tokens')
    .addColumn('token_hash', 'text', (column) => column.primaryKey())
    .addColumn('labels', 'text', (column) => column.notNull().defaultTo('{}'))
    .addColumn('created_by', 'text', (column) => column.notNull())
    .addColumn('created_at', 'text', (column) => column.notNull())
    .addColumn('expires_at', 'text', (column) => column.notNull())
    .addColumn('used_at', 'text')
    .addColumn('agent_id', 'text')
    .execute();
  await db.schema
    .createTable('fleet_agents')
    .addColumn('id', 'text', (column) => column.primaryKey())
    .addColumn('name', 'text', (column) => column.notNull())
    .addColumn('version', 'text', (column) => column.notNull())
    .addColumn('capabilities', 'text', (column) => column.notNull())
    .addColumn('labels', 'text', (column) => column.notNull())
    .addColumn('reported_status', 'text', (column) => column.notNull())
    .addColumn('resource_usage', 'text', (column) => column.notNull().defaultTo('{}'))
    .addColumn('running_tasks', 'integer', (column) => column.notNull().defaultTo(0))
    .addColumn('last_heartbeat_at', 'text', (column) => column.notNull())
    .addColumn('cert_serial', 'text', (column) => column.notNull())
    .addColumn('cert_expires_at', 'text', (column) => column.notNull())
    .addColumn('registered_at', 'text', (column) => column.notNull())
    .addColumn('updated_at', 'text', (column) => column.notNull())
    .addColumn('deleted_at', 'text')
    .execute();
  await db.schema.createIndex('fleet_agents_name_live_key').on('fleet_agents').column('name').unique().where(sql.ref('deleted_at'), 'is', null).execute();
  await db.schema
    .createTable('fleet_tasks')
    .addColumn('id', 'text', (column) => column.primaryKey())
    .addColumn('agent_id', 'text', (column) => column.notNull().references('fleet_agents.id'))
    .addColumn('task_type', 'text', (column) => column.notNull())
    .addColumn('payload', 'text', (column) => column.notNull())
    .addColumn('credentials', 'text')
    .addColumn('timeout_seconds', 'integer', (column) => column.notNull())
    .addColumn('priority', 'integer', (column) => column.notNull())
    .addColumn('state', 'text', (column) => column.notNull())
    .addColumn('attempts', 'integer', (column) => column.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (column) => column.notNull())
    .addColumn('lease_id', 'text')
    .addColumn('lease_agent_id', 'text')
    .addColumn('lease_expires_at', 'text')
    .addColumn('progress', 'integer')
    .addColumn('progress_message', 'text')
    .addColumn('logs', 'text', (column) => column.notNull().defaultTo('[]'))
    .addColumn('success', 'integer')
    .addColumn('result', 'text')
    .addColumn('failure', 'text')
    .addColumn('created_by', 'text', (column) => column.notNull())
    .addColumn('created_at', 'text', (column) => column.notNull())
    .addColumn('updated_at', 'text', (column) => column.notNull())
    .addColumn('finished_at', 'text')
    .execute();
  await db.schema.createIndex('fleet_tasks_queue_idx').on('fleet_tasks').columns(['agent_id', 'state', 'priority', 'created_at']).execute();
  await db.schema.createIndex('fleet_tasks_lease_idx').on('fleet_tasks').columns(['state', 'lease_expires_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ['fleet_tasks', 'fleet_agents', 'fleet_registration_tokens']) await db.schema.dropTable(table).execute();
}
