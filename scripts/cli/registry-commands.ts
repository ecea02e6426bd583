// `mirror registry token create|revoke`: operator commands for the agent registry that need no
// GitHub round trip. Their options are declared in commands.ts.
import { createHash } from 'node:crypto';
import { loadConfig } from '../../sidecar/config.ts';
import { createToken, revokeToken } from '../../sidecar/registry/tokens.ts';
import { prepareDatabase } from '../../sidecar/runtime.ts';
import { openDatabase, type StateDb } from '../../sidecar/store/db.ts';

/** Accounts made here, not by GitHub sign-in, get ids GitHub does not hand out (it is far below 2^40). */
const LOCAL_ID_BASE = 2 ** 50;

export async function registryTokenCreate(values: Record<string, unknown>): Promise<number> {
  const username = values.user as string;
  return withState(async (state) => {
    console.log(await createToken(state.db, await localUser(state, username, (values['display-name'] as string | undefined) ?? username), new Date()));
    return 0;
  });
}

export async function registryTokenRevoke(_values: Record<string, unknown>, [token]: string[]): Promise<number> {
  return withState(async (state) => {
    const revoked = await revokeToken(state.db, token!, new Date());
    console.log(revoked ? 'revoked' : 'no live token matches; nothing changed');
    return revoked ? 0 : 1;
  });
}

/** The configured state database (DATABASE_URL or $MIRROR_DATA_DIR/state.db), migrated when embedded. */
async function withState(run: (state: StateDb) => Promise<number>): Promise<number> {
  const config = loadConfig();
  const state = await openDatabase({ ...(config.settings.DATABASE_URL ? { url: config.settings.DATABASE_URL } : {}), file: config.databaseFile });
  try {
    await prepareDatabase(state, !config.settings.DATABASE_URL);
    return await run(state);
  } finally {
    await state.close();
  }
}

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
