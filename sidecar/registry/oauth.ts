// Sign-in through GitHub's OAuth web flow, for CLIs: POST /auth/github hands out GitHub's
// authorize URL with a fresh single-use `state`; the CLI's local callback receives `code` and
// `state` and sends them to GET /auth/callback, which checks the state, exchanges the code at
// GitHub's token endpoint, reads the account from GitHub's API, and answers an `agentx_` token.
import { randomBytes } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { isUniqueViolation } from '../store/db.ts';
import type { Tables } from '../store/schema.ts';
import { RegistryError, validationFailed } from './errors.ts';
import { createToken, sha256Hex } from './tokens.ts';

/** How long a sign-in may take between POST /auth/github and the callback. */
export const STATE_TTL_MS = 10 * 60 * 1000;
const GITHUB_TIMEOUT_MS = 10_000;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface GitHubSettings {
  /** Unset: sign-in answers 503, saying so. */
  clientId: string | undefined;
  clientSecret: string | undefined;
  authorizeUrl: string;
  tokenUrl: string;
  apiUrl: string;
  /** Allowed `redirect_uri` prefixes; unset allows loopback addresses only, as CLI sign-in uses. */
  redirectPrefixes: string[] | undefined;
}

export interface OAuthOptions {
  db: Kysely<Tables>;
  github: GitHubSettings;
  now?: () => Date;
}

const githubUser = z.looseObject({
  login: z.string().min(1),
  id: z.number().int().nonnegative(),
  name: z.string().nullish(),
  avatar_url: z.string().nullish(),
  bio: z.string().nullish(),
  blog: z.string().nullish(),
});

