// The lock module, against both backends: mutual exclusion, a holder killed with SIGKILL in the
// middle of its section loses the lock within moments, and a live holder, however slow, keeps it.
// The holders are child processes (test/helpers/lock-holder.ts), as in production.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openLocks, type Locks } from '../generator/stores/locks.ts';
import { POSTGRES_MISSING, TEST_DATABASE_URL } from './helpers/postgres.ts';
import { REPO } from './helpers/sample-site.ts';

/** Every test of one backend; `where` is the directory or the URL a child process opens. */
function lockContract(backend: 'file' | 'postgres', setUp: () => Promise<{ locks: Locks; where: string; tearDown(): Promise<void> }>) {
  let locks: Locks;
  let where: string;
  let tearDown: () => Promise<void>;
  const children: ChildProcess[] = [];
  before(async () => ({ locks, where, tearDown } = await setUp()));
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await tearDown?.();
  });
  const holder = (name: string, mode: string) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'test/helpers/lock-holder.ts', backend, where, name, mode], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const said = (line: string) => new Promise<number>((resolve, reject) => {
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.split('\n').includes(line)) resolve(performance.now());
      });
      child.once('exit', (code, signal) => reject(new Error(`the holder exited (${code ?? signal}) before saying ${line}: ${output}`)));
    });
    const released = said('released');
    released.catch(() => undefined);
    return { child, held: said('held'), released };
  };
  const name = () => `test:${randomBytes(6).toString('hex')}`;

  test('sections under one name run one at a time; other names do not wait', async () => {
    const shared = name();
    let inside = 0;
    let most = 0;
    const section = async () => {
      inside++;
      most = Math.max(most, inside);
      await new Promise((resolve) => setTimeout(resolve, 20));
      inside--;
    };
    await Promise.all(Array.from({ length: 8 }, () => locks.withLock(shared, section)));
    assert.equal(most, 1);
    let other = false;
    await locks.withLock(shared, () => locks.withLock(name(), async () => void (other = true)));
    assert.equal(other, true);
  });

  test('a section that throws releases the lock', async () => {
    const shared = name();
    await assert.rejects(locks.withLock(shared, async () => Promise.reject(new Error('build failed'))), /build failed/);
    assert.equal(await locks.withLock(shared, async () => 'next'), 'next');
  });

  test('a holder killed with SIGKILL mid-section: another process has the lock within 2 s', async () => {
    const shared = name();
    const held = holder(shared, 'forever');
    await held.held;
    let acquiredAt = 0;
    const waiting = locks.withLock(shared, async () => void (acquiredAt = performance.now()));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(acquiredAt, 0, 'taken while the holder lives');
    const killedAt = performance.now();
    held.child.kill('SIGKILL');
    await waiting;
    const takeover = acquiredAt - killedAt;
    console.log(`${backend}: lock taken ${Math.round(takeover)} ms after SIGKILL of its holder`);
    assert.ok(takeover < 2_000, `took ${Math.round(takeover)} ms`);
  });

  test('a live holder too busy to answer for 2.5 s is not robbed', async () => {
    const shared = name();
    const held = holder(shared, '2500');
    const heldAt = await held.held;
    const acquiredAt = await locks.withLock(shared, async () => performance.now());
    const releasedAt = await held.released;
    assert.ok(acquiredAt - heldAt >= 2_400, `taken ${Math.round(acquiredAt - heldAt)} ms after the holder took it`);
    assert.ok(acquiredAt - releasedAt < 1_000, 'taken soon after the release');
  });
}

describe('file locks (SQLite write lock in the data directory)', () => {
  lockContract('file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mirror-locks-'));
    return { locks: await openLocks({ dir }), where: dir, tearDown: () => rm(dir, { recursive: true, force: true }) };
  });
});

describe('PostgreSQL advisory locks', { skip: !process.env.CI && POSTGRES_MISSING }, () => {
  lockContract('postgres', async () => {
    assert.equal(POSTGRES_MISSING, false, POSTGRES_MISSING || '');
    return { locks: await openLocks({ url: TEST_DATABASE_URL!, dir: '' }), where: TEST_DATABASE_URL!, tearDown: async () => undefined };
  });
});
