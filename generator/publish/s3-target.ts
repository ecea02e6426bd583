// Publish target: an S3 bucket (or an S3-compatible server). The AWS SDK loads only when a deploy
// runs. Each object carries its sha256 in metadata; a state object records them all, so a deploy
// learns what the bucket holds from one read instead of a listing and a request per object.
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import type { BlobStore } from '../stores/blob-store.ts';
import type { DeployObject, RemoteObject } from './deploy-plan.ts';

export interface S3TargetOptions {
  bucket: string;
  /** Key prefix inside the bucket, without a trailing slash; empty for the bucket root. */
  prefix?: string;
  region?: string;
  /** An S3-compatible endpoint, addressed path-style (also from AWS_ENDPOINT_URL_S3). */
  endpoint?: string;
  /** Attempts per request, with the SDK's backoff on throttling and 5xx answers. */
  maxAttempts?: number;
  /**
   * A connection silent this long is given up and the request tried again (default 60 s), so a
   * request S3 never answers cannot hold a deploy, and the lock it takes, forever. Silence, not the
   * whole request: a large artifact may take longer to send.
   */
  idleTimeoutMs?: number;
  /** Extra client settings, e.g. credentials in tests. */
  clientConfig?: Record<string, unknown>;
}

export interface S3Target {
  describe(): string;
  list(): Promise<Map<string, RemoteObject>>;
  /** Uploads a rendered file from its body, an artifact from the blob store. */
  put(object: DeployObject, blobs: BlobStore): Promise<void>;
  delete(keys: string[]): Promise<void>;
  /**
   * Records what the bucket holds, so the next deploy needs neither a listing nor per-object reads.
   * `pending` names keys a deploy is about to change: if it is cut short, the next reads those
   * objects' own metadata.
   */
  saveState(objects: Map<string, RemoteObject>, pending?: string[]): Promise<void>;
  /** A record the deployer keeps beside its state (`.mirror/<name>`), or undefined when there is none. */
  readRecord<T>(name: string): Promise<T | undefined>;
  writeRecord(name: string, value: unknown): Promise<void>;
}

/** The deployer's own objects live under this folder, which is never site content. */
const RECORDS = '.mirror/';
export const STATE_KEY = `${RECORDS}deploy-state.json`;

interface DeployState {
  version: 1;
  objects: Record<string, RemoteObject>;
  pending: string[];
}

type Sdk = typeof import('@aws-sdk/client-s3');
const HEAD_CONCURRENCY = 16;
const MULTIPART_THRESHOLD = 16 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_TIMEOUT_MS = 60_000;

