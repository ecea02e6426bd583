// A local stand-in for GitHub's OAuth web flow over real HTTP, behaving as GitHub does: the token
// endpoint takes a form-encoded POST and answers form-encoded unless asked for JSON, with errors
// in a 200 body (`error=bad_verification_code`); codes are single use; `GET /user` needs the
// access token. Tests can make either endpoint fail.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GitHubAccount {
  login: string;
  id: number;
  name?: string | null;
  avatar_url?: string;
  bio?: string | null;
  blog?: string;
}

export interface GitHubStandIn {
  url: string;
  clientId: string;
  clientSecret: string;
  /** The settings that point the sidecar at this stand-in. */
  env: Record<string, string>;
  /** What GitHub does when the account holder approves: a code for the redirect, for this account. */
  approve(account: GitHubAccount, redirectUri: string): string;
  /** The next request to `endpoint` answers this status. */
  failNext(endpoint: 'token' | 'user', status: number): void;
  /** Token-endpoint requests seen, as form fields, with their Accept header. */
  tokenRequests: { fields: Record<string, string>; accept: string }[];
  close(): Promise<void>;
}

export async function startGitHubStandIn(): Promise<GitHubStandIn> {
  const clientId = `Iv1.${randomBytes(8).toString('hex')}`;
  const clientSecret = randomBytes(20).toString('hex');
  const codes = new Map<string, { account: GitHubAccount; redirectUri: string }>();
  const tokens = new Map<string, GitHubAccount>();
  const failures: Partial<Record<'token' | 'user', number>> = {};
  const tokenRequests: GitHubStandIn['tokenRequests'] = [];

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url!, 'http://github.test');
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'Content-Type': type });
      res.end(body);
    };
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      const fields = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
      const accept = req.headers.accept ?? '';
      tokenRequests.push({ fields, accept });
      if (failures.token) {
        const status = failures.token;
        delete failures.token;
        return reply(status, 'text/html', '<html>Unicorn!</html>');
      }
      const answer = (values: Record<string, string>) => (accept.includes('application/json') ? reply(200, 'application/json; charset=utf-8', JSON.stringify(values)) : reply(200, 'application/x-www-form-urlencoded; charset=utf-8', new URLSearchParams(values).toString()));
      if (fields.client_id !== clientId || fields.client_secret !== clientSecret) return answer({ error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' });
      const grant = codes.get(fields.code ?? '');
      codes.delete(fields.code ?? '');
      if (!grant) return answer({ error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      if (fields.redirect_uri !== undefined && fields.redirect_uri !== grant.redirectUri) return answer({ error: 'redirect_uri_mismatch', error_description: 'The redirect_uri MUST match the registered callback URL for this application.' });
      const token = `gho_${randomBytes(18).toString('base64url')}`;
      tokens.set(token, grant.account);
      return answer({ access_token: token, scope: 'read:user', token_type: 'bearer' });
    }
    if (req.method === 'GET' && url.pathname === '/user') {
      if (failures.user) {
        const status = failures.user;
        delete failures.user;
        return reply(status, 'application/json', JSON.stringify({ message: 'Server Error' }));
      }
      const account = tokens.get((req.headers.authorization ?? '').replace(/^(Bearer|token) /i, ''));
      if (!account) return reply(401, 'application/json', JSON.stringify({ message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' }));
      return reply(200, 'application/json; charset=utf-8', JSON.stringify({ avatar_url: `https://avatars.githubusercontent.com/u/${account.id}?v=4`, name: null, bio: null, blog: '', type: 'User', ...account }));
    }
    reply(404, 'application/json', JSON.stringify({ message: 'Not Found' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    clientId,
    clientSecret,
    env: {
      GITHUB_CLIENT_ID: clientId,
      GITHUB_CLIENT_SECRET: clientSecret,
      GITHUB_AUTHORIZE_URL: `${url}/login/oauth/authorize`,
      GITHUB_TOKEN_URL: `${url}/login/oauth/access_token`,
      GITHUB_API_URL: url,
    },
    approve(account, redirectUri) {
      const code = randomBytes(10).toString('hex');
      codes.set(code, { account, redirectUri });
      return code;
    },
    failNext(endpoint, status) {
      failures[endpoint] = status;
    },
    tokenRequests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
