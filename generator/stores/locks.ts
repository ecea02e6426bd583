// Named locks that die with their holder, shared by every process that writes the data directory
// or the manifest store: one build publishes at a time, writers of one release take turns. A lock
// is never taken from a live holder, however long it holds; when the holder dies (even by kill -9)
// the operating system or the database releases it, and the next waiter has it within moments.
// Two backends, one file each: a SQLite write lock on a file in a local directory, or a
// PostgreSQL session-level advisory lock when the processes share a database.

export interface Locks {
  /** Runs `section` holding the lock `name`, waiting as long as a live holder keeps it. */
  withLock<T>(name: string, section: () => Promise<T>): Promise<T>;
  /** What holds the locks, for messages: a directory or a redacted database URL. */
  readonly where: string;
}

export interface LocksOptions {
  /** PostgreSQL URL: advisory locks, shared by every process on that database, on any host. */
  url?: string | undefined;
  /** Without `url`: the directory holding one lock file per name, shared by processes on this host. */
  dir: string;
  /** Told when a held PostgreSQL lock's connection fails, so the section runs unprotected from then on. */
  onLost?: (name: string, error: Error) => void;
}

/** Advisory locks with a URL, lock files in `dir` otherwise; backends load only when used. */
export async function openLocks({ url, dir, onLost }: LocksOptions): Promise<Locks> {
  if (url !== undefined) {
    const { postgresLocks } = await import('./locks-postgres.ts');
    return postgresLocks({ url, ...(onLost ? { onLost } : {}) });
  }
  const { fileLocks } = await import('./locks-file.ts');
  return fileLocks({ dir });
}
