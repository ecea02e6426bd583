// The replicas' remote target: s3rver with a bucket, in a process of its own (the deploy bench's
// server, so its requests do not queue behind the soak's on one event loop), and in front of it a
// proxy of the soak's that forwards every request byte for byte, streaming both ways and keeping
// the headers, Host included, so the SigV4 signatures the replicas made for the proxy's address
// still verify. During an outage it answers requests as S3 does when it fails (503 SlowDown, 500
// InternalError, S3's XML error shape), and cuts some connections halfway through the answer.
// The soak reads the bucket around the proxy, so checking what converged sees no faults.
import { randomBytes } from 'node:crypto';
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { startBenchS3 } from '../bench/s3-server.ts';
import { CREDENTIALS } from '../../test/helpers/s3.ts';

export const S3_REGION = 'us-east-1';

const ERRORS = [
  { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
  { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
] as const;

export interface S3FaultCounts {
  /** Requests passed on to s3rver, the cut ones included. */
  forwarded: number;
  /** Answered with an error of S3's by the proxy, per code. */
  injected: Record<(typeof ERRORS)[number]['code'], number>;
  /** Forwarded, then cut: the connection closed halfway through the answer, or before it when it has no body. */
  cut: number;
}

/** How an outage treats each request: the fraction cut mid-answer, and of the others the fraction answered with an error. */
export interface OutageMix {
  cuts: number;
  errors: number;
}

/** When an outage began and ended; performance.now() times. */
export interface S3OutageWindow {
  from: number;
  to?: number;
}

export interface FaultyS3 {
  bucket: string;
  /** The proxy's address: what the replicas deploy to (AWS_ENDPOINT_URL_S3). */
  endpoint: string;
  /** A client of the S3 server itself, past the proxy and its faults. */
  direct: S3Client;
  counts: S3FaultCounts;
  /** Fails requests as `mix` says for `ms`, recording its times in `window`. */
  outage(ms: number, mix: OutageMix, window: S3OutageWindow): Promise<void>;
  /** The environment a replica needs to deploy to the bucket through the proxy (no CloudFront). */
  env(): Record<string, string>;
  close(): Promise<void>;
}

/** s3rver storing under `directory` with `bucket` created, and the proxy in front of it. */
export async function startFaultyS3(directory: string, bucket: string): Promise<FaultyS3> {
  const server = await startBenchS3(directory, [bucket]);
  const upstream = new URL(server.endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const counts: S3FaultCounts = { forwarded: 0, injected: { SlowDown: 0, InternalError: 0 }, cut: 0 };
  let mix: OutageMix | undefined;

  const forward = (req: IncomingMessage, res: ServerResponse, cut: boolean) => {
    counts.forwarded++;
    const onward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      if (cut) return cutAnswer(req, answer, res);
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      pipeline(answer, res, () => undefined);
    });
    onward.on('error', () => res.destroy());
    // A client that gives up (the SDK's timeout, a cut) takes its request to s3rver with it.
    res.on('close', () => {
      if (!res.writableFinished) onward.destroy();
    });
    pipeline(req, onward, () => undefined);
  };

  const proxy = createServer((req, res) => {
    const roll = Math.random();
    if (mix && roll < mix.cuts) {
      counts.cut++;
      return forward(req, res, true);
    }
    if (mix && roll < mix.cuts + (1 - mix.cuts) * mix.errors) return answerError(req, res, counts);
    forward(req, res, false);
  });
  // Longer than the SDK keeps an idle connection, so it never reuses one the proxy is closing.
  proxy.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

  return {
    bucket,
    endpoint,
    direct: new S3Client({ endpoint: server.endpoint, region: S3_REGION, forcePathStyle: true, credentials: CREDENTIALS, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
    counts,
    async outage(ms, outageMix, window) {
      window.from = performance.now();
      mix = outageMix;
      await new Promise((resolve) => setTimeout(resolve, ms));
      mix = undefined;
      window.to = performance.now();
    },
    env: () => ({
      MIRROR_S3_BUCKET: bucket,
      MIRROR_S3_REGION: S3_REGION,
      MIRROR_S3_PREFIX: '',
      MIRROR_CLOUDFRONT_DISTRIBUTION_ID: '',
      MIRROR_KVS_ARN: '',
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      // A session token of the environment the soak runs in must not be mixed into s3rver's credentials.
      AWS_SESSION_TOKEN: '',
    }),
    async close() {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      agent.destroy();
      await server.close();
    },
  };
}

/** One of S3's 5xx, as S3 writes it, once the request's body has been read (so the connection can be reused). */
function answerError(req: IncomingMessage, res: ServerResponse, counts: S3FaultCounts): void {
  const error = ERRORS[Math.floor(Math.random() * ERRORS.length)]!;
  counts.injected[error.code]++;
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${error.code}</Code><Message>${error.message}</Message><RequestId>${requestId}</RequestId><HostId>${randomBytes(24).toString('base64')}</HostId></Error>`;
  req.resume();
  req.once('end', () => {
    res.writeHead(error.status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body), 'x-amz-request-id': requestId });
    // A HEAD's answer has no body; Node leaves it out.
    res.end(body);
  });
}

/** s3rver's answer, cut: half its first chunk, then the connection closes; without a body, the connection closes unanswered. */
function cutAnswer(req: IncomingMessage, answer: IncomingMessage, res: ServerResponse): void {
  const hasBody = req.method !== 'HEAD' && answer.headers['content-length'] !== '0' && (answer.headers['content-length'] !== undefined || answer.headers['transfer-encoding'] !== undefined);
  if (!hasBody) {
    answer.resume();
    res.destroy();
    return;
  }
  res.writeHead(answer.statusCode ?? 502, answer.headers);
  answer.once('data', (chunk: Buffer) => {
    answer.destroy();
    res.write(chunk.subarray(0, Math.floor(chunk.length / 2)), () => res.destroy());
  });
}
