// What the replicas' background deploys left in S3. An upload is acknowledged after the local
// rebuild only, so S3 may lag behind the local site while it fails; once the faults and the
// traffic are over, every acknowledged upload must reach the bucket within a bound: its minor's
// listing there names the file, and its artifact's bytes are at the key the local site routes it
// to. The replicas count their own remote publishes, which shows the faults reached them.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { PUBLIC_DIR, currentBuild, readRoutes } from '../../generator/publish/local-dir.ts';
import { STATE_KEY } from '../../generator/publish/s3-target.ts';
import { resolve, tableSource, type RouteSource } from '../../generator/render/resolve.ts';
import type { Replica } from './cluster.ts';

/** Between two reads of the bucket, while it has not converged. */
const POLL_MS = 500;
const READ_CONCURRENCY = 8;

export interface Uploaded {
  /** The listing's path, e.g. /binary/releases/agent-as-code/7/3/ */
  listing: string;
  filename: string;
  sha256: string;
}

export interface Convergence {
  total: number;
  /** Listed in S3, with the right bytes at the artifact's key. */
  converged: number;
  /** From the call to the last one converging; undefined unless all did within the limit. */
  ms: number | undefined;
  /** Not in the bucket at the first read: how far behind the local site it was when the traffic stopped. */
  behindAtFirst: number;
  /** Why the ones that did not had not, the first few. */
  problems: string[];
}

interface Expected extends Uploaded {
  listingKey: string;
  artifactKey: string;
}

