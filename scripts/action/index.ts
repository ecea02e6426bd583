// The GitHub Action (action.yml, `runs.using: node24`): adds a release to the workflow's manifest
// store, then, given a bucket, deploys the site. It runs the CLI's own `release add` and `deploy`,
// their inputs checked against the commands' declarations (scripts/cli/commands.ts). Bundled with
// everything it imports into action/index.js by scripts/action/build.ts: no install, no native
// addon, and the job's Node left as it is.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fg from 'fast-glob';
import { LoadError, loadCatalog } from '../../generator/load/index.ts';
import { loadTemplates } from '../../generator/load/templates.ts';
import type { Artifact } from '../../generator/model/catalog.ts';
import type { DeployReport } from '../../generator/publish/deploy.ts';
import { renderAgentProduct } from '../../generator/render/agent.ts';
import { renderBinaryProduct } from '../../generator/render/binary.ts';
import { createPageRenderer } from '../../generator/render/html.ts';
import type { Locks } from '../../generator/stores/locks.ts';
import { UsageError, isGroup, type CommandSpec } from '../cli/command.ts';
import { COMMANDS } from '../cli/commands.ts';
import { deployFrom } from '../cli/deploy-commands.ts';
import { parseCommand } from '../cli/parse.ts';
import { addReleaseFrom, type AddedRelease } from '../cli/release-commands.ts';
import { appendSummary, booleanInput, errorAnnotation, group, input, listInput, setOutputs, type RunnerEnv } from './runner.ts';

/** Where the CLI's flags come from: each action input of the same name, except these. */
const INPUT_OF_FLAG: Record<string, string> = { goreleaser: 'goreleaser-dist', FILES: 'files' };

/** A `files` entry that names no file; annotated on that path. */
class MissingFileError extends Error {
  constructor(readonly file: string) {
    super(`${file}: no such file (input \`files\`)`);
  }
}

async function runAction(env: RunnerEnv): Promise<void> {
  // The data directory holds the new release's blobs until the deploy uploads them: the job's, not the repository's.
  env.MIRROR_DATA_DIR ||= path.join(env.RUNNER_TEMP || tmpdir(), 'mirror');
  if (input(env, 'signing-key')) env.MIRROR_SIGNING_KEY = input(env, 'signing-key');
  if (input(env, 'signing-key-passphrase')) env.MIRROR_SIGNING_KEY_PASSPHRASE = input(env, 'signing-key-passphrase');
  const releases = flag('releases', input(env, 'releases'));

  // Every input is checked before anything is written.
  const bucket = input(env, 'bucket');
  const dryRun = booleanInput(env, 'dry-run');
  const deployArgs = bucket
    ? parsed('deploy', [
        ...flag('bucket', bucket),
        ...flag('prefix', input(env, 'prefix')),
        ...flag('region', input(env, 'region')),
        ...flag('endpoint', input(env, 'endpoint')),
        ...flag('distribution-id', input(env, 'distribution-id')),
        ...flag('kvs-arn', input(env, 'kvs-arn')),
        ...(dryRun ? ['--dry-run'] : []),
        ...releases,
      ])
    : undefined;
  const releaseArgs = parsed('release add', [
    ...flag('product', input(env, 'product')),
    ...flag('version', input(env, 'version')),
    ...flag('goreleaser', input(env, 'goreleaser-dist')),
    ...flag('notes-url', input(env, 'notes-url')),
    ...listInput(env, 'channel').flatMap((channel) => flag('channel', channel)),
    ...releases,
    '--',
    ...(await expandFiles(listInput(env, 'files'))),
  ]);

  const added = await addReleaseFrom(...releaseArgs, jobLocks());
  const artifacts = await releasedArtifacts(added);
  const deployed = deployArgs
    ? await group(`Deploy ${added.product} ${added.version} to s3://${bucket}/${input(env, 'prefix')}${dryRun ? ' (dry run)' : ''}`, () => deployFrom(deployArgs[0]))
    : undefined;
  const written = writtenObjects(deployed);
  setOutputs(env, {
    version: added.version,
    product: added.product,
    'download-urls': JSON.stringify(Object.fromEntries(artifacts.map(({ artifact, url }) => [`${artifact.platform}/${artifact.arch}`, url]))),
    'files-changed': String(written.siteFiles),
  });
  appendSummary(env, summary(added, artifacts, bucket ? { target: `s3://${bucket}/${input(env, 'prefix')}`, dryRun, ...written, deleted: deployed?.deleted ?? 0 } : undefined));
}

/** Reports a failure as annotations: one per manifest problem, on its file; the rest as one line. */
function reportFailure(error: unknown, workspace: string): void {
  if (error instanceof LoadError) {
    for (const problem of error.problems) errorAnnotation(problem.path ? `${problem.path}: ${problem.message}` : problem.message, path.relative(workspace, path.resolve(problem.file)));
  } else if (error instanceof MissingFileError) {
    errorAnnotation(error.message, error.file);
  } else if (error instanceof UsageError) {
    errorAnnotation(inInputTerms(error.message));
  } else {
    errorAnnotation(error instanceof Error ? error.message : String(error));
  }
}

/**
 * Writers of one version take turns within this process. The job is the only writer of its
 * checkout (its steps run one at a time), so no lock file, and no native SQLite to hold one, is needed.
 */
function jobLocks(): Locks {
  const turns = new Map<string, Promise<unknown>>();
  return {
    where: 'the job',
    withLock(name, section) {
      const turn = (turns.get(name) ?? Promise.resolve()).then(section, section);
      turns.set(name, turn.catch(() => undefined));
      return turn;
    },
  };
}

