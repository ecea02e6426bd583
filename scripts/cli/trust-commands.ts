// Commands for the publisher's signing keys and the signed snapshot: keys create | list | retire,
// snapshot refresh. Their options are declared in commands.ts.
import { resolvePaths } from '../../generator/config.ts';
import { build } from '../../generator/pipeline.ts';
import { keysDir, loadSigning } from '../../generator/trust/index.ts';
import { createKey, loadKeyring, retireKey, type PublishedKey } from '../../generator/trust/keyring.ts';
import { printBuild } from './site-commands.ts';

export async function keysCreate(values: Record<string, unknown>): Promise<number> {
  const dir = keysDir(resolvePaths({}).dataDir);
  const created = await createKey(dir, { name: values.name as string, email: values.email as string | undefined });
  console.log(`created signing key ${created} in ${dir}`);
  return 0;
}

export async function keysList(): Promise<number> {
  const keyring = (await loadSigning(resolvePaths({}).dataDir, process.env)).keyring;
  const keys = [...keyring.active, ...keyring.retired];
  if (keys.length === 0) console.log('no signing keys; `mirror keys create` makes one');
  for (const key of keys) console.log(describeKey(key, key === keyring.active[0]));
  return 0;
}

export async function keysRetire(_values: Record<string, unknown>, [id]: string[]): Promise<number> {
  const { dataDir } = resolvePaths({});
  const keyring = (await loadSigning(dataDir, process.env)).keyring;
  const retired = await retireKey(keysDir(dataDir), keyring, id!);
  console.log(`retired key ${retired.id}: it signs nothing new and stays published`);
  if (retired.source === 'settings') console.log('it comes from MIRROR_SIGNING_KEY: remove it from the settings as well');
  return 0;
}

export async function snapshotRefresh(values: Record<string, unknown>): Promise<number> {
  const paths = resolvePaths({ releases: values.releases as string | undefined, out: values.out as string | undefined });
  const signing = await loadSigning(paths.dataDir, process.env);
  if (signing.keyring.active.length === 0) throw new Error('No active signing key: `mirror keys create` makes one');
  printBuild(await build({ ...paths, signing: { ...signing, resign: true } }), paths.site);
  return 0;
}

function describeKey(key: PublishedKey, primary: boolean): string {
  return `${key.id}  ${key.status}${primary ? ' (primary)' : ''}  ${key.source}  created ${key.created.toISOString()}  ${key.userId}`;
}

/** The embedded default signs: `mirror start` makes a key on first run, as it makes its token issuer's. */
export async function ensureSigningKey(dataDir: string): Promise<string | undefined> {
  const keyring = await loadKeyring({ dir: keysDir(dataDir) });
  if (keyring.active.length > 0 || keyring.retired.length > 0 || process.env.MIRROR_SIGNING_KEY || process.env.MIRROR_SIGNING_KEY_FILE) return undefined;
  return createKey(keysDir(dataDir), { name: 'Release mirror (local)' });
}
