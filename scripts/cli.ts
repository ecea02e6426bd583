// The `mirror` CLI: argument parsing and output only; the work is done by generator/ and sidecar/.
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import cliProgress from 'cli-progress';
import { resolvePaths } from '../generator/config.ts';
import { LoadError } from '../generator/load/index.ts';
import { CHANNELS, type Channel } from '../generator/model/catalog.ts';
import { createCloudFrontTarget } from '../generator/publish/cloudfront/cloudfront-target.ts';
import { cloudFrontFunctionCode } from '../generator/publish/cloudfront/function-code.ts';
import { formatPlan, type DeployProgress } from '../generator/publish/deploy.ts';
import { nginxConfig } from '../generator/publish/nginx.ts';
import { createS3Target } from '../generator/publish/s3-target.ts';
import { build, deploy, type BuildReport } from '../generator/pipeline.ts';
import { readGoreleaserDist } from '../generator/goreleaser.ts';
import { formatVerifyReport, verifyMirror } from '../generator/verify.ts';
import { ReleaseConflictError, addRelease, type ArtifactInput } from '../generator/release-add.ts';
import { createFsBlobStore } from '../generator/stores/blob-fs.ts';
import { currentBuild } from '../generator/publish/local-dir.ts';
import { localIssuer } from '../sidecar/auth/jwt.ts';
import { describeConfig, loadConfig, type Config } from '../sidecar/config.ts';
import { createSidecar } from '../sidecar/runtime.ts';
import { drainOnSignals, listen } from '../sidecar/server.ts';
import { openDatabase } from '../sidecar/store/db.ts';
import { migrate } from '../sidecar/store/migrate.ts';

const { SingleBar, Presets } = cliProgress;
type SingleBar = InstanceType<typeof SingleBar>;

const USAGE = `mirror: build and serve a release distribution site

Usage:
  mirror build [--releases DIR] [--out DIR]
  mirror serve [--site DIR] [--port N] [--host HOST]
  mirror start [--releases DIR] [--port N] [--host HOST]
  mirror migrate
  mirror token create --sub NAME [--ttl DURATION]
  mirror release add --product P --version V [--channel C]... FILES...
  mirror deploy --bucket B [--prefix P] [--region R] [--endpoint URL]
                [--distribution-id ID] [--kvs-arn ARN] [--dry-run] [--no-delete]
  mirror cloudfront-function
  mirror verify --base-url URL [--concurrency N] [--timeout SECONDS]
  mirror nginx-conf [--site DIR] [--listen HOST:PORT]

Run \`mirror COMMAND --help\` for a command's options.
Environment: MIRROR_RELEASES (manifest store, default releases/), MIRROR_DATA_DIR (blobs, built
site and state, default .mirror/), PORT (default 8080), HOST (default 127.0.0.1); the sidecar's
settings (DATABASE_URL, REDIS_URL, AUTH_MODE, ...) are listed in the README and printed by
\`mirror serve\` at start.
`;

