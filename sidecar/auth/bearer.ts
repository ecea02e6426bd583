// Requires `Authorization: Bearer <token>` and puts the verified caller in `ctx.state.principal`.
// Refusals answer 401 in the seed's error shape with an RFC 6750 challenge; the token itself is
// never logged or echoed.
import type { Middleware, ParameterizedContext } from 'koa';
import { AuthError, type Principal, type TokenVerifier } from './jwt.ts';

export interface BearerOptions {
  /** Verifies the token; an `AuthError` becomes a 401, anything else propagates (5xx). */
  verifier: TokenVerifier;
  /** Shown in the `WWW-Authenticate` challenge. Default `mirror`. */
  realm?: string;
}

/** What `requireBearer` adds to `ctx.state` for the handlers behind it. */
export interface BearerState {
  principal: Principal;
}

/** The seed's message for a request without a token. */
export const TOKEN_REQUIRED = 'Authentication token required for binary uploads';

export function requireBearer({ verifier, realm = 'mirror' }: BearerOptions): Middleware {
  if (typeof verifier?.verify !== 'function') throw new TypeError('Expected `verifier` to have a verify(token) method');
  if (!/^[\x20-\x7e]*$/.test(realm) || /["\\]/.test(realm)) throw new TypeError(`Expected \`realm\` to be printable ASCII without quotes or backslashes, got ${JSON.stringify(realm)}`);
  const challenge = `Bearer realm="${realm}"`;
  return async function requireBearerHandler(ctx, next) {
    const token = bearerToken(ctx.get('Authorization'));
    if (token === undefined) {
      refuse(ctx, challenge, TOKEN_REQUIRED);
      return;
    }
    let principal: Principal;
    try {
      principal = await verifier.verify(token);
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      refuse(ctx, `${challenge}, error="invalid_token"`, error.message);
      return;
    }
    (ctx.state as BearerState).principal = principal;
    await next();
  };
}

/** Another scheme (Basic) or an empty credential counts as no token. */
function bearerToken(header: string): string | undefined {
  const match = /^bearer(?:[ \t]+(.*))?$/i.exec(header.trim());
  const token = match?.[1]?.trim();
  return token ? token : undefined;
}

function refuse(ctx: ParameterizedContext, challenge: string, message: string): void {
  ctx.status = 401;
  ctx.set('WWW-Authenticate', challenge);
  ctx.body = { error: 'Unauthorized', message };
}
