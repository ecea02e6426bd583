// GitHub Action rows: the action's own overhead, `node action/index.js` from a fresh copy of the
// repository's files (what the runner downloads for `uses:`, no node_modules) adding a release of two
// small artifacts without a deploy, against `node -e ''`; the bundle's size; and what the composite
// action it replaced spent before adding anything: `npm ci --omit=dev` in a fresh copy with an
// empty npm cache, as on a new runner (needs the npm registry; BENCH_ACTION_NPM_CI=0 skips it).
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ACTION_BUNDLE, ACTION_BUNDLE_LIMIT } from '../action/build.ts';
import { bestOf, bestSeconds, seconds, timed, type Best, type Run } from './run.ts';
import type { Row } from './table.ts';

const ATTEMPTS = 5;
const TARGET_MS = 5_000;
const PRODUCT = 'agent-as-code';

export async function benchAction(work: string, repo: string, progress: (line: string) => void): Promise<Row[]> {
  const clone = path.join(work, 'action-clone');
  progress('action: copying the repository\'s files as a clone has them');
  await copyClone(repo, clone);
  progress('action: release added by node action/index.js');
  const ours = await bestOf(ATTEMPTS, async (attempt) => addRelease(clone, path.join(work, `action-run-${attempt}`)));
  progress('action: node -e \'\'');
  const bare = await bestOf(ATTEMPTS, () => timed(['node', '-e', ''], work));
  const { size } = await stat(path.join(clone, ACTION_BUNDLE));
  const install = process.env.BENCH_ACTION_NPM_CI === '0' ? undefined : await npmCi(repo, path.join(work, 'npm-ci'), progress);
  const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;
  return [
    {
      measured: `GitHub Action: start to release added (2 artifacts, no deploy), fresh copy of the repository's files without node_modules; best of ${ATTEMPTS}`,
      ours: `${bestSeconds(ours)}; ${Math.round(ours.ms - bare.ms)} ms more than \`node -e ''\``,
      reference: `\`node -e ''\`: ${bestSeconds(bare)}`,
      target: `< ${seconds(TARGET_MS)}`,
      met: ours.ms < TARGET_MS,
      ourCommand: 'INPUT_PRODUCT=… INPUT_VERSION=… INPUT_FILES=… GITHUB_OUTPUT=… RUNNER_TEMP=… node action/index.js',
      referenceCommand: 'node -e \'\'',
    },
    {
      measured: 'GitHub Action: install step before a file is added, fresh copy, empty npm cache',
      ours: 'none: the bundle is committed, the job\'s Node runs it',
      reference: install ? `composite action: ${installSummary(install)}` : 'composite action: not run (BENCH_ACTION_NPM_CI=0)',
      target: '—',
      ourCommand: 'node action/index.js',
      referenceCommand: install?.command ?? 'npm ci --omit=dev --no-audit --no-fund',
    },
    {
      measured: 'GitHub Action: what the job downloads and installs to run it',
      ours: `${ACTION_BUNDLE}: ${mb(size)}`,
      reference: install ? `composite action's node_modules: ${mb(install.bytes)}, ${install.packages} packages` : '—',
      target: `< ${mb(ACTION_BUNDLE_LIMIT)}`,
      met: size < ACTION_BUNDLE_LIMIT,
      ourCommand: `npm run build:action; ls -l ${ACTION_BUNDLE}`,
      referenceCommand: install ? 'du -sb node_modules' : undefined,
    },
  ];
}

/** The files a clone of the working tree once committed would have: tracked and new ones, not ignored ones. */
async function copyClone(repo: string, dest: string): Promise<void> {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repo, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const file of files) await cp(path.join(repo, file), path.join(dest, file)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** One run in a fresh workspace: the sample's product, two artifacts, the runner's variables. */
async function addRelease(clone: string, workspace: string): Promise<Run> {
  await mkdir(path.join(workspace, 'releases', PRODUCT), { recursive: true });
  await cp(path.join(clone, 'releases', 'mirror.json'), path.join(workspace, 'releases', 'mirror.json'));
  await cp(path.join(clone, 'releases', PRODUCT, 'product.json'), path.join(workspace, 'releases', PRODUCT, 'product.json'));
  await mkdir(path.join(workspace, 'dist'));
  for (const target of ['linux_amd64.tar.gz', 'darwin_arm64.zip']) await writeFile(path.join(workspace, 'dist', `agent_as_code_9.9.9_${target}`), `build for ${target}`);
  await mkdir(path.join(workspace, 'runner-temp'));
  await writeFile(path.join(workspace, 'runner-temp', 'output'), '');
  const run = await timed(['node', path.join(clone, ACTION_BUNDLE)], workspace, {
    'INPUT_PRODUCT': PRODUCT,
    'INPUT_VERSION': '9.9.9',
    'INPUT_FILES': 'dist/*',
    'INPUT_RELEASES': 'releases',
    'INPUT_DRY-RUN': 'false',
    GITHUB_OUTPUT: path.join(workspace, 'runner-temp', 'output'),
    GITHUB_STEP_SUMMARY: path.join(workspace, 'runner-temp', 'summary'),
    GITHUB_WORKSPACE: workspace,
    RUNNER_TEMP: path.join(workspace, 'runner-temp'),
  });
  if (!run.stdout.includes(`created ${path.join(workspace, 'releases', PRODUCT, '9.9.9.json')}`)) throw new Error(`The action did not add the release: ${run.stdout}`);
  return run;
}

interface Install extends Best {
  bytes: number;
  packages: number;
}

/** The composite action's install step, once: minutes, so not repeated. */
async function npmCi(repo: string, dir: string, progress: (line: string) => void): Promise<Install> {
  progress('action: npm ci --omit=dev in a fresh copy with an empty cache (the composite action\'s install step)');
  await copyClone(repo, dir);
  const run = await timed(['npm', 'ci', '--omit=dev', '--no-audit', '--no-fund', '--cache', path.join(dir, '..', 'npm-ci-cache')], dir);
  const bytes = Number(execFileSync('du', ['-sb', 'node_modules'], { cwd: dir, encoding: 'utf8' }).split('\t')[0]);
  // npm's record of what it installed: one key per package folder.
  const installed = JSON.parse(await readFile(path.join(dir, 'node_modules', '.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
  const packages = Object.keys(installed.packages).filter((key) => key.startsWith('node_modules/')).length;
  return { ...run, allMs: [run.ms], bytes, packages };
}

function installSummary(install: Install): string {
  return `\`npm ci --omit=dev\` ${seconds(install.ms)}, ${(install.bytes / 1024 / 1024).toFixed(0)} MB of node_modules, ${install.packages} packages`;
}
