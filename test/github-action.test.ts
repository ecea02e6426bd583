// The GitHub Action as GitHub runs it: action/index.js from a copy of the files a clone of this
// repository has (no node_modules), with the machine's node, the INPUT_* variables the runner sets
// (action.yml's defaults included) and its GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, RUNNER_TEMP and
// GITHUB_WORKSPACE; deploying to s3rver through the `endpoint` input. And the committed bundle is
// the one `npm run build:action` makes now.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import * as openpgp from 'openpgp';
import { parse } from 'yaml';
import { ACTION_BUNDLE, ACTION_BUNDLE_LIMIT, buildAction } from '../scripts/action/build.ts';
import { CREDENTIALS, startFakeS3, type FakeS3 } from './helpers/s3.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const PRODUCT = 'agent-as-code';
const BASE_URL = 'https://downloads.example.com';

interface ActionRun {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
}

describe('the action bundle', () => {
  test('is the one `npm run build:action` makes from the sources now, under 10 MB, importing only Node', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mirror-action-build-'));
    try {
      const metafile = await buildAction(path.join(dir, 'index.js'));
      const [rebuilt, committed] = await Promise.all([readFile(path.join(dir, 'index.js')), readFile(path.join(REPO, ACTION_BUNDLE))]);
      assert.ok(rebuilt.equals(committed), `${ACTION_BUNDLE} is stale: run \`npm run build:action\``);
      assert.ok(committed.length < ACTION_BUNDLE_LIMIT, `${committed.length} bytes`);
      const imports = Object.values(metafile.outputs).flatMap((output) => output.imports.filter((entry) => entry.external).map((entry) => entry.path));
      assert.deepEqual(imports.filter((name) => !isBuiltin(name)), [], 'everything but Node\'s own modules is bundled');
      const inputs = Object.keys(metafile.inputs);
      assert.deepEqual(inputs.filter((file) => /node_modules\/(better-sqlite3|pg|ioredis|esbuild|@napi-rs)\//.test(file) || file.startsWith('sidecar/')), [], 'no native addon, database client or sidecar code');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the action, run as the runner runs it', () => {
  let root: string;
  let actionDir: string;
  let s3: FakeS3;
  const defaults: Record<string, string> = {};

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'mirror-action-'));
    actionDir = path.join(root, 'action-repo');
    // What a clone would hold once the working tree is committed: tracked and new files, not ignored ones.
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const file of files) if (existsSync(path.join(REPO, file))) await cp(path.join(REPO, file), path.join(actionDir, file));
    const action = parse(await readFile(path.join(actionDir, 'action.yml'), 'utf8')) as { inputs: Record<string, { default?: string }>; runs: { using: string; main: string } };
    assert.equal(action.runs.using, 'node24');
    for (const [name, spec] of Object.entries(action.inputs)) if (spec.default !== undefined) defaults[name] = spec.default;
    s3 = await startFakeS3();
    await s3.createBucket('releases');
  });
  after(async () => {
    await s3.close();
    await rm(root, { recursive: true, force: true });
  });

  /** A workflow's checkout: the sample's agent-as-code product with a base_url, and built artifacts in dist/. */
  async function workspace(name: string): Promise<string> {
    const dir = path.join(root, name);
    await mkdir(path.join(dir, 'releases', PRODUCT), { recursive: true });
    await writeFile(path.join(dir, 'releases', 'mirror.json'), JSON.stringify({ title: 'Releases', base_url: BASE_URL }));
    await cp(path.join(REPO, 'releases', PRODUCT, 'product.json'), path.join(dir, 'releases', PRODUCT, 'product.json'));
    await mkdir(path.join(dir, 'dist'));
    await writeFile(path.join(dir, 'dist', 'agent_as_code_3.1.0_linux_amd64.tar.gz'), 'linux build');
    await writeFile(path.join(dir, 'dist', 'agent_as_code_3.1.0_darwin_arm64.zip'), 'mac build');
    return dir;
  }

  /** Runs `main` of action.yml as the runner does: its own environment, inputs over action.yml's defaults. */
  async function runAction(dir: string, inputs: Record<string, string>): Promise<ActionRun> {
    const action = parse(await readFile(path.join(actionDir, 'action.yml'), 'utf8')) as { runs: { main: string } };
    const runnerTemp = path.join(dir, '..', `${path.basename(dir)}-runner-temp`);
    await mkdir(runnerTemp, { recursive: true });
    const outputFile = path.join(runnerTemp, 'output');
    const summaryFile = path.join(runnerTemp, 'summary');
    await writeFile(outputFile, '');
    await writeFile(summaryFile, '');
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: runnerTemp,
      GITHUB_ACTIONS: 'true',
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      GITHUB_WORKSPACE: dir,
      GITHUB_ACTION_PATH: actionDir,
      RUNNER_TEMP: runnerTemp,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    };
    for (const [name, value] of Object.entries({ ...defaults, ...inputs })) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [path.join(actionDir, action.runs.main)], { cwd: dir, env }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }));
    });
    return { code, stdout, stderr, outputs: parseOutputs(await readFile(outputFile, 'utf8')), summary: await readFile(summaryFile, 'utf8') };
  }

  test('the copy has the bundle and no node_modules', async () => {
    assert.ok((await stat(path.join(actionDir, ACTION_BUNDLE))).isFile());
    assert.equal(existsSync(path.join(actionDir, 'node_modules')), false);
  });

  test('adds the release, deploys it signed to an S3-compatible endpoint, and sets the outputs and the summary', async () => {
    const dir = await workspace('release');
    const { privateKey } = await openpgp.generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ name: 'Release signer' }], format: 'armored' });
    const run = await runAction(dir, {
      product: PRODUCT,
      version: '3.1.0',
      files: 'dist/*.tar.gz\n  dist/*.zip',
      bucket: 'releases',
      prefix: 'site',
      region: 'us-east-1',
      endpoint: s3.endpoint,
      'signing-key': privateKey,
    });
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    assert.doesNotMatch(run.stdout, /::error/);

    const release = JSON.parse(await readFile(path.join(dir, 'releases', PRODUCT, '3.1.0.json'), 'utf8')) as { version: string; artifacts: { filename: string; platform: string; arch: string; blob: string }[] };
    assert.equal(release.version, '3.1.0');
    assert.deepEqual(release.artifacts.map((artifact) => `${artifact.platform}/${artifact.arch} ${artifact.filename}`).sort(), ['darwin/arm64 agent_as_code_3.1.0_darwin_arm64.zip', 'linux/amd64 agent_as_code_3.1.0_linux_amd64.tar.gz']);

    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: 'releases' }));
    const keys = (listed.Contents ?? []).map((object) => object.Key!);
    assert.ok(keys.every((key) => key.startsWith('site/')), keys.join(' '));
    for (const artifact of release.artifacts) assert.ok(keys.includes(`site/${artifact.blob}`), `artifact ${artifact.blob} uploaded`);
    assert.ok(keys.includes(`site/binary/releases/${PRODUCT}/3/1/index.json`), 'the minor\'s index uploaded');
    assert.ok(keys.includes('site/.well-known/mirror/snapshot.json'), 'the signing-key input signed a snapshot');
    assert.ok(s3.requests.some((request) => request.method === 'PUT'), 'uploads went through the endpoint');
    const siteFiles = keys.filter((key) => !key.startsWith('site/.mirror/') && !release.artifacts.some((artifact) => key === `site/${artifact.blob}`));

    assert.equal(run.outputs.version, '3.1.0');
    assert.equal(run.outputs.product, PRODUCT);
    assert.deepEqual(JSON.parse(run.outputs['download-urls']!), {
      'linux/amd64': `${BASE_URL}/binary/releases/${PRODUCT}/3/1/agent_as_code_3.1.0_linux_amd64.tar.gz`,
      'darwin/arm64': `${BASE_URL}/binary/releases/${PRODUCT}/3/1/agent_as_code_3.1.0_darwin_arm64.zip`,
    });
    assert.equal(Number(run.outputs['files-changed']), siteFiles.length, 'every site file in the empty bucket was written by this deploy');
    assert.ok(siteFiles.length > 5);

    const group = /::group::(.*)\n([\s\S]*?)::endgroup::/.exec(run.stdout);
    assert.ok(group, run.stdout);
    assert.match(group[1]!, /Deploy agent-as-code 3\.1\.0 to s3:\/\/releases\/site/);
    assert.match(group[2]!, /snapshot version \d+ signed/);
    assert.match(group[2]!, /deployed to s3:\/\/releases\/site\/ at http:\/\/127\.0\.0\.1:\d+: \d+ uploaded/);

    assert.match(run.summary, /### agent-as-code 3\.1\.0 released/);
    assert.ok(run.summary.includes(`| linux/amd64 | [agent_as_code_3.1.0_linux_amd64.tar.gz](${BASE_URL}/binary/releases/${PRODUCT}/3/1/agent_as_code_3.1.0_linux_amd64.tar.gz) |`), run.summary);
    assert.match(run.summary, new RegExp(`wrote ${siteFiles.length} site files and 2 artifacts`));
  });

  test('a missing artifact file is an error annotation on that file and exit status 1, with nothing written', async () => {
    const dir = await workspace('missing');
    const run = await runAction(dir, { product: PRODUCT, version: '3.1.0', files: 'dist/agent_as_code_3.1.0_linux_arm64.tar.gz' });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^::error file=dist\/agent_as_code_3\.1\.0_linux_arm64\.tar\.gz::dist\/agent_as_code_3\.1\.0_linux_arm64\.tar\.gz: no such file \(input `files`\)$/m);
    assert.equal(existsSync(path.join(dir, 'releases', PRODUCT, '3.1.0.json')), false);
    assert.deepEqual(run.outputs, {});
  });

  test('an input the command refuses is named as the input, and a bad release file is annotated on it', async () => {
    const dir = await workspace('refused');
    const channel = await runAction(dir, { product: PRODUCT, version: '3.1.0', files: 'dist/*.zip', channel: 'beta' });
    assert.equal(channel.code, 1);
    assert.match(channel.stdout, /^::error::input `channel` expects one of stable, latest, got "beta"/m);
    const endpoint = await runAction(dir, { product: PRODUCT, version: '3.1.0', files: 'dist/*.zip', bucket: 'releases', endpoint: 'minio:9000' });
    assert.equal(endpoint.code, 1);
    assert.match(endpoint.stdout, /^::error::input `endpoint` expects an http or https URL, got "minio:9000"/m);
    assert.equal(existsSync(path.join(dir, 'releases', PRODUCT, '3.1.0.json')), false, 'deploy inputs are checked before the release is added');
    await writeFile(path.join(dir, 'dist', 'tool_3.1.0_linux_amd64.zip'), 'misnamed');
    const misnamed = await runAction(dir, { product: PRODUCT, version: '3.1.0', files: 'dist/tool_3.1.0_linux_amd64.zip' });
    assert.equal(misnamed.code, 1);
    assert.match(misnamed.stdout, /^::error file=releases\/agent-as-code\/3\.1\.0\.json::artifacts\[0\]\.filename: must start with `agent_as_code_3\.1\.0_linux_amd64\.`/m);
  });
});

/** $GITHUB_OUTPUT's `name<<DELIMITER` blocks. */
function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const block = /^([\w-]+)<<(\S+)\n([\s\S]*?)\n\2\n/gm;
  for (const match of text.matchAll(block)) outputs[match[1]!] = match[3]!;
  return outputs;
}
