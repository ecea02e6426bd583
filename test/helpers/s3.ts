// s3rver over real HTTP behind a small proxy that counts requests, can answer with S3 faults, and
// can run a check after every upload.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

export const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface FakeS3 {
  /** The proxy's address: what the deployer talks to. */
  endpoint: string;
  client: S3Client;
  requests: { method: string; key: string }[];
  /** Called after each PUT completes, before its answer reaches the client. */
  afterPut?: (key: string) => Promise<void>;
  /** Decides, per request, whether to answer `503 SlowDown` instead of forwarding. */
  fault?: (method: string, key: string) => boolean;
  createBucket(name: string): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeS3(): Promise<FakeS3> {
  const directory = await mkdtemp(path.join(tmpdir(), 'mirror-s3rver-'));
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory });
  const { port } = (await s3rver.run()) as AddressInfo;
  const upstream = `http://127.0.0.1:${port}`;
  const fake: FakeS3 = {
    endpoint: '',
    client: new S3Client({ endpoint: upstream, region: 'us-east-1', forcePathStyle: true, credentials: CREDENTIALS, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
    requests: [],
    async createBucket(name) {
      await fake.client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async close() {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await s3rver.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
  const proxy = createServer((req, res) => void forward(fake, port, req, res));
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  fake.endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  return fake;
}

async function forward(fake: FakeS3, port: number, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const key = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.split('/').slice(2).join('/'));
  fake.requests.push({ method, key });
  if (fake.fault?.(method, key)) {
    req.resume();
    res.writeHead(503, { 'Content-Type': 'application/xml' });
    res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
    return;
  }
  const upstream = request({ host: '127.0.0.1', port, method, path: req.url, headers: req.headers }, async (answer) => {
    const chunks: Buffer[] = [];
    for await (const chunk of answer) chunks.push(chunk as Buffer);
    if (method === 'PUT' && answer.statusCode === 200 && fake.afterPut) await fake.afterPut(key);
    res.writeHead(answer.statusCode ?? 500, answer.headers);
    res.end(Buffer.concat(chunks));
  });
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
}
