// A secret kept in a file of the data directory (a signing key, the fleet CA), created on first
// use at mode 0600 in a 0700 folder. Two processes starting at once may both create one, but
// `link` never overwrites: the loser reads the winner's, so all end up with the same secret.
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The file's text, or what `create` makes when there is no file yet, written there first. */
export async function readOrCreateSecret(file: string, create: () => Promise<string>): Promise<string> {
  const existing = await readSecret(file);
  if (existing !== undefined) return existing;
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const text = await create();
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, text, { mode: 0o600, flag: 'wx' });
    await link(temp, file);
    return text;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const winner = await readSecret(file);
    if (winner === undefined) throw error;
    return winner;
  } finally {
    await rm(temp, { force: true });
  }
}

async function readSecret(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
