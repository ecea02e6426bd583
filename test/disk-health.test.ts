// The blob store's disk running out of space: logged once when it goes and once when it comes back
// with how many writes were refused, never per request; /readyz degraded meanwhile.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import type { BlobStore, StagedBlob } from '../generator/stores/blob-store.ts';
import { diskHealth } from '../sidecar/disk-health.ts';

function noSpace(): NodeJS.ErrnoException {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
}

test('a full disk is logged once, refused writes are counted, and the first write that succeeds says it is back', async () => {
  const lines: { level: number; msg: string; refused?: number; dependency?: string }[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _encoding, done) => void (lines.push(JSON.parse(String(chunk))), done()) }));
  let space = false;
  const staged: StagedBlob = { file: '/staged', digest: { sha256: 'x', size: 1 }, discard: async () => {} };
  const store: BlobStore = {
    stat: async () => undefined,
    open: async () => {
      throw new Error('not here');
    },
    putFile: async () => ({ created: true }),
    stage: async () => {
      if (!space) throw noSpace();
      return staged;
    },
  };
  const health = diskHealth({ logger, dir: '/data/blobs' });
  const blobs = health.watch(store);
  await health.check();
  for (let i = 0; i < 3; i++) await assert.rejects(blobs.stage([], { maxBytes: 1 }), { code: 'ENOSPC' });
  await assert.rejects(health.check(), /out of disk space since .*: ENOSPC/);
  await assert.rejects(blobs.stage([], { maxBytes: 1 }), { code: 'ENOSPC' });
  space = true;
  assert.equal(await blobs.stage([], { maxBytes: 1 }), staged);
  await health.check();
  await blobs.stage([], { maxBytes: 1 });
  assert.deepEqual(
    lines.map(({ level, msg, refused, dependency }) => ({ level, msg, refused, dependency })),
    [
      { level: 40, msg: 'the blob store is out of disk space; uploads and publishes are refused until space is freed', refused: undefined, dependency: 'blobs' },
      { level: 30, msg: 'the blob store has disk space again after 4 writes were refused', refused: 4, dependency: 'blobs' },
    ],
  );
});

test('other failures are not a full disk', async () => {
  const lines: unknown[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _encoding, done) => void (lines.push(chunk), done()) }));
  const health = diskHealth({ logger, dir: '/data/blobs' });
  const blobs = health.watch({
    stat: async () => undefined,
    open: async () => {
      throw new Error('not here');
    },
    putFile: async () => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    },
    stage: async () => {
      throw new Error('client went away');
    },
  });
  await assert.rejects(blobs.stage([], { maxBytes: 1 }), /client went away/);
  await assert.rejects(blobs.putFile('k', '/f', { sha256: 'x', size: 1 }), { code: 'EACCES' });
  await health.check();
  assert.deepEqual(lines, []);
});
