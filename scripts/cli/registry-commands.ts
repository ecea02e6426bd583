// `mirror registry`: operator commands for the agent registry that need no GitHub round trip.
import { createHash } from 'node:crypto';
import { REGISTRY_NAME } from '../../generator/model/registry.ts';
import { loadConfig } from '../../sidecar/config.ts';
import { createToken, revokeToken } from '../../sidecar/registry/tokens.ts';
import { prepareDatabase } from '../../sidecar/runtime.ts';
import { openDatabase, type StateDb } from '../../sidecar/store/db.ts';
import { UsageError, required, type Command } from './command.ts';

/** Accounts made here, not by GitHub sign-in, get ids GitHub does not hand out (it is far below 2^40). */
const LOCAL_ID_BASE = 2 ** 50;

export const registryCommands: Record<string, Command> = {
  registry: {
    usage: `mirror registry token create --user NAME [--display-name TEXT]
mirror registry token revoke TOKEN

Signs a user in without GitHub, for local use and scripts: prints an agentx_ token for NAME (the
scope @NAME it may publish under), creating the user if this registry has none by that name.
\`revoke\` makes a token invalid at once. Works on the configured state database (DATABASE_URL or
$MIRROR_DATA_DIR/state.db).

  --user NAME           the username, lower-case letters, digits and -
  --display-name TEXT   shown on the user's profile (default NAME)
`,
    options: { user: { type: 'string' }, 'display-name': { type: 'string' } },
    positionals: true,
    async run(values, positionals) {
      const [group, action, token] = positionals;
      if (group !== 'token' || (action !== 'create' && action !== 'revoke')) throw new UsageError(`Unknown action \`${positionals.join(' ')}\`; expected \`token create\` or \`token revoke\``);
      const config = loadConfig();
      const state = await openDatabase({ ...(config.settings.DATABASE_URL ? { url: config.settings.DATABASE_URL } : {}), file: config.databaseFile });
      try {
        await prepareDatabase(state, !config.settings.DATABASE_URL);
        if (action === 'revoke') {
          if (!token) throw new UsageError('Name the token to revoke');
          const revoked = await revokeToken(state.db, token, new Date());
          console.log(revoked ? 'revoked' : 'no live token matches; nothing changed');
          return revoked ? 0 : 1;
        }
        const username = required(values, 'user').toLowerCase();
        if (!REGISTRY_NAME.test(username)) throw new UsageError(`Expected \`--user\` to be lower-case letters, digits and -, got \`${username}\``);
        console.log(await createToken(state.db, await localUser(state, username, (values['display-name'] as string | undefined) ?? username), new Date()));
        return 0;
      } finally {
        await state.close();
      }
    },
  },
};

async function localUser(state: StateDb, username: string, displayName: string): Promise<number> {
  const at = new Date().toISOString();
  const githubId = LOCAL_ID_BASE + (createHash('sha256').update(username).digest().readUIntBE(0, 5));
  await state.db
    .insertInto('registry_users')
    .values({ github_id: githubId, username, display_name: displayName, avatar_url: '', bio: null, website: null, created_at: at, updated_at: at })
    .onConflict((conflict) => conflict.doNothing())
    .execute();
  const user = await state.db.selectFrom('registry_users').select('id').where('username', '=', username).executeTakeFirstOrThrow();
  return user.id;
}