interface Command {
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  positionals?: boolean;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

const releasesOption = { releases: { type: 'string' } } as const;
const listenOptions = { port: { type: 'string' }, host: { type: 'string' } } as const;

const COMMANDS: Record<string, Command> = {
  build: {
    usage: `mirror build [--releases DIR] [--out DIR]

Validates the manifest store and publishes the rendered site to a local directory.
Only files that changed are written; the new build replaces the old one atomically.

  --releases DIR   manifest store (default $MIRROR_RELEASES or releases/)
  --out DIR        site path, a symlink to the current build (default $MIRROR_DATA_DIR/site)
`,
    options: { ...releasesOption, out: { type: 'string' } },
    async run(values) {
      const paths = resolvePaths({ releases: values.releases as string | undefined, out: values.out as string | undefined });
      printBuild(await build(paths), paths.site);
      return 0;
    },
  },

  serve: {
    usage: `mirror serve [--site DIR] [--port N] [--host HOST]

Serves a built site with the route table (JSON and HTML indexes, artifacts from the blob store,
redirects, conditional and range requests) and the sidecar's API: uploads, JSON download
envelopes, /healthz, /readyz, /metrics. Settings come from the environment (see the README);
they are printed at start with secrets hidden.

  --site DIR    site path written by \`mirror build\` (default $MIRROR_DATA_DIR/site)
  --port N      port (default $PORT or 8080)
  --host HOST   address to bind (default $HOST or 127.0.0.1)
`,
    options: { site: { type: 'string' }, ...listenOptions },
    async run(values) {
      const config = sidecarConfig(values);
      await serve(config);
      return 0;
    },
  },

  start: {
    usage: `mirror start [--releases DIR] [--port N] [--host HOST]

Builds the manifest store (the bundled sample by default) and serves it with the sidecar's API:
what \`npm start\` runs. The embedded SQLite state database is migrated at start.
`,
    options: { ...releasesOption, ...listenOptions },
    async run(values) {
      const config = sidecarConfig(values);
      printBuild(await build(config), config.site);
      await serve(config);
      return 0;
    },
  },

  migrate: {
    usage: `mirror migrate

Applies the state database's pending migrations: PostgreSQL when DATABASE_URL is set, otherwise
the SQLite file $MIRROR_DATA_DIR/state.db. Safe to run from several processes at once.
`,
    options: {},
    async run() {
      const config = loadConfig();
      const state = await openDatabase({ ...(config.settings.DATABASE_URL ? { url: config.settings.DATABASE_URL } : {}), file: config.databaseFile });
      try {
        const { applied } = await migrate(state);
        console.log(applied.length > 0 ? `applied ${applied.join(', ')}` : 'the state database is up to date');
      } finally {
        await state.close();
      }
      return 0;
    },
  },

  token: {
    usage: `mirror token create --sub NAME [--ttl DURATION] [--scope S]...

Prints a Bearer token for the upload API, signed by the sidecar's local issuer (AUTH_MODE=local;
the key is kept in $MIRROR_DATA_DIR/auth/). With AUTH_MODE=cognito, tokens come from Cognito.

  --sub NAME        who the token stands for (logged with each upload)
  --ttl DURATION    lifetime: 90s, 30m, 1h, 7d (default 1h)
  --scope S         a scope to grant; repeatable
`,
    options: { sub: { type: 'string' }, ttl: { type: 'string' }, scope: { type: 'string', multiple: true } },
    positionals: true,
    async run(values, positionals) {
      if (positionals.join(' ') !== 'create') throw new UsageError(`Unknown action \`${positionals.join(' ')}\`; expected \`token create\``);
      const config = loadConfig();
      if (config.settings.AUTH_MODE !== 'local') throw new UsageError('AUTH_MODE is cognito: tokens come from Cognito, not from mirror');
      const issuer = await localIssuer({ dir: config.authDir });
      console.log(await issuer.mint(required(values, 'sub'), durationSeconds((values.ttl as string | undefined) ?? '1h'), (values.scope as string[] | undefined) ?? []));
      return 0;
    },
  },

  deploy: {
    usage: `mirror deploy --bucket B [--prefix P] [--region R] [--endpoint URL]
              [--distribution-id ID] [--kvs-arn ARN] [--dry-run] [--no-delete]

Renders the manifest store and uploads the site and its artifacts to an S3 bucket: only objects
whose sha256 (kept in each object's metadata) changed, artifacts first, then indexes from the
deepest paths up, so no index ever names an object not yet uploaded. With a CloudFront
distribution, then: the route table into its KeyValueStore (by diff), its viewer-request function
(only when the code changed), and an invalidation of the changed files, waited for. Unreferenced
objects are deleted last. Credentials come from the standard AWS chain (environment, profile, role).

  --bucket B                bucket name
  --prefix P                key prefix inside the bucket (default: the bucket root)
  --region R                AWS region of the bucket (default: from the AWS configuration)
  --endpoint URL            S3-compatible endpoint, path-style (default $AWS_ENDPOINT_URL_S3)
  --distribution-id ID      CloudFront distribution serving the bucket (without it, CloudFront
                            steps are skipped)
  --kvs-arn ARN             its KeyValueStore (default: the one its viewer-request function reads)
  --invalidation-timeout S  seconds to wait for the invalidation (default 900)
  --dry-run                 print the plan (uploads with reasons, store keys, function,
                            invalidation paths, deletions) and change nothing
  --no-delete               keep objects the site no longer references
  --releases DIR            manifest store (default $MIRROR_RELEASES or releases/)
`,
    options: {
      ...releasesOption,
      bucket: { type: 'string' },
      prefix: { type: 'string' },
      region: { type: 'string' },
      endpoint: { type: 'string' },
      'distribution-id': { type: 'string' },
      'kvs-arn': { type: 'string' },
      'invalidation-timeout': { type: 'string' },
      'dry-run': { type: 'boolean' },
      'no-delete': { type: 'boolean' },
    },
    async run(values) {
      const paths = resolvePaths({ releases: values.releases as string | undefined });
      const target = await createS3Target({
        bucket: required(values, 'bucket'),
        prefix: values.prefix as string | undefined,
        region: values.region as string | undefined,
        endpoint: values.endpoint as string | undefined,
      });
      const distributionId = values['distribution-id'] as string | undefined;
      const kvsArn = values['kvs-arn'] as string | undefined;
      if (kvsArn && !distributionId) throw new UsageError('--kvs-arn needs --distribution-id: the store is read by that distribution\'s function');
      const edge = distributionId
        ? await createCloudFrontTarget({ distributionId, ...(kvsArn ? { kvsArn } : {}), invalidationTimeoutSeconds: positiveInteger(values, 'invalidation-timeout', 900) })
        : undefined;
      if (!edge) console.log('cloudfront: skipped, no --distribution-id given (routes, function and invalidation left alone)');
      const dryRun = values['dry-run'] === true;
      const progress = deployProgress();
      const { deploy: report, timings } = await deploy({
        releasesDir: paths.releasesDir,
        blobs: createFsBlobStore({ root: paths.blobsDir }),
        target,
        ...(edge ? { edge } : {}),
        dryRun,
        delete: values['no-delete'] !== true,
        onProgress: progress.update,
      });
      progress.stop();
      if (dryRun) {
        console.log(formatPlan(report, target.describe()));
        return 0;
      }
      console.log(`deployed to ${target.describe()}: ${report.uploaded} uploaded (${report.uploadedBytes} bytes), ${report.deleted} deleted, ${report.plan.unchanged} unchanged [${Object.entries(timings).map(([step, ms]) => `${step} ${ms} ms`).join(', ')}]`);
      if (edge && report.edge) {
        const { changes, edgeFunction, invalidate } = report.edge;
        console.log(`${edge.describe()}: ${changes.puts.length} route keys put, ${changes.deletes.length} deleted; function ${edgeFunction.name} ${edgeFunction.upToDate ? 'unchanged' : 'published'}; ${report.invalidation ? `invalidation ${report.invalidation} of ${invalidate.length} paths completed` : 'nothing to invalidate'}`);
      }
      return 0;
    },
  },

  'cloudfront-function': {
    usage: `mirror cloudfront-function

Prints the code of the CloudFront viewer-request function (runtime cloudfront-js-2.0) that
routes requests from the KeyValueStore \`mirror deploy --distribution-id\` fills. The code is
the same for every catalog; deploy publishes it when the distribution's function differs.
`,
    options: {},
    async run() {
      process.stdout.write(await cloudFrontFunctionCode());
      return 0;
    },
  },

  'nginx-conf': {
    usage: `mirror nginx-conf [--site DIR] [--listen HOST:PORT]

Prints an nginx.conf that serves a built site with the same routes as mirror serve: files and
artifacts (from the blob store, not copied), content negotiation, redirects, and the contracts'
400/404 bodies (through nginx's JavaScript module: apt-get install nginx libnginx-mod-http-js).
The config names the current build: write it again and reload nginx after each mirror build.
Its njs script is written next to the site, in <site>.nginx/.

  --site DIR            site path written by \`mirror build\` (default $MIRROR_DATA_DIR/site)
  --listen HOST:PORT    address nginx listens on (default 127.0.0.1:8080)
`,
    options: { site: { type: 'string' }, listen: { type: 'string' } },
    async run(values) {
      const paths = resolvePaths({ site: values.site as string | undefined });
      process.stdout.write(await nginxConfig({ site: paths.site, blobs: paths.blobsDir, listen: (values.listen as string | undefined) ?? '127.0.0.1:8080' }));
      return 0;
    },
  },

  verify: {
    usage: `mirror verify --base-url URL [--concurrency N] [--timeout SECONDS]

Crawls a mirror from its indexes, over HTTP only: downloads every artifact and checks its size
and sha256, checks every SHA256SUMS file, follows every download redirect and checks where it
lands. Prints each problem; exits 1 if there is any. Works against mirror serve, nginx or a CDN.

  --base-url URL        the mirror's origin, e.g. https://releases.example.com
  --concurrency N       downloads at a time (default 4)
  --timeout SECONDS     limit for each request, body included (default 300)
`,
    options: { 'base-url': { type: 'string' }, concurrency: { type: 'string' }, timeout: { type: 'string' } },
    async run(values) {
      const timeoutMs = positiveInteger(values, 'timeout', 300) * 1000;
      const report = await verifyMirror({
        baseUrl: required(values, 'base-url'),
        concurrency: positiveInteger(values, 'concurrency', 4),
        fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
      });
      console.log(formatVerifyReport(report).trimEnd());
      return report.problems.length > 0 ? 1 : 0;
    },
  },

  release: {
    usage: `mirror release add --product P [--version V] [options] [--goreleaser DIST] FILES...

Hashes each file, puts it in the blob store and writes releases/<product>/<version>.json.
Adding files to an existing release is allowed; replacing an artifact is refused.
A file's platform and architecture come from its name (tool_1.2.3_linux_amd64.zip) or are
given as FILE#PLATFORM/ARCH (ScalepadAgent-1.8.3.pkg#darwin/arm64).

  --product P          product directory in the manifest store
  --version V          semantic version, e.g. 1.12.2 or 1.13.0-beta.1
  --channel C          stable or latest, repeatable (default: stable and latest, prereleases latest only)
  --notes-url URL      release notes link
  --published-at ISO   publication time (default: now)
  --content-type T     content type for every file (default: from the extension)
  --goreleaser DIST    add the archives GoReleaser listed in DIST/artifacts.json, checked
                       against its checksums file; the version defaults to DIST/metadata.json's
  --releases DIR       manifest store (default $MIRROR_RELEASES or releases/)
`,
    options: {
      ...releasesOption,
      product: { type: 'string' },
      version: { type: 'string' },
      channel: { type: 'string', multiple: true },
      'notes-url': { type: 'string' },
      'published-at': { type: 'string' },
      'content-type': { type: 'string' },
      goreleaser: { type: 'string' },
    },
    positionals: true,
    async run(values, positionals) {
      const [action, ...files] = positionals;
      if (action !== 'add') throw new UsageError(`Unknown action \`${action ?? ''}\`; expected \`release add\``);
      const product = required(values, 'product');
      const dist = values.goreleaser === undefined ? undefined : await readGoreleaserDist(values.goreleaser as string);
      for (const line of dist?.skipped ?? []) console.log(`skipped ${line}`);
      const version = (values.version as string | undefined) ?? dist?.version ?? required(values, 'version');
      const channels = values.channel as string[] | undefined;
      for (const channel of channels ?? []) {
        if (!(CHANNELS as readonly string[]).includes(channel)) throw new UsageError(`Expected \`--channel\` to be one of ${CHANNELS.join(', ')}, got \`${channel}\``);
      }
      const publishedAt = (values['published-at'] as string | undefined) ?? new Date().toISOString();
      const paths = resolvePaths({ releases: values.releases as string | undefined });
      const result = await addRelease({
        releasesDir: paths.releasesDir,
        blobs: createFsBlobStore({ root: paths.blobsDir }),
        product,
        version,
        files: [...(dist?.files ?? []), ...files.map((file) => artifactInput(file, values['content-type'] as string | undefined))],
        publishedAt,
        channels: channels as Channel[] | undefined,
        notesUrl: values['notes-url'] as string | undefined,
      });
      console.log(`${result.created ? 'created' : 'updated'} ${result.file}`);
      for (const artifact of result.artifacts) console.log(`  ${artifact.sha256}  ${artifact.filename}  (${artifact.platform}/${artifact.arch}, ${artifact.size} bytes)`);
      return 0;
    },
  },
};

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`Unknown command \`${name}\`\n\n${USAGE}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: command.positionals ?? false,
      strict: true,
    });
    if (values.help) {
      process.stdout.write(command.usage);
      return 0;
    }
    return await command.run(values, positionals);
  } catch (error) {
    if (error instanceof LoadError || error instanceof ReleaseConflictError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(error as Error).message}\n\n${command.usage}`);
      return 2;
    }
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

