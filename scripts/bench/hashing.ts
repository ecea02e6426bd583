// Hashing row: SHA-256 of a large random file, coreutils' sha256sum against the hashFile that
// `mirror release add` uses, both as child processes reading the same (page-cached) file.
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { bestOf, bestSeconds, timed, type Run } from './run.ts';
import type { Row } from './table.ts';

const SIZE = 512 << 20;
const CHUNK = 16 << 20;
const ATTEMPTS = 3;

export async function benchHashing(work: string, repo: string, progress: (line: string) => void): Promise<Row[]> {
  const file = path.join(work, 'random.bin');
  progress(`writing ${SIZE >> 20} MiB of random bytes`);
  await writeRandomFile(file, SIZE);
  progress('sha256sum');
  const reference = await bestOf(ATTEMPTS, () => timed(['sha256sum', file], repo));
  progress('hashFile');
  const ours = await bestOf(ATTEMPTS, () => timed(['node', '--import', 'tsx', 'scripts/bench/hash-file.ts', file], repo));
  if (digestOf(ours) !== digestOf(reference)) throw new Error(`hashFile and sha256sum disagree: ${ours.stdout} vs ${reference.stdout}`);

  return [
    {
      measured: `SHA-256 of a ${SIZE >> 20} MiB random file, MB/s = 10^6 bytes/s of whole-process wall time (node start-up included; best of ${ATTEMPTS})`,
      ours: `${rate(ours)}, ${(reference.ms / ours.ms).toFixed(2)}× sha256sum; ${bestSeconds(ours)}`,
      reference: `${rate(reference)}; ${bestSeconds(reference)}`,
      target: '≥ sha256sum',
      met: ours.ms <= reference.ms,
      ourCommand: ours.command,
      referenceCommand: reference.command,
    },
  ];
}

async function writeRandomFile(file: string, size: number): Promise<void> {
  const handle = await open(file, 'w');
  try {
    for (let written = 0; written < size; written += CHUNK) await handle.write(randomBytes(Math.min(CHUNK, size - written)));
  } finally {
    await handle.close();
  }
}

function rate(run: Run): string {
  return `${Math.round(SIZE / 1e6 / (run.ms / 1000))} MB/s`;
}

function digestOf(run: Run): string {
  return run.stdout.split(' ')[0]!;
}
