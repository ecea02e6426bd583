// Commands that build and serve the site: build, serve, start (the sidecar with its API),
// migrate, token, nginx-conf, verify.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { resolvePaths } from '../../generator/config.ts';
import { nginxConfig } from '../../generator/publish/nginx.ts';
import { currentBuild } from '../../generator/publish/local-dir.ts';
import { build, type BuildReport } from '../../generator/pipeline.ts';
import { formatVerifyReport, verifyMirror } from '../../generator/verify.ts';
import { defaultStateFile } from '../../generator/verify/trust.ts';
import { keysDir, loadSigning } from '../../generator/trust/index.ts';
import { localIssuer } from '../../sidecar/auth/jwt.ts';
import { describeConfig, loadConfig, type Config } from '../../sidecar/config.ts';
import { createSidecar } from '../../sidecar/runtime.ts';
import { drainOnSignals, listen } from '../../sidecar/server.ts';
import { openDatabase } from '../../sidecar/store/db.ts';
import { migrate } from '../../sidecar/store/migrate.ts';
import { ensureSigningKey } from './trust-commands.ts';
import { UsageError, durationSeconds, listenOptions, parsePort, positiveInteger, releasesOption, required, type Command } from './command.ts';

export const siteCommands: Record<string, Command> = {
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
      printBuild(await build({ ...paths, signing: await loadSigning(paths.dataDir, process.env) }), paths.site);
      return 0;
    },
  },

  serve: {
    usage: `mirror serve [--site DIR] [--port N] [--host HOST]

Serves a built site with the route table (JSON and HTML indexes, artifacts from the blob store,
redirects, conditional and range requests) and the sidecar's API: uploads, JSON download
envelopes, the agent registry at /api/v1, /healthz, /readyz, /metrics; and the deployment-agent
fleet's HTTPS listener (FLEET_PORT, default 8443). Settings come from the environment (see the README);
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
      const created = await ensureSigningKey(config.dataDir);
      if (created) console.log(`created signing key ${created} in ${keysDir(config.dataDir)} (\`mirror keys list\`)`);
      printBuild(await build({ ...config, signing: await loadSigning(config.dataDir, config.settings) }), config.site);
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
      console.log(await issuer.mint(required(values, 'sub'), durationSeconds((values.ttl as string | undefined) ?? '1h', 'ttl'), (values.scope as string[] | undefined) ?? []));
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
    usage: `mirror verify --base-url URL [--keys FILE] [--state FILE] [--concurrency N] [--timeout SECONDS]

Crawls a mirror from its indexes, over HTTP only: downloads every artifact and checks its size
and sha256, checks every SHA256SUMS file, follows every download redirect and checks where it
lands. On a signed mirror it also checks the signed snapshot (/.well-known/mirror/snapshot.json):
its signatures, its expiry, its version against the last one seen here, every file it names
against its hash, and every SHA256SUMS file's OpenPGP signatures. Each problem is printed with
its kind: tampered, mix-and-match, rollback, freeze, unknown-key, retired-key, bad-signature,
missing. Exits 1 if there is any. Works against mirror serve, nginx or a CDN.

  --base-url URL        the mirror's origin, e.g. https://releases.example.com
  --keys FILE           the keys to trust: the publisher's OpenPGP public keys (pgp-keys.asc or
                        .gpg) or its JWKS (keys.json); without it, the mirror's published keys
                        are trusted on first use and remembered in the state file
  --state FILE          where the last snapshot seen and the trusted keys are kept (default
                        $XDG_STATE_HOME/mirror/verify/<origin>.json, or ~/.local/state/...)
  --concurrency N       downloads at a time (default 4)
  --timeout SECONDS     limit for each request, body included (default 300)
`,
    options: { 'base-url': { type: 'string' }, keys: { type: 'string' }, state: { type: 'string' }, concurrency: { type: 'string' }, timeout: { type: 'string' } },
    async run(values) {
      const timeoutMs = positiveInteger(values, 'timeout', 300) * 1000;
      const baseUrl = required(values, 'base-url');
      if (!URL.canParse(baseUrl) || !/^https?:$/.test(new URL(baseUrl).protocol)) throw new UsageError(`Expected \`--base-url\` to be an http or https URL, got \`${baseUrl}\``);
      const keysFile = values.keys as string | undefined;
      const keys = keysFile === undefined ? undefined : await readFile(keysFile).catch((error: NodeJS.ErrnoException) => {
        throw new UsageError(`Cannot read \`--keys\` ${keysFile}: ${error.code ?? error.message}`);
      });
      const report = await verifyMirror({
        baseUrl,
        concurrency: positiveInteger(values, 'concurrency', 4),
        fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
        trust: { keys, stateFile: (values.state as string | undefined) ?? defaultStateFile(baseUrl) },
      });
      console.log(formatVerifyReport(report).trimEnd());
      return report.problems.length > 0 ? 1 : 0;
    },
  },

};

export function printBuild(report: BuildReport, site: string): void {
  const { publish, timings } = report;
  console.log(
    `built ${plural(report.products, 'product')}, ${plural(report.releases, 'release')}: ${plural(report.files, 'site file')} (${publish.written} written, ${publish.linked} unchanged) and the route table → ${site}` +
      ` [${Object.entries(timings).map(([step, ms]) => `${step} ${ms} ms`).join(', ')}]`,
  );
  const { signing } = report;
  if (signing.keys === 0) console.log('unsigned: no signing key (`mirror keys create` makes one)');
  else {
    const snapshot = signing.snapshot ? `; snapshot version ${signing.snapshot.version}${signing.snapshot.resigned ? '' : ' (unchanged)'}, expires ${signing.snapshot.expires}` : '';
    console.log(`signed by ${signing.keys} key${signing.keys > 1 ? 's' : ''}: ${signing.signaturesMade} signatures made, ${signing.signaturesReused} reused${snapshot}`);
  }
  if (report.packageOriginDefault) console.log(`package files (install.sh, Homebrew, Scoop, apt, yum) point at ${report.packageOriginDefault}: set base_url in mirror.json for a deployed mirror`);
  if (report.cloudFrontProblem) console.warn(`warning: mirror deploy --distribution-id would refuse this site: ${report.cloudFrontProblem}`);
}

function plural(count: number, noun: string): string {
  return `${count.toLocaleString('en')} ${noun}${count === 1 ? '' : 's'}`;
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
  const fleet = await sidecar.fleet.listen(config.settings.FLEET_PORT, config.settings.HOST);
  console.log(`serving ${config.site} on ${running.url}`);
  console.log(`fleet API on ${fleet.url} (mutual TLS; \`mirror fleet ca\` prints the CA agents trust)`);
  drainOnSignals(running, (line) => console.log(line), async () => {
    await fleet.close();
    await sidecar.close();
  });
  await new Promise<void>((resolve) => running.server.once('close', resolve));
}
