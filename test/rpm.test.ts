// Reading an .rpm's headers: every field yum's repodata needs, checked against what rpm itself
// prints for a package rpmbuild made here, and clear errors for files that are not binary .rpms.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { readRpmMetadata, rpmMetadata, type RpmMetadata, type RpmMetadataInput } from '../generator/packages/rpm.ts';
import { buildRpm, exec, whyRpmCannotRun } from './helpers/rpmbuild.ts';
import { removeDir, tempDir } from './helpers/store.ts';

describe('readRpmMetadata', { skip: whyRpmCannotRun() }, () => {
  let dir: string;
  let file: string;
  let stored: RpmMetadataInput;
  let metadata: RpmMetadata;
  before(async () => {
    dir = await tempDir('mirror-rpm-');
    file = await buildRpm(dir, {
      name: 'rpmtest',
      version: '1.4.0',
      release: '3',
      epoch: 2,
      preamble: [
        'Vendor: Example Vendor',
        'Packager: Release Team <releases@example.com>',
        'Group: Applications/System',
        'Requires(pre): /bin/sh',
        'Requires: coreutils >= 8.0',
        'Provides: rpmtest-cli = 2:1.4.0-3',
        'Conflicts: old-rpmtest < 1.0',
        'Obsoletes: legacy-rpmtest <= 0.9',
      ],
      files: [
        { install: 'mkdir -p %{buildroot}/usr/share/rpmtest', list: '%dir /usr/share/rpmtest' },
        { install: 'mkdir -p %{buildroot}/etc && echo "level = 1" > %{buildroot}/etc/rpmtest.conf', list: '%config(noreplace) /etc/rpmtest.conf' },
        { install: 'mkdir -p %{buildroot}/var/log && touch %{buildroot}/var/log/rpmtest.log', list: '%ghost /var/log/rpmtest.log' },
      ],
      changelog: ['* Tue Apr 30 2024 Release Team <releases@example.com> - 2:1.4.0-3', '- Second entry, with <markup> & more', '', '* Mon Jan 01 2024 Someone <a@example.com> - 1.0.0-1', '- First entry'],
    });
    stored = await readRpmMetadata(file);
    metadata = rpmMetadata.parse(stored);
  });
  after(() => removeDir(dir));

  const query = async (format: string) => (await exec('rpm', ['-qp', '--queryformat', format, file])).stdout;
  const none = (value: string) => (value === '(none)' ? '' : value);

  test('the scalar fields are the ones rpm prints', async () => {
    const tags = ['NAME', 'EPOCH', 'VERSION', 'RELEASE', 'ARCH', 'SUMMARY', 'URL', 'LICENSE', 'VENDOR', 'GROUP', 'BUILDHOST', 'SOURCERPM', 'BUILDTIME', 'PACKAGER', 'LONGSIZE', 'LONGARCHIVESIZE', 'DESCRIPTION'];
    const values = (await query(tags.map((tag) => `%{${tag}}`).join('\\t'))).split('\t').map(none);
    const expected = Object.fromEntries(tags.map((tag, i) => [tag, values[i]]));
    assert.deepEqual(
      {
        NAME: metadata.name,
        EPOCH: String(metadata.epoch),
        VERSION: metadata.version,
        RELEASE: metadata.release,
        ARCH: metadata.arch,
        SUMMARY: metadata.summary,
        URL: metadata.url,
        LICENSE: metadata.license,
        VENDOR: metadata.vendor,
        GROUP: metadata.group,
        BUILDHOST: metadata.buildhost,
        SOURCERPM: metadata.sourcerpm,
        BUILDTIME: String(metadata.buildtime),
        PACKAGER: metadata.packager,
        LONGSIZE: String(metadata.installed_size),
        LONGARCHIVESIZE: String(metadata.archive_size),
        DESCRIPTION: metadata.description,
      },
      expected,
    );
    assert.equal(metadata.buildtime, 1714557600, 'SOURCE_DATE_EPOCH is the build time');
  });

  test('the header range spans the main header, and the payload follows it', async () => {
    const bytes = await readFile(file);
    const { start, end } = metadata.header_range;
    assert.equal(bytes.readUInt32BE(start), 0x8eade801, 'the main header starts at `start`');
    // The payload begins where the header ends: gzip (the helper asks for it) unpacks to the archive size.
    assert.equal(gunzipSync(bytes.subarray(end)).length, metadata.archive_size);
  });

  test('dependencies read as rpm prints them, without rpmlib() and duplicates, with Requires(pre) apart', async () => {
    const lines = async (option: string) => (await exec('rpm', ['-qp', option, file])).stdout.trim().split('\n');
    assert.deepEqual(metadata.provides, await lines('--provides'));
    assert.deepEqual(metadata.conflicts, await lines('--conflicts'));
    assert.deepEqual(metadata.obsoletes, await lines('--obsoletes'));
    const requires = [...new Set((await lines('--requires')).filter((line) => !line.startsWith('rpmlib(')))];
    assert.deepEqual([...metadata.requires_pre, ...metadata.requires].sort(), requires.sort());
    const preNames = (await query('[%{REQUIRENAME}\\t%{REQUIREFLAGS:deptype}\\n]')).split('\n').filter((line) => line.endsWith('\tpre')).map((line) => line.split('\t')[0]);
    assert.deepEqual(metadata.requires_pre, [...new Set(preNames)]);
    assert.ok(metadata.requires.includes('coreutils >= 8.0'));
    assert.ok(metadata.provides.includes('rpmtest-cli = 2:1.4.0-3'));
  });

  test('files, directories and ghosts are told apart as rpm tells them', async () => {
    const entries = (await query('[%{FILENAMES}\\t%{FILEFLAGS:fflags}\\t%{FILEMODES:perms}\\n]')).trim().split('\n').map((line) => line.split('\t'));
    assert.deepEqual(metadata.ghosts, entries.filter(([, flags]) => flags!.includes('g')).map(([name]) => name));
    assert.deepEqual(metadata.dirs, entries.filter(([, flags, perms]) => !flags!.includes('g') && perms!.startsWith('d')).map(([name]) => name));
    assert.deepEqual(metadata.files, entries.filter(([, flags, perms]) => !flags!.includes('g') && !perms!.startsWith('d')).map(([name]) => name));
    assert.deepEqual(metadata.dirs, ['/usr/share/rpmtest']);
    assert.deepEqual(metadata.ghosts, ['/var/log/rpmtest.log']);
  });

  test('the changelog is rpm’s, newest first', async () => {
    const entries = (await query('[%{CHANGELOGTIME}\\t%{CHANGELOGNAME}\\t%{CHANGELOGTEXT}\\v]')).split('\v').filter(Boolean).map((entry) => entry.split('\t'));
    assert.deepEqual(
      metadata.changelog.map((entry) => [String(entry.date), entry.author, entry.text]),
      entries,
    );
    assert.equal(metadata.changelog[0]!.text, '- Second entry, with <markup> & more');
  });

  test('the stored form leaves out what is empty, and reads back the same', async () => {
    const minimal = await readRpmMetadata(await buildRpm(dir, { name: 'bare', version: '0.1.0', preamble: ['AutoReqProv: no'] }));
    assert.deepEqual(Object.keys(minimal), ['name', 'version', 'release', 'arch', 'summary', 'description', 'url', 'license', 'group', 'buildhost', 'sourcerpm', 'buildtime', 'header_range', 'installed_size', 'archive_size', 'provides', 'files']);
    const parsed = rpmMetadata.parse(minimal);
    assert.equal(parsed.epoch, 0);
    assert.deepEqual([parsed.requires, parsed.conflicts, parsed.dirs, parsed.changelog], [[], [], [], []]);
    assert.deepEqual(rpmMetadata.parse(JSON.parse(JSON.stringify(stored))), metadata, 'a release file round-trips');
    assert.deepEqual(await readRpmMetadata(file), stored, 'reading twice gives the same fields');
  });

  test('a file that is not a binary .rpm is refused with its name and the reason', async () => {
    const bytes = await readFile(file);
    const cases: [string, Uint8Array, RegExp][] = [
      ['text.rpm', Buffer.from('not a package at all, just some text long enough to fill a lead '.repeat(3)), /does not start with the rpm lead magic/],
      ['short.rpm', bytes.subarray(0, 50), /the file ends inside the lead/],
      ['cut.rpm', bytes.subarray(0, metadata.header_range.start + 100), /the file ends inside the main header/],
      ['zeroed.rpm', Buffer.concat([bytes.subarray(0, metadata.header_range.start), Buffer.alloc(16), bytes.subarray(metadata.header_range.start + 16)]), /the main header at byte \d+ has no header magic/],
      ['huge.rpm', withUInt32(bytes, metadata.header_range.start + 12, 0x0ffffff0), /the file ends inside the main header/],
      ['absurd.rpm', withUInt32(bytes, metadata.header_range.start + 12, 0xfffffff0), /the main header claims \d+ entries and 4294967280 bytes of data/],
    ];
    for (const [name, content, reason] of cases) {
      const broken = path.join(dir, name);
      await writeFile(broken, content);
      await assert.rejects(readRpmMetadata(broken), (error: Error) => {
        assert.ok(error.message.startsWith(`${broken}: not a readable binary .rpm: `), error.message);
        assert.match(error.message, reason);
        return true;
      });
    }
    const source = await buildRpm(dir, { name: 'srctest', version: '1.0.0', source: true });
    await assert.rejects(readRpmMetadata(source), new RegExp(`^Error: ${source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*source package`));
    await assert.rejects(readRpmMetadata(path.join(dir, 'missing.rpm')), /ENOENT.*missing\.rpm/);
  });
});

function withUInt32(bytes: Buffer, offset: number, value: number): Buffer {
  const changed = Buffer.from(bytes);
  changed.writeUInt32BE(value, offset);
  return changed;
}
