// Commands that build and serve the site: build, serve, start (the sidecar with its API),
// migrate, token create, nginx-conf, verify. Their options are declared in commands.ts.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { seedFromSample } from '../../generator/sample-store.ts';
import { resolvePaths } from '../../generator/config.ts';
import { logTargetProblem, nginxConfig } from '../../generator/publish/nginx.ts';
import { currentBuild } from '../../generator/publish/local-dir.ts';
import { build as buildSite, type BuildReport } from '../../generator/pipeline.ts';
import { formatVerifyReport, verifyMirror } from '../../generator/verify.ts';
import { defaultStateFile } from '../../generator/verify/trust.ts';
import { keysDir, loadSigning } from '../../generator/trust/index.ts';
import { localIssuer } from '../../sidecar/auth/jwt.ts';
import { describeConfig, loadConfig, type Config } from '../../sidecar/config.ts';
import { createSidecar } from '../../sidecar/runtime.ts';
import { drainOnSignals, listen } from '../../sidecar/server.ts';
import { openDatabase } from '../../sidecar/store/db.ts';
import { migrate as migrateDatabase } from '../../sidecar/store/migrate.ts';
import { boundHeapGrowth } from './heap.ts';
import { ensureSigningKey } from './trust-commands.ts';
import { UsageError } from './command.ts';

type Values = Record<string, unknown>;

export async function build(values: Values): Promise<number> {
  const paths = resolvePaths({ releases: values.releases as string | undefined, out: values.out as string | undefined });
  boundHeapGrowth();
  printBuild(await buildSite({ ...paths, signing: await loadSigning(paths.dataDir, process.env) }), paths.site);
  return 0;
}

export async function serve(values: Values): Promise<number> {
  await serveSite(sidecarConfig(values));
  return 0;
}

export async function start(values: Values): Promise<number> {
  const config = sidecarConfig(values);
  if (await seedFromSample(config.releasesDir, config.blobsDir)) console.log(`copied the bundled sample store into ${config.releasesDir}`);
  const created = await ensureSigningKey(config.dataDir);
  if (created) console.log(`created signing key ${created} in ${keysDir(config.dataDir)} (\`mirror keys list\`)`);
  printBuild(await buildSite({ ...config, signing: await loadSigning(config.dataDir, config.settings) }), config.site);
  await serveSite(config);
  return 0;
}

export async function migrate(): Promise<number> {
  const config = loadConfig();
  const state = await openDatabase({ ...(config.settings.DATABASE_URL ? { url: config.settings.DATABASE_URL } : {}), file: config.databaseFile });
  try {
    const { applied } = await migrateDatabase(state);
    console.log(applied.length > 0 ? `applied ${applied.join(', ')}` : 'the state database is up to date');
  } finally {
    await state.close();
  }
  return 0;
}

export async function tokenCreate(values: Values): Promise<number> {
  const config = loadConfig();
  if (config.settings.AUTH_MODE !== 'local') throw new Error('AUTH_MODE is cognito: tokens come from Cognito, not from mirror');
  const issuer = await localIssuer({ dir: config.authDir });
  console.log(await issuer.mint(values.sub as string, values.ttl as number, (values.scope as string[] | undefined) ?? []));
  return 0;
}

export async function nginxConf(values: Values): Promise<number> {
  const paths = resolvePaths({ site: values.site as string | undefined });
  const [accessLog, errorLog] = (['access-log', 'error-log'] as const).map((flag) => {
    const value = values[flag] as string | undefined;
    const problem = value === undefined ? undefined : logTargetProblem(`--${flag}`, value);
    if (problem) throw new UsageError(problem);
    return value;
  });
  process.stdout.write(await nginxConfig({ site: paths.site, blobs: paths.blobsDir, listen: values.listen as string, accessLog, errorLog }));
  return 0;
}

export async function verify(values: Values): Promise<number> {
  const timeoutMs = (values.timeout as number) * 1000;
  const baseUrl = values['base-url'] as string;
  const keysFile = values.keys as string | undefined;
  const keys = keysFile === undefined ? undefined : await readFile(keysFile).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`--keys ${keysFile}: ${error.code === 'ENOENT' ? 'no such file' : error.code === 'EISDIR' ? 'a directory, not a key file' : error.message}`);
  });
  const report = await verifyMirror({
    baseUrl,
    concurrency: values.concurrency as number,
    fetch: (input, init) => fetch(input, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
    trust: { keys, stateFile: (values.state as string | undefined) ?? defaultStateFile(baseUrl) },
  });
  console.log(formatVerifyReport(report).trimEnd());
  return report.problems.length > 0 ? 1 : 0;
}

export function printBuild(report: BuildReport, site: string): void {
  const { publish, timings } = report;
  console.log(
    `built ${plural(report.products, 'product')}, ${plural(report.releases, 'release')}: ${plural(report.files, 'site file')} (${publish.written} written, ${publish.unchanged} unchanged) and the route table → ${site}` +
      ` [${Object.entries(timings).map(([step, ms]) => `${step} ${ms} ms`).join(', ')}]`,
  );
  const { load } = report;
  const cached = load.read.release < load.files.release || load.read.settings < load.files.settings;
  const of = (read: number, files: number, noun: string) => (cached ? `${read.toLocaleString('en')} of ${plural(files, noun)}` : plural(files, noun));
  console.log(`read ${of(load.read.release, load.files.release, 'release file')} and ${of(load.read.settings, load.files.settings, 'settings file')}${cached ? '; the load cache had the rest' : ''}`);
  const { units } = report;
  if (units && units.rendered < units.units) console.log(`rendered ${units.rendered.toLocaleString('en')} of ${plural(units.units, 'unit')}; the render memo had the rest`);
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
function sidecarConfig(values: Values): Config {
  const flags: Record<string, string> = {};
  if (values.port !== undefined) flags.PORT = String(values.port);
  if (values.host !== undefined) flags.HOST = values.host as string;
  if (values.releases !== undefined) flags.MIRROR_RELEASES = values.releases as string;
  const config = loadConfig({ ...process.env, ...flags });
  return values.site === undefined ? config : { ...config, site: path.resolve(values.site as string) };
}

async function serveSite(config: Config): Promise<void> {
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
