// The `mirror` command line: usage errors as one line with exit status 2, subcommand listings,
// help generated from each command's declaration, deploy's missing-credentials message, and the
// compiled dist/ bin.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CHANNELS } from '../generator/model/catalog.ts';
import { OPERATOR_SCOPE } from '../sidecar/fleet/auth.ts';
import { isGroup, type CommandSpec, type GroupSpec } from '../scripts/cli/command.ts';
import { COMMANDS, OPERATOR_SCOPE_NAME } from '../scripts/cli/commands.ts';
import { REPO, SAMPLE_RELEASES, removeDir, runCli, tempDir, type CliResult } from './helpers/store.ts';

const execFileAsync = promisify(execFile);

/** Every command's words and declaration, e.g. `['fleet task create', spec]`. */
function leaves(group: GroupSpec, prefix = ''): [string, CommandSpec][] {
  return Object.entries(group.commands).flatMap(([name, spec]) => (isGroup(spec) ? leaves(spec, `${prefix}${name} `) : [[`${prefix}${name}`, spec] as [string, CommandSpec]]));
}

function assertOneLine(result: CliResult, code: number, pattern: RegExp): void {
  assert.equal(result.code, code, result.stderr);
  assert.equal(result.stderr.split('\n').length, 2, `one line: ${result.stderr}`);
  assert.match(result.stderr, pattern);
  assert.doesNotMatch(result.stderr, /ENOENT|Error:|\n\s+at /);
}