function required(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`Missing \`--${name}\``);
  return value;
}

function positiveInteger(values: Record<string, unknown>, name: string, fallback: number): number {
  const value = values[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^[1-9][0-9]*$/.test(value)) throw new UsageError(`Expected \`--${name}\` to be a positive integer, got \`${String(value)}\``);
  return Number(value);
}

function artifactInput(spec: string, contentType: string | undefined): ArtifactInput {
  const hash = spec.lastIndexOf('#');
  if (hash === -1) return { path: spec, contentType };
  const [platform, arch] = spec.slice(hash + 1).split('/');
  if (!platform || !arch) throw new UsageError(`Expected FILE#PLATFORM/ARCH, got \`${spec}\``);
  return { path: spec.slice(0, hash), platform, arch, contentType };
}

function printBuild(report: BuildReport, site: string): void {
  const { publish, timings } = report;
  console.log(
    `built ${report.products} products, ${report.releases} releases: ${report.files} files (${publish.written} written, ${publish.linked} unchanged) → ${site}` +
      ` [${Object.entries(timings).map(([step, ms]) => `${step} ${ms} ms`).join(', ')}]`,
  );
  if (report.cloudFrontProblem) console.warn(`warning: mirror deploy --distribution-id would refuse this site: ${report.cloudFrontProblem}`);
}

