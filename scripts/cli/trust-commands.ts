// Commands for the publisher's signing keys and the signed snapshot: keys create | list | retire,
// snapshot refresh.
import { resolvePaths } from '../../generator/config.ts';
import { build } from '../../generator/pipeline.ts';
import { keysDir, loadSigning } from '../../generator/trust/index.ts';
import { createKey, loadKeyring, retireKey, type PublishedKey } from '../../generator/trust/keyring.ts';
import { UsageError, releasesOption, type Command } from './command.ts';
import { printBuild } from './site-commands.ts';

export const trustCommands: Record<string, Command> = {
  keys: {
    usage: `mirror keys create [--name NAME] [--email EMAIL] | list | retire KEYID

The OpenPGP keys that sign each release's SHA256SUMS file and the site's snapshot.

  create   makes an Ed25519 signing key in $MIRROR_DATA_DIR/keys/ (mode 0600); from the next
           build on, it signs too (several active keys all sign, for rotation)
  list     every key: id, status (active or retired), where it comes from, created, user id
  retire   the key signs nothing new, and stays published so what it signed still checks;
           its private half is deleted from the data directory

  --name NAME     user id name of a new key (default "Release mirror")
  --email EMAIL   user id email of a new key

A production key can come from the settings instead: MIRROR_SIGNING_KEY (armored private key)
or MIRROR_SIGNING_KEY_FILE, with MIRROR_SIGNING_KEY_PASSPHRASE when it is protected.
`,
    options: { name: { type: 'string' }, email: { type: 'string' } },
    positionals: true,
    async run(values, positionals) {
      const [action, id, ...rest] = positionals;
      const { dataDir } = resolvePaths({});
      const dir = keysDir(dataDir);
      if (action === 'create' && id === undefined) {
        const created = await createKey(dir, { name: (values.name as string | undefined) ?? 'Release mirror', email: values.email as string | undefined });
        console.log(`created signing key ${created} in ${dir}`);
        return 0;
      }
      if (action === 'list' && id === undefined) {
        const keyring = (await loadSigning(dataDir, process.env)).keyring;
        const keys = [...keyring.active, ...keyring.retired];
        if (keys.length === 0) console.log('no signing keys; `mirror keys create` makes one');
        for (const key of keys) console.log(describeKey(key, key === keyring.active[0]));
        return 0;
      }
      if (action === 'retire' && id !== undefined && rest.length === 0) {
        const keyring = (await loadSigning(dataDir, process.env)).keyring;
        const retired = await retireKey(dir, keyring, id);
        console.log(`retired key ${retired.id}: it signs nothing new and stays published`);
        if (retired.source === 'settings') console.log('it comes from MIRROR_SIGNING_KEY: remove it from the settings as well');
        return 0;
      }
      throw new UsageError(`Expected \`keys create\`, \`keys list\` or \`keys retire KEYID\`, got \`keys ${positionals.join(' ')}\``);
    },
  },

  snapshot: {
    usage: `mirror snapshot refresh [--releases DIR] [--out DIR]

Builds the site and signs a new snapshot even when nothing changed, extending its expiry
(MIRROR_SNAPSHOT_EXPIRY_SECONDS, default 7 days). The sidecar does this by itself when half the
snapshot's life is gone; a site deployed with \`mirror deploy\` is refreshed by deploying again
(every deploy re-signs a snapshot past half its life).

  --releases DIR   manifest store (default $MIRROR_RELEASES or releases/)
  --out DIR        site path (default $MIRROR_DATA_DIR/site)
`,
    options: { ...releasesOption, out: { type: 'string' } },
    positionals: true,
    async run(values, positionals) {
      if (positionals.join(' ') !== 'refresh') throw new UsageError(`Expected \`snapshot refresh\`, got \`snapshot ${positionals.join(' ')}\``);
      const paths = resolvePaths({ releases: values.releases as string | undefined, out: values.out as string | undefined });
      const signing = await loadSigning(paths.dataDir, process.env);
      if (signing.keyring.active.length === 0) throw new Error('No active signing key: `mirror keys create` makes one');
      printBuild(await build({ ...paths, signing: { ...signing, resign: true } }), paths.site);
      return 0;
    },
  },
};

function describeKey(key: PublishedKey, primary: boolean): string {
  return `${key.id}  ${key.status}${primary ? ' (primary)' : ''}  ${key.source}  created ${key.created.toISOString()}  ${key.userId}`;
}

/** The embedded default signs: `mirror start` makes a key on first run, as it makes its token issuer's. */
export async function ensureSigningKey(dataDir: string): Promise<string | undefined> {
  const keyring = await loadKeyring({ dir: keysDir(dataDir) });
  if (keyring.active.length > 0 || keyring.retired.length > 0 || process.env.MIRROR_SIGNING_KEY || process.env.MIRROR_SIGNING_KEY_FILE) return undefined;
  return createKey(keysDir(dataDir), { name: 'Release mirror (local)' });
}
