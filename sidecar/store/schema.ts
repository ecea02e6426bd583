// The state database's tables as Kysely sees them. A migration changes the database; this file
// changes with it.
import type { Generated } from 'kysely';

export interface Tables {
  uploads: UploadsTable;
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
