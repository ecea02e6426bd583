// The disk-full fault: the blob store's directory on a small tmpfs of the soak's own, filled with a
// filler file until a write of one page fails, held full while uploads go on, then freed. Mounting
// needs root; without it the fault is skipped and the table says why.
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { DiskFullWindow } from './traffic.ts';

const run = promisify(execFile);
const FILLER = '.soak-filler';
const MiB = 1024 * 1024;
const PAGE = 4096;
/** How often, while the disk is held full, space freed by failed uploads is taken back. */
const TOP_UP_MS = 2;
const ZEROS = Buffer.alloc(MiB);

export interface SmallDisk {
  dir: string;
  bytes: number;
  /** Fills the disk, keeps it full for `holdMs`, then removes the filler; records the times in `window`. */
  fill(holdMs: number, window: DiskFullWindow): Promise<void>;
  /** Unmounts; what was on the disk goes with it. */
  unmount(): Promise<void>;
}

/** A tmpfs of `bytes` mounted on `dir` (created), or why there is none. */
export async function mountSmallDisk(dir: string, bytes: number): Promise<SmallDisk | { skipped: string }> {
  if (process.getuid?.() !== 0) return { skipped: 'not running as root, which mounting a tmpfs needs' };
  await mkdir(dir, { recursive: true });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  } catch (error) {
    return { skipped: `mount -t tmpfs failed: ${String((error as { stderr?: string }).stderr || (error as Error).message).trim()}` };
  }
  let mounted = true;
  // A soak that dies on its way out must not leave the mount behind (lazily: a replica may still hold a file there).
  const onExit = () => {
    if (mounted) spawnSync('umount', ['-l', dir]);
  };
  process.once('exit', onExit);
  return {
    dir,
    bytes,
    async fill(holdMs, window) {
      const handle = await open(path.join(dir, FILLER), 'w');
      let size = 0;
      try {
        size = await topUp(handle, size);
        window.full = performance.now();
        while (performance.now() < window.full + holdMs) {
          size = await topUp(handle, size);
          await new Promise((resolve) => setTimeout(resolve, TOP_UP_MS));
        }
      } finally {
        await handle.close();
        await rm(path.join(dir, FILLER), { force: true });
        window.to = performance.now();
      }
    },
    async unmount() {
      if (!mounted) return;
      await run('umount', [dir]);
      mounted = false;
      process.off('exit', onExit);
    },
  };
}

/** Appends to the filler until a write of a page fails for want of space; the filler's new size. */
async function topUp(handle: FileHandle, size: number): Promise<number> {
  for (const chunk of [MiB, PAGE]) {
    for (;;) {
      try {
        const { bytesWritten } = await handle.write(ZEROS, 0, chunk, size);
        if (bytesWritten === 0) break;
        size += bytesWritten;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw error;
      }
    }
  }
  return size;
}

/** The blob store's staging files (`<blobs>/.tmp`), with their last write as a Date.now() time. */
export async function stagingFiles(blobsDir: string): Promise<{ name: string; modified: number }[]> {
  const staging = path.join(blobsDir, '.tmp');
  const names = await readdir(staging).catch(() => [] as string[]);
  const files = await Promise.all(names.map(async (name) => ({ name, info: await stat(path.join(staging, name)).catch(() => undefined) })));
  return files.filter(({ info }) => info?.isFile()).map(({ name, info }) => ({ name, modified: info!.mtimeMs }));
}
