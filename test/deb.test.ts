// readDebMetadata against packages dpkg-deb builds here, in every compression it writes, and
// against files that are not packages.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { access, chmod, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseControl, readDebMetadata } from '../generator/packages/deb.ts';
import { addRelease } from '../generator/release-add.ts';
import { createFsBlobStore } from '../generator/stores/blob-fs.ts';
import { removeDir, tempDir } from './helpers/store.ts';

const CONTROL = [
  'Package: libexample-tool1',
  'Version: 2:1.4.0~rc.2-1',
  'Architecture: arm64',
  'Maintainer: Example Releases <releases@example.com>',
  'Depends: libc6 (>= 2.36)',
  'Description: an example tool',
  ' First line of the long description.',
  ' .',
  ' A second paragraph.',
  '',
].join('\n');

const FIELDS = {
  Package: 'libexample-tool1',
  Version: '2:1.4.0~rc.2-1',
  Architecture: 'arm64',
  Maintainer: 'Example Releases <releases@example.com>',
  Depends: 'libc6 (>= 2.36)',
  Description: 'an example tool\n First line of the long description.\n .\n A second paragraph.',
};

describe('readDebMetadata', { skip: whyDpkgCannotRun() }, () => {
  let work: string;
  before(async () => {
    work = await tempDir('mirror-deb-');
    await mkdir(path.join(work, 'root', 'DEBIAN'), { recursive: true });
    await mkdir(path.join(work, 'root', 'usr', 'bin'), { recursive: true });
    await writeFile(path.join(work, 'root', 'DEBIAN', 'control'), CONTROL);
    await writeFile(path.join(work, 'root', 'usr', 'bin', 'example'), '#!/bin/sh\necho example\n');
    await chmod(path.join(work, 'root', 'usr', 'bin', 'example'), 0o755);
  });
  after(async () => {
    if (work) await removeDir(work);
  });
  const build = (compression: string) => {
    const file = path.join(work, `example-${compression}.deb`);
    execFileSync('dpkg-deb', ['--root-owner-group', `-Z${compression}`, '-b', path.join(work, 'root'), file], { stdio: 'ignore' });
    return file;
  };

  for (const compression of ['xz', 'gzip', 'zstd', 'none']) {
    test(`reads the control fields in order, multi-line Description kept, from control.tar${compression === 'none' ? '' : ` (${compression})`}`, async () => {
      const metadata = await readDebMetadata(build(compression));
      assert.deepEqual(metadata, { control: FIELDS });
      assert.deepEqual(Object.keys(metadata.control), Object.keys(FIELDS));
    });
  }

  test('a file that is not a package: an error naming the file and what is wrong', async () => {
    const file = path.join(work, 'not-a-package.deb');
    await writeFile(file, 'PK\u0003\u0004 a zip, not a deb');
    await assert.rejects(readDebMetadata(file), { message: `${file}: not a readable .deb: not an ar archive (no \`!<arch>\` header)` });
  });

  test('a cut-short package, and one without a control archive: errors naming the file', async () => {
    const whole = await readFile(build('xz'));
    const cut = path.join(work, 'cut.deb');
    await writeFile(cut, whole.subarray(0, 200));
    await assert.rejects(readDebMetadata(cut), (error: Error) => error.message.startsWith(`${cut}: not a readable .deb: `) && /cut short|more than the file holds/.test(error.message));

    const noControl = path.join(work, 'no-control.deb');
    const member = (name: string, data: string) => `${name.padEnd(16)}${'0'.padEnd(12)}${'0'.padEnd(6)}${'0'.padEnd(6)}${'100644'.padEnd(8)}${String(data.length).padEnd(10)}\`\n${data}${data.length % 2 ? '\n' : ''}`;
    await writeFile(noControl, `!<arch>\n${member('debian-binary', '2.0\n')}${member('data.tar', '')}`);
    await assert.rejects(readDebMetadata(noControl), { message: `${noControl}: not a readable .deb: no control archive among the members \`debian-binary\`, \`data.tar\`` });
  });

  test('a control file without Version: refused by name', async () => {
    await writeFile(path.join(work, 'root', 'DEBIAN', 'control'), CONTROL.replace(/^Version: .*\n/m, ''));
    const file = path.join(work, 'no-version.deb');
    // dpkg-deb itself refuses such a control file; --nocheck builds it anyway, as a careless tool might.
    execFileSync('dpkg-deb', ['--nocheck', '--root-owner-group', '-b', path.join(work, 'root'), file], { stdio: 'ignore' });
    await writeFile(path.join(work, 'root', 'DEBIAN', 'control'), CONTROL);
    await assert.rejects(readDebMetadata(file), { message: `${file}: not a readable .deb: the control file has no \`Version\`` });
  });

  test('release add keeps the fields in the release file for a product with apt, and refuses a broken .deb, writing nothing', async () => {
    const store = path.join(work, 'store');
    await mkdir(path.join(store, 'tool'), { recursive: true });
    await writeFile(path.join(store, 'mirror.json'), JSON.stringify({ title: 'Test' }));
    await writeFile(path.join(store, 'tool', 'product.json'), JSON.stringify({ name: 'tool', title: 'Tool', description: 'A tool.', layout: 'binary', packages: { outputs: ['apt'] } }));
    const blobs = createFsBlobStore({ root: path.join(work, 'blobs') });
    const deb = path.join(work, 'tool_1.0.0_linux_arm64.deb');
    await copyFile(build('xz'), deb);
    await addRelease({ releasesDir: store, blobs, product: 'tool', version: '1.0.0', files: [{ path: deb }], publishedAt: '2024-01-01T00:00:00Z' });
    const written = JSON.parse(await readFile(path.join(store, 'tool', '1.0.0.json'), 'utf8'));
    assert.deepEqual(written.artifacts[0].deb, { control: FIELDS });

    const broken = path.join(work, 'tool_1.1.0_linux_arm64.deb');
    await writeFile(broken, 'not a package');
    await assert.rejects(addRelease({ releasesDir: store, blobs, product: 'tool', version: '1.1.0', files: [{ path: broken }], publishedAt: '2024-01-02T00:00:00Z' }), { message: `${broken}: not a readable .deb: not an ar archive (no \`!<arch>\` header)` });
    await assert.rejects(access(path.join(store, 'tool', '1.1.0.json')), { code: 'ENOENT' });
  });

  test('a missing file: the error names it', async () => {
    const file = path.join(work, 'missing.deb');
    await assert.rejects(readDebMetadata(file), (error: NodeJS.ErrnoException) => error.code === 'ENOENT' && error.message.includes(file));
  });
});

describe('parseControl', () => {
  test('a field with an empty first line keeps its continuation lines', () => {
    assert.deepEqual(parseControl('Package: x\nConffiles:\n /etc/x.conf 0123\n'), { Package: 'x', Conffiles: '\n /etc/x.conf 0123' });
  });

  test('refuses what is not one deb822 paragraph', () => {
    assert.throws(() => parseControl(' orphan\nPackage: x\n'), /line 1 continues no field/);
    assert.throws(() => parseControl('Package: x\nPackage: y\n'), /the field `Package` appears twice/);
    assert.throws(() => parseControl('Package: x\n\nPackage: y\n'), /more than one paragraph/);
    assert.throws(() => parseControl('Package x\n'), /line 1 is not `Name: value`: `Package x`/);
  });
});

/** A reason to skip, or false. CI installs dpkg-dev, and there a missing dpkg-deb fails the run. */
function whyDpkgCannotRun(): string | false {
  const reason = spawnSync('dpkg-deb', ['--version']).error ? 'dpkg-deb is not installed (apt-get install dpkg-dev)' : false;
  if (reason && process.env.CI) throw new Error(`CI must run the .deb suite, but ${reason}`);
  return reason;
}