describe('mirror usage errors', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('mirror-cli-');
    await mkdir(path.join(dir, 'dist'));
    await writeFile(path.join(dir, 'tool_1.0.0_linux_amd64.zip'), 'zip');
  });
  after(() => removeDir(dir));

  test('each is one line naming the flag or file and the value received, with exit status 2', async () => {
    const cases: [string[], RegExp][] = [
      [['nginx-conf', '--listen', 'abc'], /^mirror nginx-conf: --listen expects HOST:PORT, got "abc" \(mirror nginx-conf --help lists the options\)$/m],
      [['verify', '--base-url', 'not-a-url'], /^mirror verify: --base-url expects an http or https URL, got "not-a-url"/],
      [['release', 'add', '--product', 'x', '--version', '1.0.0', path.join(dir, 'missing.zip')], new RegExp(`^mirror release add: ${path.join(dir, 'missing.zip')}: no such file`)],
      [['release', 'add', '--product', 'x', '--version', '1.0.0', path.join(dir, 'dist')], /^mirror release add: .*dist is a directory; name the artifact files in it/],
      [['release', 'add', '--product', 'x', '--version', '1.0.0', `${path.join(dir, 'tool_1.0.0_linux_amd64.zip')}#linux`], /^mirror release add: FILES expects FILE or FILE#PLATFORM\/ARCH, got ".*#linux"/],
      [['release', 'add', '--product', 'x', '--channel', 'beta', path.join(dir, 'tool_1.0.0_linux_amd64.zip')], /^mirror release add: --channel expects one of stable, latest, got "beta"/],
      [['build', '--bogus'], /^mirror build: unknown option --bogus \(mirror build --help lists the options\)$/m],
      [['bogus'], /^mirror: unknown command "bogus" \(mirror --help lists the commands\)$/m],
      [['token', 'revoke'], /^mirror token: unknown subcommand "revoke" \(mirror token --help lists the subcommands\)$/m],
      [['serve', '--port', '99999'], /^mirror serve: --port expects a port from 0 to 65535, got "99999"/],
      [['token', 'create', '--sub', 'me', '--ttl', '5 minutes'], /^mirror token create: --ttl expects a duration such as 30m, 1h or 7d, got "5 minutes"/],
      [['token', 'create'], /^mirror token create: --sub NAME is missing/],
      [['fleet', 'token', 'create', '--label', 'edge'], /^mirror fleet token create: --label expects KEY=VALUE, got "edge"/],
      [['fleet', 'task', 'cancel', 'agent-1'], /^mirror fleet task cancel: TASK_ID is missing/],
      [['keys', 'retire', 'A', 'B'], /^mirror keys retire: unexpected argument "B"/],
      [['deploy', '--bucket', 'b', '--invalidation-timeout', '0'], /^mirror deploy: --invalidation-timeout expects a positive integer, got "0"/],
      [['deploy', '--bucket'], /^mirror deploy: --bucket expects B, got nothing/],
      [['deploy', '--bucket', 'b', '--dry-run=yes'], /^mirror deploy: --dry-run takes no value, got "yes"/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args, { MIRROR_DATA_DIR: path.join(dir, 'data') })));
    results.forEach((result, index) => assertOneLine(result, 2, cases[index]![1]));
  });

  test('a group alone lists its subcommands with their summaries (exit 2); with --help on stdout (exit 0)', async () => {
    const [alone, help, fleetTask] = await Promise.all([runCli(['token']), runCli(['fleet', '--help']), runCli(['fleet', 'task'])]);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /^mirror token: name a subcommand$/m);
    assert.match(alone.stderr, /^ {2}create +prints a Bearer token for the upload API$/m);
    assert.doesNotMatch(alone.stderr, /Unknown action/);
    assert.equal(help.code, 0, help.stderr);
    for (const name of ['ca', 'token create', 'agents', 'task create', 'task cancel']) assert.match(help.stdout, new RegExp(`^ {2}${name} {2,}\\S`, 'm'));
    assert.equal(fleetTask.code, 2);
    assert.match(fleetTask.stderr, /^ {2}cancel +cancels a queued or running task/m);
  });

  test('mirror --help lists every command, and each command\'s --help every flag it accepts', async () => {
    const commands = leaves(COMMANDS);
    const [top, ...helps] = await Promise.all([runCli(['--help']), ...commands.map(([name]) => runCli([...name.split(' '), '--help']))]);
    assert.equal(top.code, 0);
    for (const [name, spec] of commands) assert.ok(top.stdout.includes(`  ${name}`) && top.stdout.includes(spec.summary.split(' ').slice(0, 3).join(' ')), `${name} in mirror --help`);
    assert.match(top.stdout, /status 2/);
    helps.forEach((help, index) => {
      const [name, spec] = commands[index]!;
      assert.equal(help.code, 0, `${name}: ${help.stderr}`);
      assert.match(help.stdout, new RegExp(`^Usage: mirror ${name}\\b`));
      for (const option of Object.keys(spec.options)) assert.match(help.stdout, new RegExp(`^ {2}--${option}\\b`, 'm'), `${name} --help lists --${option}`);
    });
    const byName = new Map(commands.map(([name], index) => [name, helps[index]!.stdout]));
    assert.match(byName.get('token create')!, /--scope S +a scope to grant; repeatable/);
    assert.match(byName.get('deploy')!, /--invalidation-timeout S +seconds to wait for the invalidation \(default 900\)/);
  });

  test('the declarations name what the code checks: channels and the fleet operator scope', () => {
    const add = (COMMANDS.commands.release as GroupSpec).commands.add as CommandSpec;
    for (const channel of CHANNELS) assert.equal(add.options.channel!.parse!(channel), channel);
    assert.throws(() => add.options.channel!.parse!('nightly'));
    assert.equal(OPERATOR_SCOPE_NAME, OPERATOR_SCOPE);
  });
});