/** Reads the bucket (past the proxy) every half second until every upload is there, or `limitMs` is over. */
export async function bucketConverged(client: S3Client, bucket: string, site: string, uploads: Uploaded[], limitMs: number): Promise<Convergence> {
  const started = performance.now();
  const source = tableSource(await readRoutes(site));
  const problems = new Map<Uploaded, string>();
  let pending: Expected[] = [];
  for (const upload of uploads) {
    const keys = siteKeys(source, upload);
    if (typeof keys === 'string') problems.set(upload, keys);
    else pending.push({ ...upload, ...keys });
  }
  const unresolved = problems.size;
  let behindAtFirst: number | undefined;
  for (;;) {
    const missing = await notYetInBucket(client, bucket, pending);
    behindAtFirst ??= missing.size;
    pending = pending.filter((upload) => missing.has(upload));
    if (pending.length === 0 || performance.now() - started >= limitMs) {
      const diagnoses = new Map<string, Promise<string>>();
      const diagnosis = (key: string) => diagnoses.get(key) ?? diagnoses.set(key, listingDiagnosis(client, bucket, site, key)).get(key)!;
      for (const upload of pending) problems.set(upload, `${missing.get(upload)!} (${await diagnosis(upload.listingKey)})`);
      const done = uploads.length - problems.size;
      const ms = pending.length === 0 && unresolved === 0 ? performance.now() - started : undefined;
      return { total: uploads.length, converged: done, ms, behindAtFirst, problems: [...problems.values()].slice(0, 10) };
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** The S3 keys the deploy writes the upload's listing (as JSON) and artifact under: the local site's routes for its paths. */
function siteKeys(source: RouteSource, upload: Uploaded): { listingKey: string; artifactKey: string } | string {
  const listing = resolve(source, { path: upload.listing, query: '', accept: 'application/json' });
  const artifact = resolve(source, { path: `${upload.listing}${upload.filename}`, query: '' });
  if (listing.type !== 'file') return `${upload.listing} is not a file in the local site (${listing.type})`;
  if (artifact.type !== 'blob') return `${upload.listing}${upload.filename} is not an artifact in the local site (${artifact.type})`;
  return { listingKey: listing.key, artifactKey: artifact.target.blob };
}

/** The uploads not (yet) in the bucket, each with what is missing. Each listing is read once. */
async function notYetInBucket(client: S3Client, bucket: string, uploads: Expected[]): Promise<Map<Expected, string>> {
  const limit = pLimit(READ_CONCURRENCY);
  const listings = new Map<string, Promise<Set<string> | string>>();
  const listed = (key: string) => {
    let names = listings.get(key);
    if (!names) listings.set(key, (names = limit(() => listedNames(client, bucket, key))));
    return names;
  };
  /** What is missing of the upload; undefined when nothing is. */
  const inBucket = async (upload: Expected): Promise<string | undefined> => {
    const names = await listed(upload.listingKey);
    if (typeof names === 'string') return names;
    if (!names.has(upload.filename)) return `${upload.filename} not listed in s3://${bucket}/${upload.listingKey}`;
    const bytes = await limit(() => objectBytes(client, bucket, upload.artifactKey));
    if (!bytes) return `${upload.filename}: no object at s3://${bucket}/${upload.artifactKey}`;
    if (createHash('sha256').update(bytes).digest('hex') !== upload.sha256) return `${upload.filename}: other bytes at s3://${bucket}/${upload.artifactKey}`;
    return undefined;
  };
  const missing = new Map<Expected, string>();
  await Promise.all(
    uploads.map(async (upload) => {
      // s3rver failing a read is the soak's own trouble, not the bucket's: the upload counts as not there yet.
      const problem = await inBucket(upload).catch((error: unknown) => `${upload.filename}: reading the bucket failed: ${(error as Error).message}`);
      if (problem) missing.set(upload, problem);
    }),
  );
  return missing;
}

/**
 * Why a listing in the bucket is not the local site's: the SHA-256 of its bytes there, of the
 * metadata it was written with, of what the deploy state records for it, and of the local file.
 * Bytes other than their metadata mean an older write landed after a newer one; metadata other
 * than the state, that the state was recorded for a write that did not land.
 */
async function listingDiagnosis(client: S3Client, bucket: string, site: string, key: string): Promise<string> {
  const short = (sha256: string | undefined) => sha256?.slice(0, 12) ?? 'none';
  const sha256 = (bytes: Uint8Array | undefined) => bytes && createHash('sha256').update(bytes).digest('hex');
  try {
    const build = await currentBuild(site);
    const local = build ? await readFile(path.join(build, PUBLIC_DIR, key)).catch(() => undefined) : undefined;
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
    const state = JSON.parse((await objectBytes(client, bucket, STATE_KEY))?.toString() ?? '{}') as { objects?: Record<string, { sha256: string }>; pending?: string[] };
    const pending = state.pending?.includes(key) ? ', pending there' : '';
    return `in the bucket: bytes ${short(sha256(await objectBytes(client, bucket, key)))}, metadata ${short(head?.Metadata?.sha256)}; deploy state ${short(state.objects?.[key]?.sha256)}${pending}; local site ${short(sha256(local))}`;
  } catch (error) {
    return `no diagnosis: ${(error as Error).message}`;
  }
}

/** The filenames a listing object names, or why there are none. */
async function listedNames(client: S3Client, bucket: string, key: string): Promise<Set<string> | string> {
  const bytes = await objectBytes(client, bucket, key);
  if (!bytes) return `no listing at s3://${bucket}/${key}`;
  try {
    const { files } = JSON.parse(bytes.toString()) as { files: { filename: string }[] };
    return new Set(files.map((file) => file.filename));
  } catch (error) {
    return `s3://${bucket}/${key} is not a listing: ${(error as Error).message}`;
  }
}

/** An object's bytes; undefined when there is no such object. */
async function objectBytes(client: S3Client, bucket: string, key: string): Promise<Buffer | undefined> {
  try {
    const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await object.Body!.transformToByteArray());
  } catch (error) {
    if ((error as { name?: string }).name === 'NoSuchKey' || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  }
}

export interface RemotePublishes {
  ok: number;
  failed: number;
}

/** The replica's `site_remote_publishes_total` since it started; zeros when it does not answer. */
export async function remotePublishes(replica: Replica): Promise<RemotePublishes> {
  const text = await fetch(`${replica.url}/metrics`)
    .then((response) => (response.ok ? response.text() : ''))
    .catch(() => '');
  const count = (result: string) => Number(new RegExp(`^site_remote_publishes_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { ok: count('ok'), failed: count('failed') };
}

/** Waits until every replica has finished the remote publish it starts with, or `limitMs` is over; false then. */
export async function startedInSync(replicas: Replica[], limitMs: number): Promise<boolean> {
  const deadline = performance.now() + limitMs;
  while (performance.now() < deadline) {
    const counted = await Promise.all(replicas.map(remotePublishes));
    if (counted.every((each) => each.ok + each.failed > 0)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
