// A mirror in front of an honest origin that answers chosen paths with bytes of its own choosing:
// a stale or malicious CDN, for the attacks `mirror verify` must name.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface EvilMirror {
  /** The mirror's origin, `http://127.0.0.1:PORT`. */
  url: string;
  /**
   * From now on answers `path` (with its query) with `body` and the origin's status and headers.
   * Requests for the HTML page at the same path still reach the origin, as from a CDN that caches
   * per `Accept`.
   */
  substitute(path: string, body: Uint8Array): void;
  /** Honest again: every request reaches the origin. */
  reset(): void;
  close(): Promise<void>;
}

/** Headers of the origin's connection and wire encoding (fetch hands over the decoded body): never copied. */
const HOP_HEADERS = ['connection', 'keep-alive', 'transfer-encoding', 'content-encoding', 'content-length'];
/** Headers that vouch for the origin's bytes, dropped with them. */
const BODY_HEADERS = ['etag', 'x-checksum-sha256'];

export async function startEvilMirror(origin: string): Promise<EvilMirror> {
  const substitutes = new Map<string, Uint8Array>();
  const server = createServer(async function evilAnswer(request, response) {
    try {
      const accept = request.headers.accept;
      const answer = await fetch(origin + request.url, { redirect: 'manual', headers: accept ? { accept } : {} });
      const substitute = accept?.includes('text/html') ? undefined : substitutes.get(request.url ?? '');
      if (substitute) await answer.body?.cancel();
      const body = substitute ?? Buffer.from(await answer.arrayBuffer());
      const dropped = substitute ? [...HOP_HEADERS, ...BODY_HEADERS] : HOP_HEADERS;
      const headers: Record<string, string> = {};
      for (const [name, value] of answer.headers) if (!dropped.includes(name)) headers[name] = value;
      response.writeHead(answer.status, { ...headers, 'content-length': String(body.length) });
      response.end(body);
    } catch (error) {
      response.writeHead(502).end(String(error));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    substitute: (path, body) => void substitutes.set(path, body),
    reset: () => substitutes.clear(),
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}
