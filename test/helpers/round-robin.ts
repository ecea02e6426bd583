// One address in front of several sidecar processes, alternating requests between them and
// streaming both ways, as a load balancer does.
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function roundRobin(backends: string[]): Promise<{ server: Server; url: string }> {
  let next = 0;
  const server = createServer((incoming, outgoing) => {
    const backend = new URL(backends[next++ % backends.length]!);
    const forward = request({ hostname: backend.hostname, port: backend.port, path: incoming.url, method: incoming.method, headers: incoming.headers }, (answer) => {
      outgoing.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(outgoing);
    });
    forward.on('error', () => outgoing.destroy());
    incoming.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