describe('mirror deploy without AWS credentials', () => {
  let home: string;
  before(async () => {
    home = await tempDir('mirror-no-aws-');
  });
  after(() => removeDir(home));

  test('a dry run says in one line which credentials and permissions it needs, exit 1', async () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('AWS_')));
    const run = (args: string[]) =>
      execFileAsync(process.execPath, ['scripts/mirror.js', 'deploy', '--bucket', 'releases-example', '--region', 'us-east-1', '--releases', SAMPLE_RELEASES, '--dry-run', ...args], {
        cwd: REPO,
        env: { ...env, HOME: home, AWS_EC2_METADATA_DISABLED: 'true', MIRROR_DATA_DIR: path.join(home, 'data') },
        timeout: 60_000,
      }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
      );
    const [bucketOnly, withDistribution] = await Promise.all([run([]), run(['--distribution-id', 'E2EXAMPLE'])]);
    assertOneLine(bucketOnly, 1, /^mirror deploy --dry-run: no AWS credentials found \(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role\); even a dry run reads the bucket's deploy record and object list to plan, so it needs s3:ListBucket and s3:GetObject on releases-example; the README's IAM policy lists every permission$/m);
    assertOneLine(withDistribution, 1, /and with --distribution-id: cloudfront:GetDistributionConfig, cloudfront:DescribeFunction, cloudfront:GetFunction, cloudfront-keyvaluestore:DescribeKeyValueStore and ListKeys\)/);
    assert.doesNotMatch(bucketOnly.stderr + withDistribution.stderr, /CredentialsProviderError|Could not load credentials/);
  });
});

describe('the compiled bin (dist/, built by npm run build and npm\'s prepare)', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('mirror-dist-');
    await execFileAsync(process.execPath, ['scripts/build.js'], { cwd: REPO });
  });
  after(() => removeDir(dir));

  test('its entry loads no dependency at start: each command\'s code is a chunk imported when it runs', async () => {
    const meta = JSON.parse(await readFile(path.join(REPO, 'dist', 'meta.json'), 'utf8')) as { outputs: Record<string, { imports: { path: string; kind: string; external?: boolean }[] }> };
    const loaded = new Set<string>();
    const walk = (output: string) => {
      for (const { path: imported, kind, external } of meta.outputs[output]!.imports) {
        if (kind !== 'import-statement' || loaded.has(imported)) continue;
        loaded.add(imported);
        if (!external) walk(imported);
      }
    };
    // The entry imports the command table once it has turned on V8's compile cache; the table imports each command's code when it runs.
    const [table, ...others] = meta.outputs['dist/mirror.js']!.imports.filter((entry) => entry.kind === 'dynamic-import');
    assert.deepEqual(others, []);
    walk('dist/mirror.js');
    walk(table!.path);
    assert.deepEqual([...loaded].filter((name) => !name.startsWith('node:') && !name.startsWith('dist/')), []);
    const dynamic = meta.outputs[table!.path]!.imports.filter((entry) => entry.kind === 'dynamic-import');
    assert.ok(dynamic.length >= 6, 'the command modules are loaded on demand');
  });

  test('--help, a usage error and a build run from dist/mirror.js', async () => {
    const bin = path.join(REPO, 'dist', 'mirror.js');
    const help = await execFileAsync(process.execPath, [bin, '--help']);
    assert.match(help.stdout, /^ {2}nginx-conf {2,}prints an nginx.conf/m);
    const refused = await execFileAsync(process.execPath, [bin, 'nginx-conf', '--listen', 'abc']).then(() => assert.fail('accepted --listen abc'), (error: { code: number; stderr: string }) => error);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /^mirror nginx-conf: --listen expects HOST:PORT, got "abc"/);
    await cp(SAMPLE_RELEASES, path.join(dir, 'releases'), { recursive: true });
    // Run from elsewhere: templates/ is found from the package root, not the working directory.
    const built = await execFileAsync(process.execPath, [bin, 'build', '--releases', path.join(dir, 'releases'), '--out', path.join(dir, 'site')], { cwd: dir, env: { ...process.env, MIRROR_DATA_DIR: path.join(dir, 'data') } });
    assert.match(built.stdout, /^built 3 products, 10 releases: /);
    assert.match(await readFile(path.join(dir, 'site', 'public', 'index.html'), 'utf8'), /<html/);
  });
});