export async function createS3Target(options: S3TargetOptions): Promise<S3Target> {
  const sdk = await import('@aws-sdk/client-s3');
  const endpoint = options.endpoint ?? process.env.AWS_ENDPOINT_URL_S3;
  const client: S3Client = new sdk.S3Client({
    ...(options.region ? { region: options.region } : {}),
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    maxAttempts: options.maxAttempts ?? 6,
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, socketTimeout: options.idleTimeoutMs ?? IDLE_TIMEOUT_MS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...options.clientConfig,
  });
  const prefix = options.prefix ? `${options.prefix.replace(/\/+$/, '')}/` : '';
  const Bucket = options.bucket;

  return {
    describe: () => `s3://${Bucket}/${prefix}${endpoint ? ` at ${endpoint}` : ''}`,

    async list() {
      const recorded = await readJson<DeployState>(client, sdk, Bucket, prefix + STATE_KEY);
      const state = recorded?.version === 1 ? recorded : undefined;
      const remote = new Map<string, RemoteObject>();
      let unknown: string[];
      if (state) {
        for (const [key, object] of Object.entries(state.objects)) remote.set(key, object);
        unknown = state.pending;
      } else {
        unknown = await listKeys(client, sdk, Bucket, prefix);
      }
      const limit = pLimit(HEAD_CONCURRENCY);
      await Promise.all(
        unknown.map((key) =>
          limit(async () => {
            const head = await headObject(client, sdk, Bucket, prefix + key);
            if (head) remote.set(key, head);
            else remote.delete(key);
          }),
        ),
      );
      return remote;
    },

    async put(object, blobs) {
      const params = {
        Bucket,
        Key: prefix + object.key,
        ContentType: object.contentType,
        CacheControl: object.cacheControl,
        ...(object.contentDisposition ? { ContentDisposition: object.contentDisposition } : {}),
        Metadata: { sha256: object.sha256 },
      };
      if (object.source.type === 'body') {
        await client.send(new sdk.PutObjectCommand({ ...params, Body: object.source.body }));
      } else if (object.size < MULTIPART_THRESHOLD) {
        // In memory, so the SDK can send it again after a throttled or failed attempt.
        await client.send(new sdk.PutObjectCommand({ ...params, Body: await buffer(await blobs.open(object.source.blob)) }));
      } else {
        const { Upload } = await import('@aws-sdk/lib-storage');
        await new Upload({ client, params: { ...params, Body: await blobs.open(object.source.blob) }, partSize: 8 * 1024 * 1024, queueSize: 4 }).done();
      }
    },

    async delete(keys) {
      for (let i = 0; i < keys.length; i += 1000) {
        const batch = keys.slice(i, i + 1000);
        const result = await client.send(new sdk.DeleteObjectsCommand({ Bucket, Delete: { Objects: batch.map((key) => ({ Key: prefix + key })), Quiet: true } }));
        if (result.Errors?.length) throw new Error(`Deleting failed for ${result.Errors.map((error) => `${error.Key} (${error.Code})`).join(', ')}`);
      }
    },

    async saveState(objects, pending = []) {
      const state: DeployState = { version: 1, objects: Object.fromEntries([...objects].sort(([a], [b]) => (a < b ? -1 : 1))), pending: [...pending].sort() };
      await writeJson(client, sdk, Bucket, prefix + STATE_KEY, state);
    },

    readRecord: (name) => readJson(client, sdk, Bucket, prefix + RECORDS + name),
    writeRecord: (name, value) => writeJson(client, sdk, Bucket, prefix + RECORDS + name, value),
  };
}

async function buffer(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** What the deployer last recorded; undefined when there is no record (a first deploy, or one made before records). */
async function readJson<T>(client: S3Client, sdk: Sdk, Bucket: string, Key: string): Promise<T | undefined> {
  try {
    const response = await client.send(new sdk.GetObjectCommand({ Bucket, Key }));
    return JSON.parse(await response.Body!.transformToString()) as T;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

async function writeJson(client: S3Client, sdk: Sdk, Bucket: string, Key: string, value: unknown): Promise<void> {
  await client.send(new sdk.PutObjectCommand({ Bucket, Key, Body: `${JSON.stringify(value)}\n`, ContentType: 'application/json', CacheControl: 'no-store' }));
}

/** Every key under the prefix but the record itself: the slow way, when there is no record. */
async function listKeys(client: S3Client, sdk: Sdk, Bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await client.send(new sdk.ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken }));
    for (const item of page.Contents ?? []) if (item.Key && !item.Key.startsWith(prefix + RECORDS)) keys.push(item.Key.slice(prefix.length));
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return keys;
}

/** An object's size and recorded sha256, or undefined when it does not exist. */
async function headObject(client: S3Client, sdk: Sdk, Bucket: string, Key: string): Promise<RemoteObject | undefined> {
  try {
    const head = await client.send(new sdk.HeadObjectCommand({ Bucket, Key }));
    return { size: head.ContentLength ?? 0, sha256: head.Metadata?.sha256 };
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

function isNotFound(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
  const name = (error as { name?: string })?.name;
  return status === 404 || name === 'NotFound' || name === 'NoSuchKey';
}
