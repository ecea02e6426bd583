// Requests every serving adapter must answer like the sidecar: every path, endpoint and malformed
// input of the sample, and a client that sends the request target exactly as written.
import { request, type IncomingHttpHeaders } from 'node:http';
import type { RouteTable } from '../../generator/render/route-table.ts';

export const API = '/v2/agent-releases';
export const BINARY = '/binary/releases/agent-as-code';
export const ZIP = `${BINARY}/1/12/agent_as_code_1.12.2_linux_amd64.zip`;
export const MSI = '/downloads/agent/windows/1.8.3/ScalepadAgent-1.8.3.msi';
export const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

export interface Sent {
  method?: string;
  path: string;
  headers?: Record<string, string>;
}

export interface Received {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Sends the request target exactly as written: fetch() would normalise dots and encodings. */
export function send(base: string, { method = 'GET', path: target, headers = {} }: Sent): Promise<Received> {
  const { hostname, port } = new URL(base);
  return new Promise((resolvePromise, reject) => {
    const req = request({ hostname, port, path: target, method, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolvePromise({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}


export function withoutSlash(table: RouteTable): string[] {
  return Object.keys(table.paths)
    .filter((key) => key.endsWith('/') && key !== '/')
    .flatMap((key) => [key.slice(0, -1), `${key.slice(0, -1)}?a=b`]);
}

/** Seeds 001/002: valid and invalid queries of every endpoint (test/http-seed-001-002.test.ts). */
export function endpointTargets(): string[] {
  const download = ['platform=windows', 'channel=latest&platform=macos&arch=arm64', 'channel=stable&platform=macos&arch=arm64', 'platform=macos&arch=x86_64', 'platform=macos', 'platform=linux', 'platform=macos&arch=ppc', 'channel=nightly&platform=windows', 'platform=windows&flavour=x', 'platform=windows&arch=arm64', 'platform=windows&platform=macos', ''];
  return [
    ...download.map((query) => `${API}/latest/download${query ? `?${query}` : ''}`),
    ...download.map((query) => `${API}/1.8.3/download${query ? `?${query}` : ''}`),
    `${API}/1.8.4/download?platform=macos&arch=x86_64`,
    `${API}/9.9.9/download?platform=windows`,
    `${API}/9.9.9/download?platform=macos`,
    `${API}/1.9.0-rc.1/download?platform=macos&arch=x86_64`,
    API,
    `${API}?limit=10&page=1`,
    `${API}?page=0`,
    `${API}?page=abc`,
    `${API}?limit=7`,
    `${API}?page=2`,
    `${API}?page=1&limit=100`,
    `${API}?page=0001`,
    `${API}?page=1234567890`,
    `${API}/latest`,
    `${API}/latest?channel=latest`,
    `${API}/latest?channel=beta`,
    `${API}/latest?x=1`,
    `${API}/1.8.3`,
    `${API}/1.8.3?x=1`,
    `${API}/2.0.0`,
    `${API}/`,
  ];
}

export const TRAVERSAL = [
  `${BINARY}/1/12/../../../../../../etc/passwd`,
  `${BINARY}/1/12/%2e%2e/%2e%2e/%2e%2e/etc/passwd`,
  `${BINARY}/1/12/%2E%2E%2F%2E%2E%2Fversions`,
  `${BINARY}/1/12/..%2f..%2f..%2f..%2fetc%2fpasswd`,
  `${BINARY}/1/12/..%5c..%5cetc%5cpasswd`,
  `${BINARY}/1/12/..\\..\\etc\\passwd`,
  `${ZIP}%00.txt`,
  `${BINARY}/1/12/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd`,
  `${BINARY}/1/12/./agent_as_code_1.12.2_linux_amd64.zip`,
  '/downloads/agent/../../../../etc/passwd',
  `${API}/..%2F..%2Fetc/download?platform=windows`,
  `${BINARY}/1/12/%252e%252e/%252e%252e/etc/passwd`,
  `${BINARY}/1/12/%ed%a0%80`,
  `${BINARY}/1/12/%f4%90%80%80`,
  `${BINARY}/1/1%32`,
  `${BINARY}/1/%31%32/`,
  '/..',
  '/./',
];

export const UNKNOWN = ['/nope', `${BINARY}/nope`, '/binary/releases/nope/', `${API}/x/y/z`, '/downloads/nope', '/site.json', '/routes.json', '/public/index.json', `${BINARY}/versions.json`, '/_mirror/site', '/_mirror/blob', '/_mirror/not-found', '/_mirror/bad-request', '//binary/releases/', '/constructor', `${API}/constructor`, `${API}/__proto__/download?platform=windows`, `${BINARY}/1/12/x#fragment`];

/** Query strings whose decoding must follow URLSearchParams byte for byte (they end up in error details). */
export const ODD_QUERIES = [
  `${API}/latest/download?platform=%zz`,
  `${API}/latest/download?platform=%e2%82`,
  `${API}/latest/download?platform=%e2%82%ac`,
  `${API}/latest/download?platform=%EF%BB%BFwindows`,
  `${API}/latest/download?platform=a+b%2B`,
  `${API}/latest/download?platform==windows`,
  `${API}/latest/download?platform`,
  `${API}/latest/download?&&platform=windows&`,
  `${API}/latest/download??platform=windows`,
  `${API}/latest/download?plat%66orm=windows`,
  `${API}/latest/download?%=1`,
  `${API}?page=%31`,
];
