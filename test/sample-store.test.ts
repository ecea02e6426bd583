// `mirror start --releases DIR` on a folder that does not exist yet: a copy of the bundled sample,
// its artifacts beside the data directory's own blobs, and the checkout's files left alone.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, test } from 'node:test';
import { SAMPLE_BLOBS, SAMPLE_STORE, seedFromSample } from '../generator/sample-store.ts';
import { listFiles, removeDir, tempDir } from './helpers/store.ts';

const dir = await tempDir('mirror-sample-');
after(() => removeDir(dir));

test('a missing store becomes a copy of the sample, blobs included; an existing one is left as it is', async () => {
  const releases = path.join(dir, 'scratch', 'releases');
  const blobs = path.join(dir, 'data', 'blobs');
  await mkdir(blobs, { recursive: true });
  await writeFile(path.join(blobs, 'mine.bin'), 'kept');
  assert.equal(await seedFromSample(releases, blobs), true);
  assert.deepEqual(await listFiles(releases), await listFiles(SAMPLE_STORE));
  assert.deepEqual((await listFiles(blobs)).filter((file) => file !== 'mine.bin'), await listFiles(SAMPLE_BLOBS));
  assert.equal(await readFile(path.join(blobs, 'mine.bin'), 'utf8'), 'kept');

  await writeFile(path.join(releases, 'mirror.json'), '{"title": "Mine"}\n');
  assert.equal(await seedFromSample(releases, blobs), false);
  assert.equal(await readFile(path.join(releases, 'mirror.json'), 'utf8'), '{"title": "Mine"}\n', 'an existing store is never overwritten');
});