export function oauthRoutes({ db, github, now = () => new Date() }: OAuthOptions): { start: Middleware; callback: Middleware } {
  const configured = () => {
    if (!github.clientId || !github.clientSecret) throw new RegistryError(503, 'GitHub sign-in is not configured on this server (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET)');
    return { clientId: github.clientId, clientSecret: github.clientSecret };
  };

  async function startSignIn(ctx: Parameters<Middleware>[0]) {
    const { clientId } = configured();
    const redirectUri = (ctx.request as { body?: { redirect_uri?: unknown } }).body?.redirect_uri;
    const problem = redirectProblem(redirectUri, github.redirectPrefixes);
    if (problem) throw validationFailed([`redirect_uri: ${problem}`]);
    const state = randomBytes(32).toString('base64url');
    const expires = new Date(now().getTime() + STATE_TTL_MS).toISOString();
    await db.deleteFrom('registry_oauth_states').where('expires_at', '<', now().toISOString()).execute();
    await db.insertInto('registry_oauth_states').values({ state_hash: sha256Hex(state), redirect_uri: redirectUri as string, expires_at: expires, used_at: null }).execute();
    const url = new URL(github.authorizeUrl);
    url.searchParams.set('client_id', clientId);
    url.searchParams.set('redirect_uri', redirectUri as string);
    url.searchParams.set('state', state);
    url.searchParams.set('scope', 'read:user');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { auth_url: url.href };
  }

  async function finishSignIn(ctx: Parameters<Middleware>[0]) {
    const { clientId, clientSecret } = configured();
    const code = single(ctx.query.code);
    const state = single(ctx.query.state);
    const missing = [...(code ? [] : ["missing required query parameter 'code'"]), ...(state ? [] : ["missing required query parameter 'state'"])];
    if (missing.length > 0) throw validationFailed(missing);
    const redirectUri = await useState(state!);
    const accessToken = await exchangeCode(code!, redirectUri, clientId, clientSecret);
    const account = await readAccount(accessToken);
    const user = await upsertUser(account);
    const token = await createToken(db, user.id, now());
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { token, user: { username: user.username, display_name: user.display_name, avatar_url: user.avatar_url, github_id: user.github_id } };
  }

  /** Marks the state used and returns its redirect_uri; unknown, used or expired states are a 400. */
  async function useState(state: string): Promise<string> {
    const hash = sha256Hex(state);
    const at = now().toISOString();
    const used = await db.updateTable('registry_oauth_states').set({ used_at: at }).where('state_hash', '=', hash).where('used_at', 'is', null).where('expires_at', '>', at).returning('redirect_uri').executeTakeFirst();
    if (used) return used.redirect_uri;
    const row = await db.selectFrom('registry_oauth_states').select(['used_at', 'expires_at']).where('state_hash', '=', hash).executeTakeFirst();
    if (!row) throw new RegistryError(400, 'Invalid OAuth state', ['the state is unknown to this server; start the sign-in again']);
    if (row.used_at !== null) throw new RegistryError(400, 'Invalid OAuth state', ['the state was already used; start the sign-in again']);
    throw new RegistryError(400, 'Invalid OAuth state', ['the state expired; start the sign-in again']);
  }

  async function exchangeCode(code: string, redirectUri: string, clientId: string, clientSecret: string): Promise<string> {
    const response = await callGitHub('token endpoint', github.tokenUrl, {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: clientId, client_secret: clientSecret, code, redirect_uri: redirectUri }).toString(),
    });
    const text = await response.text();
    // GitHub answers form-encoded unless it honours Accept; read either.
    const fields: Record<string, unknown> = (response.headers.get('Content-Type') ?? '').includes('json') ? safeJson(text) : Object.fromEntries(new URLSearchParams(text));
    if (fields.error === 'bad_verification_code') throw new RegistryError(400, 'GitHub refused the authorization code', ['the code is invalid, expired or already used; start the sign-in again']);
    if (typeof fields.error === 'string') throw new RegistryError(502, 'GitHub sign-in failed', [`GitHub's token endpoint answered ${fields.error}`]);
    if (typeof fields.access_token !== 'string' || fields.access_token === '') throw new RegistryError(502, 'GitHub sign-in failed', ["GitHub's token endpoint answered no access token"]);
    return fields.access_token;
  }

  async function readAccount(accessToken: string): Promise<z.output<typeof githubUser>> {
    const response = await callGitHub('API', `${github.apiUrl}/user`, { headers: { Accept: 'application/vnd.github+json', Authorization: `Bearer ${accessToken}`, 'User-Agent': 'release-mirror' } });
    const parsed = githubUser.safeParse(safeJson(await response.text()));
    if (!parsed.success) throw new RegistryError(502, 'GitHub sign-in failed', ["GitHub's API answered an account without a login and id"]);
    return parsed.data;
  }

  async function callGitHub(what: string, url: string, init: RequestInit): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(GITHUB_TIMEOUT_MS) });
    } catch (error) {
      throw new RegistryError(502, 'GitHub sign-in failed', [`GitHub's ${what} could not be reached (${(error as Error).name === 'TimeoutError' ? 'timed out' : (error as Error).message})`]);
    }
    if (!response.ok) throw new RegistryError(502, 'GitHub sign-in failed', [`GitHub's ${what} answered ${response.status}`]);
    return response;
  }

  async function upsertUser(account: z.output<typeof githubUser>) {
    const at = now().toISOString();
    const fields = {
      username: account.login.toLowerCase(),
      display_name: account.name || account.login,
      avatar_url: account.avatar_url ?? '',
      bio: account.bio ?? null,
      website: account.blog || null,
      updated_at: at,
    };
    try {
      return await db
        .insertInto('registry_users')
        .values({ github_id: account.id, created_at: at, ...fields })
        .onConflict((conflict) => conflict.column('github_id').doUpdateSet(fields))
        .returningAll()
        .executeTakeFirstOrThrow();
    } catch (error) {
      if (isUniqueViolation(error)) throw new RegistryError(409, `The username ${fields.username} belongs to another GitHub account in this registry`);
      throw error;
    }
  }

  return {
    start: async function githubSignInHandler(ctx) {
      await startSignIn(ctx);
    },
    callback: async function githubCallbackHandler(ctx) {
      await finishSignIn(ctx);
    },
  };
}

/** Why a redirect_uri is refused, or undefined when it is allowed. */
export function redirectProblem(value: unknown, prefixes: string[] | undefined): string | undefined {
  if (typeof value !== 'string' || value === '') return "missing required field 'redirect_uri'";
  if (!URL.canParse(value)) return `not a URL: '${value}'`;
  const url = new URL(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `expected an http(s) URL, got '${value}'`;
  if (prefixes) return prefixes.some((prefix) => value.startsWith(prefix)) ? undefined : `'${value}' is not an allowed redirect (REGISTRY_REDIRECT_URIS)`;
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname) ? undefined : `expected a loopback address such as http://127.0.0.1:9876/callback, got '${value}'`;
}

function single(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function safeJson(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
