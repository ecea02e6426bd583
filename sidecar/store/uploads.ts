// Uploaded artifact files. A (product, filename) is recorded once: a second upload of the same
// file name is refused, never replaced, even when two arrive at the same moment.
import type { Kysely, Selectable } from 'kysely';
import { isUniqueViolation } from './db.ts';
import type { Tables, UploadsTable } from './schema.ts';

export type Upload = Selectable<UploadsTable>;
export type NewUpload = Omit<Upload, 'id'>;

export interface UploadsRepo {
  /** Stores the upload and returns it with its id; UploadExistsError when the file name is taken. */
  record(upload: NewUpload): Promise<Upload>;
  find(product: string, filename: string): Promise<Upload | undefined>;
  /** The version's uploads in the order they were recorded, the same on both backends. */
  listByVersion(product: string, version: string): Promise<Upload[]>;
}

export class UploadExistsError extends Error {
  constructor(readonly product: string, readonly filename: string, options?: ErrorOptions) {
    super(`\`${product}\` already has an upload named \`${filename}\`; uploads are never replaced`, options);
    this.name = 'UploadExistsError';
  }
}

export function uploadsRepo(db: Kysely<Tables>): UploadsRepo {
  return {
    async record(upload) {
      try {
        return await db.insertInto('uploads').values(upload).returningAll().executeTakeFirstOrThrow();
      } catch (error) {
        if (isUniqueViolation(error)) throw new UploadExistsError(upload.product, upload.filename, { cause: error });
        throw error;
      }
    },

    find(product, filename) {
      return db.selectFrom('uploads').selectAll().where('product', '=', product).where('filename', '=', filename).executeTakeFirst();
    },

    listByVersion(product, version) {
      return db.selectFrom('uploads').selectAll().where('product', '=', product).where('version', '=', version).orderBy('id').execute();
    },
  };
}
