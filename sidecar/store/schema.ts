// The state database's tables as Kysely sees them. A migration changes the database; this file
// changes with it.
import type { Generated } from 'kysely';

export interface Tables {
  uploads: UploadsTable;
  registry_users: RegistryUsersTable;
  registry_tokens: RegistryTokensTable;
  registry_oauth_states: RegistryOAuthStatesTable;
  registry_agents: RegistryAgentsTable;
  registry_versions: RegistryVersionsTable;
  registry_downloads_daily: RegistryDownloadsDailyTable;
  registry_download_seen: RegistryDownloadSeenTable;
  registry_telemetry_daily: RegistryTelemetryDailyTable;
  fleet_registration_tokens: FleetRegistrationTokensTable;
  fleet_agents: FleetAgentsTable;
  fleet_tasks: FleetTasksTable;
}

/** One artifact file uploaded through the sidecar. Unique by (product, filename). */
export interface UploadsTable {
  id: Generated<number>;
  product: string;
  version: string;
  platform: string;
  arch: string;
  filename: string;
  /** Key of the bytes in the blob store. */
  blob_key: string;
  /** Bytes; a bigint column, read back as a number on both backends. */
  size: number;
  /** Lower-case hex. */
  sha256: string;
  content_type: string;
  /** The `sub` of the JWT that authorised the upload. */
  uploaded_by: string;
  /** ISO 8601 in UTC, e.g. `2024-01-15T10:30:00Z`. */
  uploaded_at: string;
}

// Registry (seed 003). Times are ISO 8601 UTC with milliseconds, so they compare as text; flags
// are 0/1 integers on both backends; lists and objects from agent.yaml are JSON text.

/** A GitHub account that signed in. `username` is its login, lower-cased: the scope it publishes under. */
export interface RegistryUsersTable {
  id: Generated<number>;
  github_id: number;
  username: string;
  display_name: string;
  avatar_url: string;
  bio: string | null;
  website: string | null;
  created_at: string;
  updated_at: string;
}

/** An `agentx_` token, by the hex sha256 of the token: the token itself is never stored. */
export interface RegistryTokensTable {
  token_hash: string;
  user_id: number;
  created_at: string;
  revoked_at: string | null;
}

/** A sign-in in progress: single use, by the hex sha256 of its `state`. */
export interface RegistryOAuthStatesTable {
  state_hash: string;
  redirect_uri: string;
  expires_at: string;
  used_at: string | null;
}

/** One package; its descriptive columns are copied from its latest active version. */
export interface RegistryAgentsTable {
  id: Generated<number>;
  /** Without the `@`. */
  scope: string;
  name: string;
  owner_id: number;
  description: Generated<string>;
  category: Generated<string>;
  tags: Generated<string>;
  license: string | null;
  repository: string | null;
  readme: Generated<string>;
  permissions: Generated<string>;
  mcp_servers: Generated<string>;
  examples: Generated<string>;
  /** Null while no version is active: the agent is then listed nowhere. */
  latest_version: string | null;
  download_count: Generated<number>;
  star_count: Generated<number>;
  is_verified: Generated<number>;
  is_featured: Generated<number>;
  created_at: string;
  updated_at: string;
}

/**
 * One version number, taken forever once reserved. `pending` while a publish is under way (a
 * crashed publish's reservation expires), `active` once published, `unpublished` after removal.
 */
export interface RegistryVersionsTable {
  agent_id: number;
  version: string;
  state: 'pending' | 'active' | 'unpublished';
  reserved_at: string;
  published_at: string | null;
  unpublished_at: string | null;
  tarball_blob: string;
  sha256: string;
  size: number;
  download_count: number;
  /** The manifest as published (AgentManifest). */
  agent_json: string;
  readme: string;
}

/** Downloads per agent per UTC day (`YYYY-MM-DD`), for trending. */
export interface RegistryDownloadsDailyTable {
  agent_id: number;
  day: string;
  count: number;
}

/** Downloads already counted this hour, by a hash of client address, agent, version and hour. */
export interface RegistryDownloadSeenTable {
  key: string;
  /** Hours since the epoch. */
  hour: number;
}

/** Telemetry reports per day, agent, version, os and outcome. */
export interface RegistryTelemetryDailyTable {
  day: string;
  agent_id: number;
  version: string;
  os: string;
  success: number;
  count: number;
  duration_ms_total: number;
}

// Fleet (seed 004). Times as in the registry: ISO 8601 UTC with milliseconds, compared as text.

/** A one-time registration token, by the hex sha256 of the token. */
export interface FleetRegistrationTokensTable {
  token_hash: string;
  /** JSON object of labels every agent registered with it gets. */
  labels: Generated<string>;
  created_by: string;
  created_at: string;
  expires_at: string;
  /** Set once, by the registration that used the token. */
  used_at: string | null;
  agent_id: string | null;
}

/** A registered deployment agent. `deleted_at` revokes its certificates and token. */
export interface FleetAgentsTable {
  id: string;
  name: string;
  version: string;
  /** JSON array from the capability vocabulary. */
  capabilities: string;
  /** JSON object of strings. */
  labels: string;
  /** `status` of its last heartbeat; anything but `healthy` shows the agent as degraded. */
  reported_status: string;
  /** JSON object: cpu, memory, disk in percent. */
  resource_usage: Generated<string>;
  running_tasks: Generated<number>;
  last_heartbeat_at: string;
  /** The newest certificate issued to it. */
  cert_serial: string;
  cert_expires_at: string;
  registered_at: string;
  updated_at: string;
  deleted_at: string | null;
}

/**
 * A task for one agent. `queued` → `leased` (one delivery: an attempt with its own `lease_id`) →
 * `completed` or `failed`; `cancelled` by an operator. A lease that runs out puts it back in the
 * queue, until `max_attempts` deliveries have been made.
 */
export interface FleetTasksTable {
  id: string;
  agent_id: string;
  task_type: string;
  /** JSON object. */
  payload: string;
  /** JSON object of strings; cleared once the task is finished. */
  credentials: string | null;
  timeout_seconds: number;
  priority: number;
  state: 'queued' | 'leased' | 'completed' | 'failed' | 'cancelled';
  attempts: Generated<number>;
  max_attempts: number;
  /** The latest attempt's lease: its id (the fencing token), holder and end. */
  lease_id: string | null;
  lease_agent_id: string | null;
  lease_expires_at: string | null;
  /** Percent, from the holder's last `task_progress`. */
  progress: number | null;
  progress_message: string | null;
  /** JSON array of {timestamp, level, message}. */
  logs: Generated<string>;
  /** 0/1 once completed. */
  success: number | null;
  /** JSON, as the agent reported it. */
  result: string | null;
  /** Why the mirror failed the task (attempts used up). */
  failure: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}