/** The sidecar's settings, with the command's flags over the environment's. */
function sidecarConfig(values: Record<string, unknown>): Config {
  const flags: Record<string, string> = {};
  if (values.port !== undefined) flags.PORT = String(parsePort(values.port as string));
  if (values.host !== undefined) flags.HOST = values.host as string;
  if (values.releases !== undefined) flags.MIRROR_RELEASES = values.releases as string;
  const config = loadConfig({ ...process.env, ...flags });
  return values.site === undefined ? config : { ...config, site: path.resolve(values.site as string) };
}

async function serve(config: Config): Promise<void> {
  if (!(await currentBuild(config.site))) throw new Error(`No site has been built at ${config.site}; run \`mirror build\` first`);
  console.log(describeConfig(config).replace(/^/gm, 'config: '));
  const sidecar = await createSidecar(config, { migrateAtStart: !config.settings.DATABASE_URL });
  const running = await listen({ app: sidecar.app, port: config.settings.PORT, host: config.settings.HOST });
  console.log(`serving ${config.site} on ${running.url}`);
  drainOnSignals(running, (line) => console.log(line), () => sidecar.close());
  await new Promise<void>((resolve) => running.server.once('close', resolve));
}

/** `90s`, `30m`, `1h`, `7d`, or plain seconds. */
function durationSeconds(text: string): number {
  const match = /^([1-9][0-9]*)([smhd]?)$/.exec(text);
  if (!match) throw new UsageError(`Expected \`--ttl\` to be a duration such as 30m, 1h or 7d, got \`${text}\``);
  return Number(match[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
}

/** A live bar of objects and bytes on a terminal; a plain line every few seconds otherwise (CI logs). */
function deployProgress(): { update: (progress: DeployProgress) => void; stop: () => void } {
  if (process.stdout.isTTY) {
    let bar: SingleBar | undefined;
    return {
      update(progress) {
        bar ??= new SingleBar({ format: 'deploy [{bar}] {value}/{total} objects | {mib}/{totalMib} MiB | {step}', hideCursor: true }, Presets.shades_classic);
        if (!bar.isActive) bar.start(progress.totalObjects, 0, {});
        bar.update(progress.objects, { step: progress.step, mib: mib(progress.bytes), totalMib: mib(progress.totalBytes) });
      },
      stop: () => bar?.stop(),
    };
  }
  let last = 0;
  return {
    update(progress) {
      const now = Date.now();
      if (now - last < 5_000 && progress.objects < progress.totalObjects) return;
      last = now;
      console.log(`deploy: ${progress.objects}/${progress.totalObjects} objects, ${mib(progress.bytes)}/${mib(progress.totalBytes)} MiB, step ${progress.step}`);
    },
    stop: () => undefined,
  };
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new UsageError(`Expected a port from 0 to 65535, got \`${value}\``);
  return port;
}
