// Rendered output of the sample store against reviewed golden files.
// Regenerate only on purpose: `npm run golden:update`, then review the diff.
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { loadCatalog } from '../generator/load/index.ts';
import { loadTemplates } from '../generator/load/templates.ts';
import { render } from '../generator/render/index.ts';
import { REPO, SAMPLE_RELEASES } from './helpers/sample-site.ts';

const GOLDEN = path.join(REPO, 'test', 'golden', 'sample');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

test('the sample renders exactly the golden files', async () => {
  const site = render(await loadCatalog(SAMPLE_RELEASES), await loadTemplates());
  // Bytes, not text: package indexes (Packages.gz, repodata) are binary.
  const expected = new Map<string, Buffer>(site.files.map((file) => [path.join('site', file.key), Buffer.from(file.body)]));
  expected.set('routes.json', Buffer.from(`${JSON.stringify(site.routes, null, 2)}\n`));

  if (UPDATE) {
    await rm(GOLDEN, { recursive: true, force: true });
    for (const [file, body] of expected) {
      await mkdir(path.dirname(path.join(GOLDEN, file)), { recursive: true });
      await writeFile(path.join(GOLDEN, file), body);
    }
  }
  const present = (await readdir(GOLDEN, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(GOLDEN, path.join(entry.parentPath, entry.name)))
    .sort();
  assert.deepEqual(present, [...expected.keys()].sort(), 'golden files and rendered files differ in name; run npm run golden:update and review');
  for (const [file, body] of expected) {
    const golden = await readFile(path.join(GOLDEN, file));
    if (!body.equals(golden)) assert.equal(body.toString('utf8'), golden.toString('utf8'), `${file} differs from its golden copy`);
    assert.ok(body.equals(golden), `${file} differs from its golden copy`);
  }
});
