// A user's download, end to end: `curl` fetches a version's files and SHA256SUMS, `sha256sum -c` checks them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { serveSampleForSuite } from './helpers/sample-site.ts';

const run = promisify(execFile);
const site = serveSampleForSuite();
let work: string;
before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'mirror-curl-'));
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

test('curl downloads every file of 1.12.2 and sha256sum -c accepts them', async () => {
  const base = `${site.url()}/binary/releases/agent-as-code/1/12`;
  const { stdout: listing } = await run('curl', ['-fsS', `${base}/`]);
  const files = (JSON.parse(listing) as { files: { filename: string; version: string }[] }).files.filter((file) => file.version === '1.12.2');
  assert.equal(files.length, 6);
  for (const file of files) await run('curl', ['-fsS', '-o', file.filename, `${base}/${file.filename}`], { cwd: work });
  await run('curl', ['-fsSO', `${base}/agent_as_code_1.12.2_SHA256SUMS`], { cwd: work });
  const { stdout } = await run('sha256sum', ['-c', 'agent_as_code_1.12.2_SHA256SUMS'], { cwd: work });
  assert.equal(stdout.trim().split('\n').filter((line) => line.endsWith(': OK')).length, 6);
});

test('sha256sum -c fails on a corrupted download', async () => {
  const dir = await mkdtemp(path.join(work, 'bad-'));
  const base = `${site.url()}/binary/releases/agent-as-code/1/0`;
  await run('curl', ['-fsSO', `${base}/agent_as_code_1.0.0_SHA256SUMS`], { cwd: dir });
  for (const name of ['agent_as_code_1.0.0_linux_amd64.zip', 'agent_as_code_1.0.0_darwin_arm64.zip', 'agent_as_code_1.0.0_darwin_amd64.zip']) {
    await run('curl', ['-fsSO', `${base}/${name}`], { cwd: dir });
  }
  await run('curl', ['-fsS', '-o', 'agent_as_code_1.0.0_windows_amd64.zip', '-r', '0-20', `${base}/agent_as_code_1.0.0_windows_amd64.zip`], { cwd: dir });
  await assert.rejects(run('sha256sum', ['-c', 'agent_as_code_1.0.0_SHA256SUMS'], { cwd: dir }), (error: { stdout: string }) => /windows_amd64\.zip: FAILED/.test(error.stdout));
});

test('curl -L follows the seed-001 redirect to the installer named in the release', async () => {
  const release = JSON.parse((await run('curl', ['-fsS', `${site.url()}/v2/agent-releases/latest?channel=stable`])).stdout);
  const { stdout } = await run('curl', ['-fsSL', '-o', 'agent.pkg', '-w', '%{http_code} %{num_redirects}', `${site.url()}/v2/agent-releases/latest/download?channel=stable&platform=macos&arch=arm64`], { cwd: work });
  assert.equal(stdout, '200 1');
  const { stdout: sum } = await run('sha256sum', ['agent.pkg'], { cwd: work });
  assert.equal(sum.split(' ')[0], release.artifacts.macos.arm64.sha256);
});
