// Lock backend: one SQLite file per name in a directory, held by an open `BEGIN IMMEDIATE`.
// SQLite's write lock is an fcntl lock, which the kernel drops the moment its process exits,
// however it exits; SQLite also keeps it correct between connections of one process, which plain
// fcntl does not. Nothing is written, so a crash leaves no journal behind. better-sqlite3 is
// synchronous, so the lock is tried without waiting (busy timeout 0) and retried on a timer,
// never blocking the event loop.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { Locks } from './locks.ts';

export interface FileLocksOptions {
  /** Directory of the lock files (`<name>.lock`), created when missing, with a `.gitignore` that hides it from git; every sharer names the same one. */
  dir: string;
  /** Pause between tries while another holds the lock: the longest a waiter lags behind a release. */
  retryMs?: number;
}

/**
 * Connections holding a lock, referenced from here for as long as they hold it: a section that
 * awaits a promise nothing else references (one that never settles, say) would otherwise leave its
 * connection unreachable, and the garbage collector's close of it would drop the lock mid-section.
 */
const HELD = new Set<BetterSqlite3.Database>();

export function fileLocks({ dir, retryMs = 25 }: FileLocksOptions): Locks {
  const root = path.resolve(dir);
  let made: Promise<void> | undefined;
  return {
    where: root,
    async withLock(name, section) {
      await (made ??= makeDirectory(root));
      const held = await acquire(path.join(root, `${fileNameOf(name)}.lock`), retryMs);
      HELD.add(held);
      try {
        return await section();
      } finally {
        HELD.delete(held);
        held.close();
      }
    },
  };
}

/** The folder may sit in a git checkout (the manifest store): it ignores itself, as `.venv` does. */
async function makeDirectory(root: string): Promise<void> {
  await mkdir(root, { recursive: true });
  await writeFile(path.join(root, '.gitignore'), '*\n', { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
}

async function acquire(file: string, retryMs: number): Promise<BetterSqlite3.Database> {
  const { default: Database } = await import('better-sqlite3');
  const database = new Database(file, { timeout: 0 });
  try {
    for (;;) {
      try {
        database.exec('BEGIN IMMEDIATE');
        return database;
      } catch (error) {
        if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, retryMs * (0.5 + Math.random())));
    }
  } catch (error) {
    database.close();
    throw new Error(`Cannot take the lock file ${file}: ${(error as Error).message}`, { cause: error });
  }
}

/** Lock names are free text (`release:agent-as-code/1.2.3`); file names keep only safe characters. */
function fileNameOf(name: string): string {
  if (name === '') throw new TypeError('Expected a lock name, got an empty string');
  return name.replace(/[^A-Za-z0-9._-]/g, (character) => `%${character.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
