// A client that hangs up mid-download: not a server error, and the server keeps serving.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { build } from '../generator/pipeline.ts';
import { addRelease } from '../generator/release-add.ts';
import { createFsBlobStore } from '../generator/stores/blob-fs.ts';
import { createApp } from '../sidecar/app.ts';
import { listen, type RunningServer } from '../sidecar/server.ts';
import { createSiteSource } from '../sidecar/site-source.ts';
import { SAMPLE_RELEASES } from './helpers/sample-site.ts';

const FILE = 'agent_as_code_9.0.0_linux_amd64.zip';
const SIZE = 32 << 20;
let work: string;
let server: RunningServer;
const errors: unknown[] = [];

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'mirror-hangup-'));
  const store = path.join(work, 'releases');
  await mkdir(path.join(store, 'agent-as-code'), { recursive: true });
  await cp(path.join(SAMPLE_RELEASES, 'agent-as-code', 'product.json'), path.join(store, 'agent-as-code', 'product.json'));
  await writeFile(path.join(work, FILE), randomBytes(SIZE));
  const blobs = createFsBlobStore({ root: path.join(work, 'blobs') });
  await addRelease({ releasesDir: store, blobs, product: 'agent-as-code', version: '9.0.0', files: [{ path: path.join(work, FILE) }], publishedAt: '2026-01-01T00:00:00Z' });
  const site = path.join(work, 'site');
  await build({ releasesDir: store, site });
  server = await listen({ app: createApp({ site: createSiteSource({ site }), blobs, logError: (error) => errors.push(error) }), port: 0, host: '127.0.0.1' });
});
after(async () => {
  await server.close();
  await rm(work, { recursive: true, force: true });
});

/** Reads the first chunk of the body, then drops the connection. */
function hangUpAfterFirstChunk(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, (response) => {
      response.once('data', (chunk: Buffer) => {
        req.destroy();
        resolve(chunk.length);
      });
    });
    req.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error)));
    req.end();
  });
}

test('dropping a 32 MiB download after its first chunk logs nothing and breaks nothing', async () => {
  const url = `${server.url}/binary/releases/agent-as-code/9/0/${FILE}`;
  for (let i = 0; i < 3; i++) assert.ok((await hangUpAfterFirstChunk(url)) < SIZE);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(errors, []);
  const response = await fetch(url);
  assert.equal(response.status, 200);
  assert.equal((await response.arrayBuffer()).byteLength, SIZE);
});