function flag(name: string, value: string): string[] {
  return value ? [`--${name}`, value] : [];
}

/** The command's arguments checked against its declaration, as the CLI checks them. */
function parsed(command: string, args: string[]): [Record<string, unknown>, string[]] {
  let spec = COMMANDS.commands[command.split(' ')[0]!]!;
  for (const word of command.split(' ').slice(1)) if (isGroup(spec)) spec = spec.commands[word]!;
  const { values, positionals } = parseCommand(spec as CommandSpec, args);
  return [values, positionals];
}

/** "--version V is missing" becomes "input `version` is missing": the workflow's author wrote inputs, not flags. */
function inInputTerms(message: string): string {
  return message.replace(/(?:--([a-z-]+)(?: [A-Z]+\b)?|\bFILES\b)/g, (name, flagName?: string) => `input \`${INPUT_OF_FLAG[flagName ?? name] ?? flagName}\``);
}

/** `files` entries: globs expand in the workspace as the shell expanded them; `#PLATFORM/ARCH` stays on each match. */
async function expandFiles(specs: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const spec of specs) {
    const hash = spec.lastIndexOf('#');
    const [pattern, target] = hash === -1 ? [spec, ''] : [spec.slice(0, hash), spec.slice(hash)];
    if (!fg.isDynamicPattern(pattern)) {
      if (!existsSync(pattern)) throw new MissingFileError(pattern);
      files.push(spec);
      continue;
    }
    const matches = (await fg(pattern, { onlyFiles: true })).sort();
    if (matches.length === 0) throw new Error(`input \`files\`: \`${pattern}\` matched no file`);
    files.push(...matches.map((match) => `${match}${target}`));
  }
  return files;
}

interface ReleasedArtifact {
  artifact: Artifact;
  /** The site's address for it: absolute with mirror.json's base_url, a path on the site without. */
  url: string;
}

/** Every artifact of the release with its download address, read from the product's own route table. */
async function releasedArtifacts(added: AddedRelease): Promise<ReleasedArtifact[]> {
  const catalog = await loadCatalog(path.dirname(path.dirname(added.file)));
  const product = catalog.products.find((candidate) => candidate.name === added.product)!;
  const release = product.releases.find((candidate) => candidate.version === added.version)!;
  const pages = createPageRenderer(await loadTemplates(), catalog.site.title);
  const { paths } = product.layout === 'binary' ? renderBinaryProduct(product, pages) : renderAgentProduct(product, catalog.site.baseUrl, pages);
  const routeOf = new Map(Object.entries(paths).flatMap(([route, target]) => (target.type === 'blob' ? [[target.blob, route] as const] : [])));
  // An archive, a .deb and an .rpm may share a platform and architecture: listed last, the archive
  // is the one `download-urls` keeps for that key.
  const packaged = (artifact: Artifact) => artifact.format === 'deb' || artifact.format === 'rpm';
  return [...release.artifacts.filter(packaged), ...release.artifacts.filter((artifact) => !packaged(artifact))]
    .filter((artifact) => routeOf.has(artifact.blob))
    .map((artifact) => ({ artifact, url: `${catalog.site.baseUrl}${routeOf.get(artifact.blob)!}` }));
}

/** Objects the deploy wrote (or, on a dry run, would write): rendered site files and artifacts. */
function writtenObjects(report: DeployReport | undefined): { siteFiles: number; artifacts: number } {
  const puts = report?.plan.steps.flatMap((step) => step.puts) ?? [];
  const siteFiles = puts.filter((put) => put.object.source.type === 'body').length;
  return { siteFiles, artifacts: puts.length - siteFiles };
}

interface DeploySummary {
  target: string;
  dryRun: boolean;
  siteFiles: number;
  artifacts: number;
  deleted: number;
}

/** The job summary: what was released, with links when the site has an origin. */
function summary(added: AddedRelease, artifacts: ReleasedArtifact[], deploy: DeploySummary | undefined): string {
  const cell = (text: string) => text.replace(/\|/g, '\\|');
  const link = ({ artifact, url }: ReleasedArtifact) => (/^https?:\/\//.test(url) ? `[${cell(artifact.filename)}](${encodeURI(url)})` : `${cell(artifact.filename)} (\`${cell(url)}\`)`);
  const rows = [...artifacts]
    .sort((a, b) => a.artifact.filename.localeCompare(b.artifact.filename))
    .map((entry) => `| ${entry.artifact.platform}/${entry.artifact.arch} | ${link(entry)} | ${entry.artifact.size.toLocaleString('en')} bytes | \`${entry.artifact.sha256.slice(0, 12)}…\` |`);
  const lines = [
    `### ${cell(added.product)} ${added.version} ${added.created ? 'released' : 'updated'}`,
    '',
    '| Platform | File | Size | SHA-256 |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ];
  if (deploy) {
    const verb = deploy.dryRun ? 'Dry run against' : 'Deployed to';
    const would = deploy.dryRun ? 'would write' : 'wrote';
    lines.push(`${verb} \`${deploy.target}\`: ${would} ${deploy.siteFiles} site files and ${deploy.artifacts} artifacts${deploy.dryRun ? '' : `, deleted ${deploy.deleted} objects`}.`, '');
  } else {
    lines.push('Not deployed: the `bucket` input is empty.', '');
  }
  return `${lines.join('\n')}\n`;
}

const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
process.exitCode = await runAction(process.env).then(
  () => 0,
  (error: unknown) => {
    reportFailure(error, workspace);
    return 1;
  },
);
