// The file writer: the same changes made in place and by its thread, failures that surface where
// the caller can see them, and a backlog that bounds what waits.
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { existsSync } from 'node:fs';
import { IN_PLACE, openFileWriter, type FileChange, type FileWriterOptions } from '../generator/publish/file-writer.ts';

let work: string;
before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'mirror-writer-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

const THREADED: FileWriterOptions = { threadAfter: 0 };

async function files(dir: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) found[path.relative(dir, path.join(entry.parentPath, entry.name))] = await readFile(path.join(entry.parentPath, entry.name), 'utf8');
  }
  return found;
}

/** What the changes append to their file: short lines, and one line of 200,000 characters among them. */
const appended = Array.from({ length: 300 }, (_, i) => (i === 150 ? `${'0123456789'.repeat(20_000)}\n` : `line ${i}\n`));

/** A source folder to link from, and the changes that make a tree beside it; `fd` is a file they append to. */
async function changesInto(dir: string, fd: number): Promise<{ changes: FileChange[]; source: string }> {
  const source = path.join(dir, 'source');
  await rm(dir, { recursive: true, force: true });
  await mkdir(source, { recursive: true });
  await writeFile(path.join(source, 'kept.txt'), 'kept\n');
  await writeFile(path.join(dir, 'replaced.txt'), 'old\n');
  const out = path.join(dir, 'out');
  return {
    source,
    changes: [
      { kind: 'folder', path: path.join(out, 'a', 'b') },
      { kind: 'write', target: path.join(out, 'a', 'b', 'text.txt'), body: 'text\n', replacing: false },
      { kind: 'write', target: path.join(out, 'a', 'bytes.bin'), body: new Uint8Array([104, 105, 10]), replacing: false },
      { kind: 'write', target: path.join(dir, 'replaced.txt'), body: 'new\n', replacing: true },
      { kind: 'link', source: path.join(source, 'kept.txt'), target: path.join(out, 'linked.txt'), replacing: false },
      { kind: 'link', source: path.join(source, 'kept.txt'), target: path.join(out, 'a', 'b', 'text.txt'), replacing: true },
      { kind: 'link', source: path.join(source, 'lost.txt'), target: path.join(out, 'written.txt'), replacing: false, otherwise: 'from its body\n' },
      ...Array.from({ length: 300 }, (_, i): FileChange => ({ kind: 'write', target: path.join(out, `many-${i}.txt`), body: `${i}\n`.repeat(i), replacing: false })),
      // Long text is handed to the thread in pieces: they still land in order.
      ...appended.map((body): FileChange => ({ kind: 'append', fd, body })),
    ],
  };
}

