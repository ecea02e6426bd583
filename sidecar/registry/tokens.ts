// Opaque `agentx_` tokens: 192 random bits, handed out once at sign-in, kept only as their sha256.
// A request's token names its user; a revoked or unknown token is refused with 401.
import { createHash, randomBytes } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { Kysely, Selectable } from 'kysely';
import type { RegistryUsersTable, Tables } from '../store/schema.ts';
import { RegistryError } from './errors.ts';

export type RegistryUser = Selectable<RegistryUsersTable>;

export const TOKEN_PREFIX = 'agentx_';

/** What `authenticate` leaves in `ctx.state`; `principal.sub` is what the per-user rate limits key on. */
export interface RegistryAuthState {
  user?: RegistryUser;
  principal?: { sub: string };
  /** A token was given but names no live token; `refuseInvalidToken` answers 401 once the request is counted. */
  invalidToken?: boolean;
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/** A new token for the user; the caller shows it once, the database keeps its hash. */
export async function createToken(db: Kysely<Tables>, userId: number, now: Date): Promise<string> {
  const token = `${TOKEN_PREFIX}${randomBytes(24).toString('base64url')}`;
  await db.insertInto('registry_tokens').values({ token_hash: sha256Hex(token), user_id: userId, created_at: now.toISOString(), revoked_at: null }).execute();
  return token;
}

/** Revokes the token; true when it was live. */
export async function revokeToken(db: Kysely<Tables>, token: string, now: Date): Promise<boolean> {
  const result = await db.updateTable('registry_tokens').set({ revoked_at: now.toISOString() }).where('token_hash', '=', sha256Hex(token)).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Reads `Authorization: Bearer agentx_…` when present: a live token sets the user, any other is marked invalid. */
export function authenticate(db: Kysely<Tables>): Middleware {
  return async function authenticateHandler(ctx, next) {
    const token = bearerToken(ctx);
    if (token !== undefined) {
      const user = token.startsWith(TOKEN_PREFIX)
        ? await db
            .selectFrom('registry_tokens')
            .innerJoin('registry_users', 'registry_users.id', 'registry_tokens.user_id')
            .selectAll('registry_users')
            .where('registry_tokens.token_hash', '=', sha256Hex(token))
            .where('registry_tokens.revoked_at', 'is', null)
            .executeTakeFirst()
        : undefined;
      const state = ctx.state as RegistryAuthState;
      if (user) {
        state.user = user;
        state.principal = { sub: `registry:${user.username}` };
      } else {
        state.invalidToken = true;
      }
    }
    await next();
  };
}

/** A 401 for a token that names no live token, on any route: a CLI learns at once that it must sign in again. */
export function refuseInvalidToken(): Middleware {
  return async function refuseInvalidTokenHandler(ctx, next) {
    if ((ctx.state as RegistryAuthState).invalidToken) throw new RegistryError(401, 'Invalid or revoked token', undefined, { 'WWW-Authenticate': 'Bearer realm="registry", error="invalid_token"' });
    await next();
  };
}

/** The signed-in user, or a 401 for a request without a token. */
export function currentUser(ctx: Context): RegistryUser {
  const user = (ctx.state as RegistryAuthState).user;
  if (!user) throw new RegistryError(401, 'Authentication required', undefined, { 'WWW-Authenticate': 'Bearer realm="registry"' });
  return user;
}

export function bearerToken(ctx: Context): string | undefined {
  const match = /^bearer[ \t]+(\S+)\s*$/i.exec(ctx.get('Authorization').trim());
  return match?.[1];
}
