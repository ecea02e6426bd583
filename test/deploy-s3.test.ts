// mirror deploy against S3 (s3rver over real HTTP): what lands, what is skipped, the upload order,
// faults and convergence, dry runs and deletions; signed deploys: the snapshot goes up last and
// names only what the bucket already holds, and apt's and yum's indexes name only what it holds.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { loadCatalog } from '../generator/load/index.ts';
import { loadTemplates } from '../generator/load/templates.ts';
import { deploy } from '../generator/pipeline.ts';
import { STATE_KEY, createS3Target } from '../generator/publish/s3-target.ts';
import { render } from '../generator/render/index.ts';
import type { RenderedSite } from '../generator/render/index.ts';
import { createFsBlobStore } from '../generator/stores/blob-fs.ts';
import { keysDir, loadSigning, type SigningSettings } from '../generator/trust/index.ts';
import { createKey } from '../generator/trust/keyring.ts';
import { signSite } from '../generator/trust/sign-site.ts';
import { openSignatureCache } from '../generator/trust/signature-cache.ts';
import { SNAPSHOT_KEY, verifySnapshot, type FileDigest, type SnapshotPayload } from '../generator/trust/snapshot.ts';
import { SAMPLE_BLOBS, SAMPLE_RELEASES } from './helpers/sample-site.ts';
import { addPatchRelease, sha256 } from './helpers/store.ts';
import { CREDENTIALS, startFakeS3, type FakeS3 } from './helpers/s3.ts';

const BUCKET = 'mirror-site';
let s3: FakeS3;
let blobs: ReturnType<typeof createFsBlobStore>;
let work: string;
let store: string;