describe('file writer', () => {
  test('its thread makes the same tree as changes made in place, links included', async () => {
    const trees: Record<string, string>[] = [];
    for (const [name, options] of [
      ['in-place', IN_PLACE],
      ['threaded', THREADED],
      ['small backlog', { threadAfter: 3, backlog: 1 }],
    ] as const) {
      const dir = path.join(work, name);
      const appendedFile = path.join(work, `${name}.appended`);
      const fd = openSync(appendedFile, 'w');
      const { changes, source } = await changesInto(dir, fd);
      const writer = openFileWriter(options);
      for (const change of changes) writer.make(change);
      assert.deepEqual(writer.drain(), { unlinked: 1 }, name);
      closeSync(fd);
      await writer.close();
      assert.equal(await readFile(appendedFile, 'utf8'), appended.join(''), `${name}: appended in order`);
      trees.push(await files(dir));
      // A link is the same file; the replacing one renamed over the file that was there.
      assert.equal((await stat(path.join(dir, 'out', 'linked.txt'))).ino, (await stat(path.join(source, 'kept.txt'))).ino, name);
      assert.equal((await stat(path.join(dir, 'out', 'a', 'b', 'text.txt'))).ino, (await stat(path.join(source, 'kept.txt'))).ino, name);
      assert.deepEqual((await readdir(dir)).filter((entry) => entry.endsWith('.tmp')), [], name);
    }
    assert.equal(trees[0]!['replaced.txt'], 'new\n');
    assert.equal(trees[0]!['out/written.txt'], 'from its body\n');
    assert.equal(trees[0]!['out/many-299.txt'], '299\n'.repeat(299));
    assert.equal(Object.keys(trees[0]!).length, 306);
    assert.deepEqual(trees[1], trees[0]);
    assert.deepEqual(trees[2], trees[0]);
  });

  test('a link that can be neither made nor copied fails with its message, from make in place and from drain by the thread', async () => {
    for (const [name, options] of [
      ['in-place', IN_PLACE],
      ['threaded', THREADED],
    ] as const) {
      const dir = path.join(work, `failing-${name}`);
      await rm(dir, { recursive: true, force: true });
      const writer = openFileWriter(options);
      const lost: FileChange = { kind: 'link', source: path.join(dir, 'lost'), target: path.join(dir, 'target'), replacing: true, failure: 'The file lost went' };
      const after: FileChange = { kind: 'write', target: path.join(dir, 'after.txt'), body: 'after\n', replacing: false };
      writer.make({ kind: 'folder', path: dir });
      if (name === 'in-place') {
        assert.throws(() => writer.make(lost), /^Error: The file lost went: ENOENT/);
      } else {
        writer.make(lost);
        writer.make(after);
        assert.throws(() => writer.drain(), /^Error: The file lost went: ENOENT/);
        // Once a change failed, the thread makes no other, and every later call says why.
        assert.throws(() => writer.make(after), /The file lost went/);
      }
      await writer.close();
      assert.deepEqual(await readdir(dir), [], `${name}: neither the target, a temporary file nor a later change`);
    }
  });

  test('past its bytes made in place, the thread takes the rest, however few the changes', async () => {
    const dir = path.join(work, 'bytes');
    await mkdir(dir, { recursive: true });
    const writer = openFileWriter({ threadAfter: 1000, threadAfterBytes: 10 });
    writer.make({ kind: 'write', target: path.join(dir, 'first.txt'), body: 'twenty bytes of text', replacing: false });
    // Made in place: there as make returns.
    assert.equal(existsSync(path.join(dir, 'first.txt')), true);
    // Handed to the thread: its failure surfaces from drain, not from make.
    writer.make({ kind: 'link', source: path.join(dir, 'lost'), target: path.join(dir, 'target'), replacing: false, failure: 'Lost' });
    assert.throws(() => writer.drain(), /^Error: Lost: ENOENT/);
    await writer.close();
  });

  test('a tree is linked file by file but for the names left out at its top; a link that fails fails settled', async () => {
    const dir = path.join(work, 'tree');
    const source = path.join(dir, 'source');
    await mkdir(path.join(source, 'a', 'b'), { recursive: true });
    await mkdir(path.join(source, 'empty'), { recursive: true });
    await writeFile(path.join(source, 'top.json'), 'left out\n');
    await writeFile(path.join(source, 'a', 'top.json'), 'not at the top: linked\n');
    await writeFile(path.join(source, 'a', 'b', 'deep.txt'), 'deep\n');
    const writer = openFileWriter(THREADED);
    try {
      writer.make({ kind: 'tree', source, target: path.join(dir, 'copy'), except: ['top.json'] });
      await writer.settled();
      assert.deepEqual(await files(path.join(dir, 'copy')), { 'a/top.json': 'not at the top: linked\n', 'a/b/deep.txt': 'deep\n' });
      assert.ok(existsSync(path.join(dir, 'copy', 'empty')), 'empty folders too');
      assert.equal((await stat(path.join(dir, 'copy', 'a', 'b', 'deep.txt'))).ino, (await stat(path.join(source, 'a', 'b', 'deep.txt'))).ino, 'linked');
      // The same tree again: its files are there already.
      writer.make({ kind: 'tree', source, target: path.join(dir, 'copy'), except: [] });
      await assert.rejects(writer.settled(), /EEXIST/);
    } finally {
      await writer.close();
    }
  });

  test('a writer that never started its thread has nothing to close', async () => {
    const writer = openFileWriter();
    assert.deepEqual(writer.drain(), { unlinked: 0 });
    await writer.close();
  });
});