before(async () => {
  s3 = await startFakeS3();
});
after(async () => {
  await s3.close();
});
let bucketNumber = 0;
let bucket: string;
beforeEach(async () => {
  bucket = `${BUCKET}-${++bucketNumber}`;
  await s3.createBucket(bucket);
  work = await mkdtemp(path.join(tmpdir(), 'mirror-deploy-'));
  store = path.join(work, 'releases');
  await cp(SAMPLE_RELEASES, store, { recursive: true });
  await cp(SAMPLE_BLOBS, path.join(work, 'blobs'), { recursive: true });
  blobs = createFsBlobStore({ root: path.join(work, 'blobs') });
  s3.requests.length = 0;
  s3.afterPut = undefined;
  s3.fault = undefined;
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function runDeploy(options: { dryRun?: boolean; delete?: boolean; maxAttempts?: number; signing?: SigningSettings } = {}) {
  const target = await createS3Target({ bucket, endpoint: s3.endpoint, region: 'us-east-1', maxAttempts: options.maxAttempts ?? 6, clientConfig: { credentials: CREDENTIALS } });
  return deploy({ releasesDir: store, blobs, target, dryRun: options.dryRun ?? false, delete: options.delete ?? true, signing: options.signing });
}

async function bucketKeys(): Promise<string[]> {
  const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (listed.Contents ?? []).map((item) => item.Key!).sort();
}

async function getBytes(key: string): Promise<Buffer> {
  const response = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

const puts = () => s3.requests.filter((r) => r.method === 'PUT' && r.key !== STATE_KEY).map((r) => r.key).sort();

/** A site file's body as the bytes the bucket should hold: text as UTF-8, binary as is. */
const bytesOf = (body: string | Uint8Array) => Buffer.from(body);

async function renderedSample(dir: string) {
  return render(await loadCatalog(dir), await loadTemplates());
}

describe('mirror deploy to S3', () => {
  test('uploads every site file and artifact byte for byte, with type, cache and checksum metadata', async () => {
    await runDeploy();
    const site = await renderedSample(store);
    const blobTargets = Object.values(site.routes.paths).filter((target) => target.type === 'blob');
    // Several routes may name one blob (a .deb's binary-layout path and apt's pool path): one object.
    const expected = [...site.files.map((file) => file.key), ...new Set(blobTargets.map((target) => target.blob)), STATE_KEY].sort();
    assert.deepEqual(await bucketKeys(), expected);
    assert.ok(site.files.some((file) => typeof file.body !== 'string'), 'the sample has binary files (Packages.gz)');
    for (const file of site.files) {
      assert.deepEqual(await getBytes(file.key), bytesOf(file.body), file.key);
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: file.key }));
      assert.equal(head.ContentType, file.contentType);
      assert.equal(head.CacheControl, file.cacheControl, file.key);
      // Only content-addressed package indexes (apt's by-hash, yum's repodata) are cached for good.
      if (file.cacheControl !== 'public, max-age=60') {
        assert.equal(file.cacheControl, 'public, max-age=31536000, immutable', file.key);
        assert.ok(file.key.includes(sha256(file.body)), `${file.key} is cached for good but not named by its hash`);
      }
    }
    for (const target of blobTargets) {
      assert.deepEqual(await getBytes(target.blob), await readFile(path.join(SAMPLE_BLOBS, target.blob)), target.blob);
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: bucket, Key: target.blob }));
      assert.equal(head.Metadata?.sha256, target.sha256);
      assert.equal(head.ContentType, target.contentType);
      assert.equal(head.CacheControl, 'public, max-age=31536000, immutable');
      assert.equal(head.ContentDisposition, `attachment; filename="${target.filename}"`);
    }
  });

  test('a second deploy with nothing changed reads one record and writes nothing', async () => {
    await runDeploy();
    s3.requests.length = 0;
    const { deploy: report } = await runDeploy();
    assert.equal(report.uploaded, 0);
    assert.deepEqual(s3.requests.map((r) => `${r.method} ${r.key}`), [`GET ${STATE_KEY}`]);
  });

  test('a new release uploads its artifact and only the files it changes, artifacts first', async () => {
    await runDeploy();
    const before = await renderedSample(store);
    await addPatchRelease(store, path.join(work, 'blobs'));
    const after = await renderedSample(store);
    const changed = after.files.filter((file) => {
      const old = before.files.find((candidate) => candidate.key === file.key);
      return old === undefined || !bytesOf(old.body).equals(bytesOf(file.body));
    }).map((file) => file.key);
    // The release changes its product's package-manager files too, and no other product's.
    assert.ok(changed.includes('binary/releases/agent-as-code/install.sh') && changed.includes('homebrew/Formula/agent-as-code.rb'), changed.join(', '));
    assert.ok(!changed.some((key) => key.startsWith('apt/') || key.startsWith('rpm/')), changed.join(', '));
    const removed = before.files.filter((file) => !after.files.some((kept) => kept.key === file.key)).map((file) => file.key);
    s3.requests.length = 0;
    await runDeploy();
    const newBlob = 'releases/1/12/3/agent_as_code_1.12.3_linux_amd64.zip';
    assert.deepEqual(puts(), [newBlob, ...changed].sort());
    assert.equal(s3.requests.find((r) => r.method === 'PUT' && r.key !== STATE_KEY)?.key, newBlob);
    const held = new Set(await bucketKeys());
    assert.deepEqual(removed.filter((key) => held.has(key)), [], 'files the new site no longer has are deleted');
  });

  test('at every moment, every listing names only artifacts already in the bucket', async () => {
    await addPatchRelease(store, path.join(work, 'blobs'));
    const site = await renderedSample(store);
    let checks = 0;
    s3.afterPut = async () => {
      const keys = new Set(await bucketKeys());
      for (const key of keys) {
        if (!/\/\d+\/\d+\/index\.json$/.test(key)) continue;
        const listing = JSON.parse((await getBytes(key)).toString('utf8')) as { files: { download_url: string }[] };
        for (const file of listing.files) {
          const target = site.routes.paths[file.download_url];
          assert.ok(target?.type === 'blob' && keys.has(target.blob), `${key} names ${file.download_url} before it is uploaded`);
        }
        checks++;
      }
    };
    await runDeploy();
    assert.ok(checks > 0);
  });

  test('--dry-run plans and changes nothing', async () => {
    const { deploy: report } = await runDeploy({ dryRun: true });
    assert.ok(report.plan.steps.length > 1);
    assert.equal(report.plan.steps[0]!.name, 'artifacts');
    assert.ok(report.plan.steps.every((step) => step.puts.every((put) => put.reason === 'new')));
    assert.deepEqual(await bucketKeys(), []);
    assert.deepEqual(s3.requests.filter((r) => r.method === 'PUT' || r.method === 'DELETE' || r.method === 'POST'), []);
  });

  test('objects the site no longer references are deleted last, or kept with --no-delete', async () => {
    await addPatchRelease(store, path.join(work, 'blobs'));
    await runDeploy();
    await rm(path.join(store, 'agent-as-code', '1.12.3.json'));
    await runDeploy({ delete: false });
    assert.ok((await bucketKeys()).includes('releases/1/12/3/agent_as_code_1.12.3_linux_amd64.zip'));
    s3.requests.length = 0;
    await runDeploy();
    assert.ok(!(await bucketKeys()).includes('releases/1/12/3/agent_as_code_1.12.3_linux_amd64.zip'));
    const [record, ...methods] = s3.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD').map((r) => `${r.method} ${r.key}`);
    assert.equal(record, `PUT ${STATE_KEY}`, 'the changes are recorded as pending before any is made');
    const deletion = methods.findIndex((method) => method.startsWith('POST'));
    assert.ok(deletion >= 0 && methods.slice(0, deletion).every((method) => method.startsWith('PUT')), 'any uploads come before the deletion');
    assert.deepEqual(methods.slice(deletion + 1), [`PUT ${STATE_KEY}`], 'only the state record follows the deletion');
  });

  test('throttling and 5xx answers are retried; a failed deploy names its step and a re-run converges', async () => {
    let n = 0;
    s3.fault = (method) => method === 'PUT' && n++ % 4 === 1;
    await runDeploy();
    const expected = await bucketKeys();
    assert.ok(expected.length > 40);

    await addPatchRelease(store, path.join(work, 'blobs'));
    s3.fault = (method, key) => method === 'PUT' && key !== STATE_KEY;
    await assert.rejects(runDeploy({ maxAttempts: 1 }), /deploy step "upload artifacts" failed/);
    s3.fault = undefined;
    s3.requests.length = 0;
    await runDeploy();
    const heads = s3.requests.filter((r) => r.method === 'HEAD').map((r) => r.key);
    assert.ok(heads.includes('releases/1/12/3/agent_as_code_1.12.3_linux_amd64.zip'), 'after a cut-short deploy, the objects it was changing are read, not trusted from the record');
    assert.ok(heads.length < 20, `only those: ${heads.length}`);
    const site = await renderedSample(store);
    for (const file of site.files) assert.deepEqual(await getBytes(file.key), bytesOf(file.body), file.key);
  });

  test('a request S3 never answers is given up after the idle timeout, not waited on forever', { timeout: 10_000 }, async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      const target = await createS3Target({ bucket, endpoint, region: 'us-east-1', maxAttempts: 2, idleTimeoutMs: 200, clientConfig: { credentials: CREDENTIALS } });
      const started = performance.now();
      await assert.rejects(target.list(), /timed out|timeout/i);
      assert.ok(performance.now() - started < 5_000, `gave up after ${Math.round(performance.now() - started)} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  test('an artifact key holding other bytes is refused, not overwritten', async () => {
    await runDeploy();
    const release = JSON.parse(await readFile(path.join(store, 'agent-as-code', '1.0.0.json'), 'utf8'));
    const other = await readFile(path.join(SAMPLE_BLOBS, release.artifacts[1].blob));
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: release.artifacts[0].blob, Body: other, Metadata: { sha256: 'f'.repeat(64) } }));
    await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: STATE_KEY }));
    await assert.rejects(runDeploy(), /never overwritten/);
  });
});

/** Adds 1.12.3 with one linux/amd64 artifact, the bytes of 1.12.2's under the new version's key. */
describe('mirror deploy from a CI job', () => {
  test('needs local bytes only for the artifacts it uploads, and refuses when those are missing', async () => {
    await runDeploy();
    await addPatchRelease(store, path.join(work, 'blobs'));
    const newBlob = 'releases/1/12/3/agent_as_code_1.12.3_linux_amd64.zip';
    const bytes = await readFile(path.join(work, 'blobs', newBlob));
    await rm(path.join(work, 'blobs'), { recursive: true });
    await assert.rejects(runDeploy(), new RegExp(`lacks artifact bytes this deploy must upload: ${newBlob} \\(missing\\)`));
    await mkdir(path.dirname(path.join(work, 'blobs', newBlob)), { recursive: true });
    await writeFile(path.join(work, 'blobs', newBlob), bytes);
    const { deploy: report } = await runDeploy();
    assert.ok(report.uploaded > 0);
    assert.deepEqual(await getBytes(newBlob), bytes);
  });
});

/** The deployer's records (`.mirror/…`) are not site content. */
const RECORDS = '.mirror/';
const SNAPSHOT_RECORD = `${RECORDS}snapshot.json`;

describe('signed mirror deploy to S3', () => {
  let signing: SigningSettings;
  let keyId: string;
  beforeEach(async () => {
    const data = path.join(work, 'data');
    keyId = await createKey(keysDir(data), { name: 'Deploy test' });
    signing = await loadSigning(data, {});
  });

  /** The signed site a deploy of the store makes: its route table maps the snapshot's URLs to keys. */
  async function signedSample(): Promise<RenderedSite> {
    const { site } = await signSite(await renderedSample(store), { keyring: signing.keyring, cache: await openSignatureCache(undefined), now: new Date(), expirySeconds: signing.expirySeconds });
    return site;
  }

  /**
   * URL → site key of every snapshot entry, as the route tables serve it: file paths and endpoint
   * answers, HTML apart. A URL the later sites route is looked up there.
   */
  function entryKeys(...sites: RenderedSite[]): { indexes: Map<string, string>; pages: Map<string, string> } {
    const indexes = new Map<string, string>();
    const pages = new Map<string, string>();
    for (const site of sites) addEntryKeys(site, indexes, pages);
    return { indexes, pages };
  }

  function addEntryKeys(site: RenderedSite, indexes: Map<string, string>, pages: Map<string, string>): void {
    for (const [url, target] of Object.entries(site.routes.paths)) {
      if (target.type !== 'file') continue;
      indexes.set(url, target.key);
      if (target.html !== undefined) pages.set(url, target.html);
    }
    for (const endpoint of site.routes.endpoints) {
      if (endpoint.answer !== 'file') continue;
      for (const [url, key] of Object.entries(endpoint.entries)) {
        indexes.set(url, key);
        const html = endpoint.html?.[key];
        if (html !== undefined) pages.set(url, html);
      }
    }
  }

  /** Digests of the bytes read so far, by ETag (the bytes' MD5 here): a check reads each object once. */
  const digests = new Map<string, FileDigest>();

  /** The digest of the object `key`, whose ETag a listing gave; read when that ETag is new. */
  async function digestOf(key: string, etag?: string): Promise<FileDigest> {
    const known = etag === undefined ? undefined : digests.get(etag);
    if (known) return known;
    const response = await s3.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = await response.Body!.transformToByteArray();
    const digest = { sha256: sha256(bytes), length: bytes.length };
    digests.set(response.ETag!, digest);
    return digest;
  }

  function payloadOf(text: string): SnapshotPayload {
    return JSON.parse(Buffer.from((JSON.parse(text) as { payload: string }).payload, 'base64url').toString('utf8')) as SnapshotPayload;
  }

  /**
   * What is wrong with the snapshot the bucket holds now: a bad signature, an entry no route serves,
   * an entry naming an object the bucket lacks, or one whose bytes differ from the named hash and
   * length. `changing` are keys a deploy in flight overwrites before its own snapshot replaces this
   * one: their hashes may already be the new ones (their objects must still exist). `sites` are the
   * sites whose snapshot the bucket may hold: while a deploy is in flight, the one before it too,
   * whose snapshot may name files the new site drops (deleted only after the new snapshot is up).
   */
  async function snapshotProblems(sites: readonly RenderedSite[], changing: ReadonlySet<string> = new Set()): Promise<{ snapshot?: SnapshotPayload; problems: string[] }> {
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = new Map((listed.Contents ?? []).map((item) => [item.Key!, item.ETag!]));
    if (!keys.has(SNAPSHOT_KEY)) return { problems: [] };
    const text = (await getBytes(SNAPSHOT_KEY)).toString('utf8');
    const checked = await verifySnapshot(text, signing.keyring.active.map((key) => key.jwk), new Set());
    if (!checked.ok) return { problems: [`the snapshot does not verify: ${checked.message}`] };
    const routes = entryKeys(...sites);
    const problems: string[] = [];
    for (const [kind, entries, lookup] of [['indexes', checked.payload.indexes, routes.indexes], ['pages', checked.payload.pages, routes.pages]] as const) {
      for (const [url, named] of Object.entries(entries)) {
        const key = lookup.get(url);
        if (key === undefined) problems.push(`${kind} names ${url}, which no route serves`);
        else if (!keys.has(key)) problems.push(`${kind} names ${url} (${key}) before it is uploaded`);
        else if (!changing.has(key)) {
          const held = await digestOf(key, keys.get(key));
          if (held.sha256 !== named.sha256 || held.length !== named.length) problems.push(`${kind} names ${url} (${key}) as ${named.length} bytes ${named.sha256}, the bucket holds ${held.length} bytes ${held.sha256}`);
        }
      }
    }
    return { snapshot: checked.payload, problems };
  }

  /** Site keys PUT since the request at `from`, in the order the bucket received them. */
  const sitePuts = (from: number) => s3.requests.slice(from).filter((r) => r.method === 'PUT' && !r.key.startsWith(RECORDS)).map((r) => r.key);

  /**
   * Deploys with signing while checking the bucket's snapshot after every PUT; returns the deploy's
   * site PUTs in order, the problems found, and how many checks compared every entry's bytes.
   * `sites`: the site deployed before, if any, then the site this deploy makes.
   */
  async function deployChecked(...sites: RenderedSite[]) {
    const from = s3.requests.length;
    const problems: string[] = [];
    let strictChecks = 0;
    s3.afterPut = async (key) => {
      // Keys overwritten after the bucket's snapshot went up; every earlier upload has completed
      // (the snapshot step waits for the steps before it), so the others must match it exactly.
      const puts = s3.requests.filter((r) => r.method === 'PUT').map((r) => r.key);
      const changing = new Set(puts.slice(puts.lastIndexOf(SNAPSHOT_KEY) + 1));
      const checked = await snapshotProblems(sites, changing);
      if (checked.snapshot && changing.size === 0) strictChecks++;
      problems.push(...checked.problems.map((problem) => `after PUT ${key}: ${problem}`));
    };
    try {
      await runDeploy({ signing });
      return { puts: sitePuts(from), problems, strictChecks };
    } finally {
      s3.afterPut = undefined;
    }
  }

  async function recordedVersion(): Promise<number> {
    return (JSON.parse((await getBytes(SNAPSHOT_RECORD)).toString('utf8')) as { version: number }).version;
  }

  test('at every moment, the snapshot names only objects the bucket holds, with their hashes; it goes up last', async () => {
    const first = await signedSample();
    const deployed = await deployChecked(first);
    assert.deepEqual(deployed.problems, []);
    assert.equal(deployed.puts.at(-1), SNAPSHOT_KEY, 'the snapshot is the last object of the first deploy');
    assert.equal(deployed.puts.filter((key) => key === SNAPSHOT_KEY).length, 1);
    assert.ok(deployed.strictChecks >= 1, 'the snapshot was checked against every object as it landed');
    const landed = await snapshotProblems([first]);
    assert.deepEqual(landed.problems, []);
    assert.equal(Object.keys(landed.snapshot!.indexes).length, entryKeys(first).indexes.size - 1, 'it names every file but itself');
    assert.equal(Object.keys(landed.snapshot!.pages).length, entryKeys(first).pages.size);

    await addPatchRelease(store, path.join(work, 'blobs'));
    const second = await signedSample();
    const oldSums = new Set(first.files.filter((file) => file.signAt !== undefined).map((file) => file.key));
    const newSums = second.files.filter((file) => file.signAt !== undefined && !oldSums.has(file.key)).map((file) => file.key);
    assert.deepEqual(newSums, ['binary/releases/agent-as-code/1/12/agent_as_code_1.12.3_SHA256SUMS']);
    // `<sums>.sig` is a route to the primary key's `<sums>.<KEYID>.sig`, not an object of its own.
    const signed = [newSums[0]!, `${newSums[0]}.${keyId}.sig`];
    assert.deepEqual(second.routes.paths[`/${newSums[0]}.sig`], { type: 'file', key: `${newSums[0]}.${keyId}.sig` });
    const redeployed = await deployChecked(first, second);
    assert.deepEqual(redeployed.problems, []);
    assert.equal(redeployed.puts.at(-1), SNAPSHOT_KEY, 'the snapshot is the last object of the deploy adding a release');
    assert.equal(redeployed.puts.filter((key) => key === SNAPSHOT_KEY).length, 1);
    assert.ok(redeployed.strictChecks >= 1);
    for (const key of signed) assert.ok(redeployed.puts.indexOf(key) >= 0 && redeployed.puts.indexOf(key) < redeployed.puts.indexOf(SNAPSHOT_KEY), `${key} goes up before the snapshot`);
    const final = await snapshotProblems([second]);
    assert.deepEqual(final.problems, []);
    for (const key of signed) assert.deepEqual(final.snapshot!.indexes[`/${key}`], await digestOf(key), `the new snapshot names /${key}`);
    assert.deepEqual(final.snapshot!.indexes[`/${newSums[0]}.sig`], await digestOf(`${newSums[0]}.${keyId}.sig`), 'and the primary\'s .sig under its own URL');
    assert.ok(final.snapshot!.version > landed.snapshot!.version);
  });

  /** Bodies read so far, by ETag: a check reads each index once. */
  const bodies = new Map<string, Buffer>();

  /**
   * What is wrong with the apt and yum repositories the bucket holds now. A Release or InRelease
   * names each index by hash: its by-hash copy must hold that hash, the index under its own name
   * too unless it was overwritten after this Release went up (apt fetches by hash). A Packages file
   * or a yum primary.xml.gz names packages: each route must reach a blob the bucket holds, with the
   * named hash. A repomd.xml names its metadata files, which must be there with the named hash.
   * `sites` route the package paths: the site deployed before, if any, then the one in flight.
   */
  async function packageIndexProblems(sites: readonly RenderedSite[], putsSoFar: readonly string[]): Promise<{ checked: Record<string, number>; problems: string[] }> {
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = new Map((listed.Contents ?? []).map((item) => [item.Key!, item.ETag!]));
    const problems: string[] = [];
    const checked: Record<string, number> = { release: 0, packages: 0, repomd: 0, primary: 0 };
    const blobOf = (url: string) => {
      for (const site of [...sites].reverse()) {
        const target = site.routes.paths[url];
        if (target?.type === 'blob') return target.blob;
      }
      return undefined;
    };
    const holds = async (what: string, key: string, sha256: string, length?: number) => {
      if (!keys.has(key)) return problems.push(`${what} names ${key}, which the bucket lacks`);
      const held = await digestOf(key, keys.get(key));
      if (held.sha256 !== sha256 || (length !== undefined && held.length !== length)) problems.push(`${what} names ${key} as ${length ?? '?'} bytes ${sha256}, the bucket holds ${held.length} bytes ${held.sha256}`);
    };
    const read = async (key: string) => {
      const etag = keys.get(key)!;
      const known = bodies.get(etag);
      if (known) return known;
      const bytes = await getBytes(key);
      bodies.set(etag, bytes);
      return bytes;
    };
    const packagesNamed = async (what: string, text: string, root: string) => {
      for (const paragraph of text.split('\n\n').filter((part) => part.trim() !== '')) {
        const filename = /^Filename: (.+)$/m.exec(paragraph)?.[1];
        const hash = /^SHA256: ([0-9a-f]{64})$/m.exec(paragraph)?.[1];
        if (!filename || !hash) problems.push(`${what} has a paragraph without Filename or SHA256`);
        else {
          const blob = blobOf(`/${root}/${filename}`);
          if (blob === undefined) problems.push(`${what} names ${filename}, which no route serves from a blob`);
          else await holds(`${what} (${filename})`, blob, hash);
        }
      }
    };
    for (const key of keys.keys()) {
      const release = /^(apt\/dists\/[^/]+)\/(Release|InRelease)$/.exec(key);
      if (release) {
        const dist = release[1]!;
        const text = (await read(key)).toString('utf8');
        const lines = [...text.matchAll(/^ ([0-9a-f]{64}) +(\d+) (\S+)$/gm)];
        if (lines.length === 0) problems.push(`${key} names no index`);
        // Indexes overwritten after this Release went up may already hold the next Release's bytes.
        const rewritten = new Set(putsSoFar.slice(putsSoFar.lastIndexOf(key) + 1));
        for (const [, hash, size, name] of lines) {
          await holds(key, `${dist}/${path.posix.dirname(name!)}/by-hash/SHA256/${hash}`, hash!, Number(size));
          const index = `${dist}/${name}`;
          if (!rewritten.has(index)) await holds(key, index, hash!, Number(size));
          else if (!keys.has(index)) problems.push(`${key} names ${index}, which the bucket lacks`);
        }
        checked.release!++;
      }
      const packages = /^(apt)\/dists\/.*\/(Packages(\.gz)?|by-hash\/SHA256\/[0-9a-f]{64})$/.exec(key);
      if (packages) {
        const bytes = await read(key);
        const text = (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('utf8');
        await packagesNamed(key, text, packages[1]!);
        checked.packages!++;
      }
      const repomd = /^(rpm\/[^/]+)\/repodata\/repomd\.xml$/.exec(key);
      if (repomd) {
        const repo = repomd[1]!;
        const text = (await read(key)).toString('utf8');
        const data = [...text.matchAll(/<data type="(\w+)">\s*<checksum type="sha256">([0-9a-f]{64})<\/checksum>[\s\S]*?<location href="([^"]+)"\/>[\s\S]*?<size>(\d+)<\/size>/g)];
        assert.deepEqual(data.map((match) => match[1]), ['primary', 'filelists', 'other'], `${key} lists the three metadata files`);
        for (const [, , hash, href, size] of data) await holds(key, `${repo}/${href}`, hash!, Number(size));
        checked.repomd!++;
      }
      const primary = /^(rpm\/[^/]+)\/repodata\/[0-9a-f]{64}-primary\.xml\.gz$/.exec(key);
      if (primary) {
        const text = gunzipSync(await read(key)).toString('utf8');
        const named = [...text.matchAll(/<package type="rpm">[\s\S]*?<checksum type="sha256" pkgid="YES">([0-9a-f]{64})<\/checksum>[\s\S]*?<location href="([^"]+)"\/>/g)];
        if (named.length === 0) problems.push(`${key} names no package`);
        for (const [, hash, href] of named) {
          // Resolved against the repository as dnf resolves it: `../../binary/...` climbs to the site's root.
          const blob = blobOf(new URL(href!, `http://mirror/${primary[1]}/`).pathname);
          if (blob === undefined) problems.push(`${key} names ${href}, which no route serves from a blob`);
          else await holds(`${key} (${href})`, blob, hash!);
        }
        checked.primary!++;
      }
    }
    return { checked, problems };
  }

  /** Deploys with signing while checking the package repositories after every PUT. */
  async function deployPackagesChecked(...sites: RenderedSite[]) {
    const from = s3.requests.length;
    const problems: string[] = [];
    const checks: Record<string, number> = { release: 0, packages: 0, repomd: 0, primary: 0 };
    s3.afterPut = async (key) => {
      const putsSoFar = s3.requests.slice(from).filter((r) => r.method === 'PUT').map((r) => r.key);
      const found = await packageIndexProblems(sites, putsSoFar);
      for (const [kind, count] of Object.entries(found.checked)) checks[kind]! += count;
      problems.push(...found.problems.map((problem) => `after PUT ${key}: ${problem}`));
    };
    try {
      await runDeploy({ signing });
      return { puts: sitePuts(from), problems, checks };
    } finally {
      s3.afterPut = undefined;
    }
  }

  test('at every moment, apt\'s Release and Packages and yum\'s repomd.xml name only objects the bucket holds, with their hashes', async () => {
    const first = await signedSample();
    const deployed = await deployPackagesChecked(first);
    assert.deepEqual(deployed.problems, []);
    for (const [kind, count] of Object.entries(deployed.checks)) assert.ok(count > 0, `${kind} was checked while the first deploy ran`);
    assert.ok(deployed.puts.includes('apt/dists/stable/InRelease') && deployed.puts.includes('rpm/stable/repodata/repomd.xml'));
    assert.deepEqual((await packageIndexProblems([first], [])).problems, []);

    await addMirrorAgentPatch(store, path.join(work, 'blobs'));
    const second = await signedSample();
    const redeployed = await deployPackagesChecked(first, second);
    assert.deepEqual(redeployed.problems, []);
    for (const key of ['releases/1/1/1/mirror_agent_1.1.1_linux_amd64.deb', 'releases/1/1/1/mirror_agent_1.1.1_linux_amd64.rpm', 'apt/dists/stable/Release', 'apt/dists/stable/InRelease', 'apt/dists/stable/main/binary-amd64/Packages', 'rpm/stable/repodata/repomd.xml']) {
      assert.ok(redeployed.puts.includes(key), `the deploy adding 1.1.1 uploads ${key}`);
    }
    for (const [kind, count] of Object.entries(redeployed.checks)) assert.ok(count > 0, `${kind} was checked while the second deploy ran`);
    assert.match((await getBytes('apt/dists/stable/main/binary-amd64/Packages')).toString('utf8'), /^Version: 1\.1\.1$/m);
    assert.deepEqual((await packageIndexProblems([second], [])).problems, []);

    // The checks find what a wrong upload order would leave: each removal below is reported.
    const primary = (await bucketKeys()).find((key) => /^rpm\/stable\/repodata\/[0-9a-f]{64}-primary\.xml\.gz$/.test(key))!;
    const byHash = (await bucketKeys()).find((key) => key.startsWith('apt/dists/stable/main/binary-amd64/by-hash/'))!;
    const removals: [string, RegExp][] = [
      ['releases/1/1/1/mirror_agent_1.1.1_linux_amd64.deb', /apt\/dists\/stable\/main\/binary-amd64\/Packages \(pool\/main\/m\/mirror-agent\/mirror-agent_1\.1\.1_amd64\.deb\) names releases\/1\/1\/1\/mirror_agent_1\.1\.1_linux_amd64\.deb, which the bucket lacks/],
      ['releases/1/1/1/mirror_agent_1.1.1_linux_amd64.rpm', /-primary\.xml\.gz \(\.\.\/\.\.\/binary\/releases\/mirror-agent\/1\/1\/mirror_agent_1\.1\.1_linux_amd64\.rpm\) names releases\/1\/1\/1\/mirror_agent_1\.1\.1_linux_amd64\.rpm, which the bucket lacks/],
      [byHash, new RegExp(`^apt/dists/stable/InRelease names ${byHash}, which the bucket lacks`, 'm')],
      [primary, new RegExp(`^rpm/stable/repodata/repomd\\.xml names ${primary}, which the bucket lacks`, 'm')],
    ];
    for (const [key, reported] of removals) {
      const bytes = await getBytes(key);
      await s3.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      assert.match((await packageIndexProblems([second], [])).problems.join('\n'), reported, `removing ${key} is reported`);
      await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    }
    await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'apt/dists/stable/main/binary-arm64/Packages', Body: 'Package: other\n' }));
    assert.match((await packageIndexProblems([second], [])).problems.join('\n'), /^apt\/dists\/stable\/Release names apt\/dists\/stable\/main\/binary-arm64\/Packages as \d+ bytes [0-9a-f]{64}, the bucket holds 15 bytes/m, 'an index with other bytes is reported');
  });

  test('a deploy of an unchanged store uploads nothing, and the recorded version only grows', async () => {
    const { signing: first } = await runDeploy({ signing });
    const v1 = await recordedVersion();
    assert.equal(v1, first.snapshot?.version);
    assert.equal(payloadOf((await getBytes(SNAPSHOT_KEY)).toString('utf8')).version, v1);

    const from = s3.requests.length;
    const { deploy: report, signing: again } = await runDeploy({ signing });
    assert.deepEqual(s3.requests.slice(from).filter((r) => r.method !== 'GET' && r.method !== 'HEAD').map((r) => `${r.method} ${r.key}`), [], 'no .sig file, no snapshot, no record');
    assert.equal(report.uploaded, 0);
    assert.deepEqual(again.snapshot, { ...first.snapshot, resigned: false });
    assert.equal(again.signaturesMade, 0);
    assert.equal(await recordedVersion(), v1);

    await addPatchRelease(store, path.join(work, 'blobs'));
    const { signing: added } = await runDeploy({ signing });
    const v2 = await recordedVersion();
    assert.ok(v2 > v1, `the version grows: ${v1} then ${v2}`);
    assert.equal(added.snapshot?.version, v2);
    assert.equal(added.signaturesMade, 1, 'only the new release\'s SHA256SUMS is signed, by the one key');
    assert.equal(payloadOf((await getBytes(SNAPSHOT_KEY)).toString('utf8')).version, v2);
  });
});

/**
 * Adds mirror-agent 1.1.1: 1.1.0's .deb and .rpm bytes under 1.1.1's names and keys, its metadata
 * saying 1.1.1 (the packages inside still say 1.1.0; no package manager installs them here).
 */
async function addMirrorAgentPatch(releasesDir: string, blobsDir: string): Promise<void> {
  const text = await readFile(path.join(releasesDir, 'mirror-agent', '1.1.0.json'), 'utf8');
  const release = JSON.parse(text.replaceAll('1.1.0', '1.1.1').replaceAll('releases/1/1/0/', 'releases/1/1/1/')) as { published_at: string; artifacts: { blob: string }[] };
  const sources = (JSON.parse(text) as typeof release).artifacts;
  release.published_at = '2024-05-20T00:00:00Z';
  for (const [n, artifact] of release.artifacts.entries()) {
    await mkdir(path.dirname(path.join(blobsDir, artifact.blob)), { recursive: true });
    await cp(path.join(blobsDir, sources[n]!.blob), path.join(blobsDir, artifact.blob));
  }
  await writeFile(path.join(releasesDir, 'mirror-agent', '1.1.1.json'), JSON.stringify(release, null, 2));
}
