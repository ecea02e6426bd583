// nginx configuration that serves a built site without the sidecar, answering like it route by
// route. nginx serves the bytes (sendfile, HEAD, byte ranges); an njs module answers everything
// that needs the route table: negotiation, redirects, the contracts' error bodies, ETag checks.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { packagePath } from '../package-root.ts';
import Handlebars from 'handlebars';
import { CACHE_IMMUTABLE } from '../render/site-file.ts';
import { MANIFEST_FILE, PUBLIC_DIR, ROUTES_FILE, currentBuild, fileShardsIn } from './local-dir.ts';
import { FILE_SHARDS_DIR } from './file-shards.ts';
import { INTERNAL } from './nginx/locations.ts';
import { ROUTE_SHARDS_DIR, ROUTE_SHARD_INDEX } from './route-shards.ts';
import { bundleForNjs } from './njs-bundle.ts';

export interface NginxConfigOptions {
  /** The published site path (the symlink `mirror build` maintains); the config pins the build it points at now. */
  site: string;
  /** The blob store root (`.mirror/blobs`): artifacts are served from it, never copied. */
  blobs: string;
  /** `HOST:PORT` (or anything nginx's `listen` takes) the server listens on. */
  listen: string;
  /** The njs module; where Debian's `libnginx-mod-http-js` installs it by default. */
  jsModule?: string;
  /** nginx's `access_log`: a path (relative ones are under nginx's prefix), `syslog:…` or `off`; omitted, nginx's compiled-in log. */
  accessLog?: string;
  /** nginx's `error_log`: a path, `stderr` or `syslog:…`; omitted, nginx's compiled-in log. */
  errorLog?: string;
  /** nginx's `worker_processes`. */
  workers?: number | 'auto';
  /** The largest route table (routes.json) preloaded whole; a larger one, or a build without routes.json, is read a shard at a time. */
  preloadRoutesBytes?: number;
}

/**
 * A route table up to this size is preloaded into nginx whole, where a lookup costs nothing. A
 * larger one is read as the sidecar reads it: its small index preloaded, and the one or two shards
 * of about 50 KB a request needs read by the njs module (about 0.3 ms a request). At 100,000
 * releases routes.json was 217 MB: preloaded, nginx took 17 s to answer after a start (and as long
 * at each reload after a build) and held 1.5 GB. A build writes routes.json only for a table of up
 * to WHOLE_TABLE_MAX_PATHS (route-shards.ts), about this size; past it the shards alone are read.
 */
const PRELOAD_ROUTES_BYTES = 8 * 1024 * 1024;

export const DEBIAN_NJS_MODULE = '/usr/lib/nginx/modules/ngx_http_js_module.so';
const TEMPLATE = packagePath('templates', 'nginx', 'nginx.conf.hbs');
const NJS_ENTRY = packagePath('generator', 'publish', 'nginx', 'njs-handler.ts');

/**
 * Returns a complete nginx.conf for the site's current build. The njs module it imports is written
 * beside the site, to `<site>.nginx/mirror-<hash>.js`, named by its content so a running nginx
 * keeps its own copy while a new config is generated.
 */
export async function nginxConfig({ site, blobs, listen, jsModule = DEBIAN_NJS_MODULE, accessLog, errorLog, workers = 'auto', preloadRoutesBytes = PRELOAD_ROUTES_BYTES }: NginxConfigOptions): Promise<string> {
  const siteLink = path.resolve(site);
  const build = await currentBuild(siteLink);
  if (!build) throw new Error(`No site has been built at ${site}; run \`mirror build\` first`);
  if (!/^\S+$/.test(listen) || /[;{}"'$]/.test(listen)) throw new Error(`Expected --listen to be HOST:PORT, got \`${listen}\``);
  if (workers !== 'auto' && !(Number.isInteger(workers) && workers > 0)) throw new Error(`Expected workers to be a positive integer or \`auto\`, got \`${workers}\``);
  const logs = { accessLog: logTarget('--access-log', accessLog), errorLog: logTarget('--error-log', errorLog) };

  const script = await writeNjsModule(`${siteLink}.nginx`);
  const template = Handlebars.compile(await readFile(TEMPLATE, 'utf8'), { noEscape: true, strict: true });
  const file = (uri: string, root: string, maxRanges: number) => ({ uri, alias: `"${plain(root)}/$mirror_file"`, maxRanges });
  const publicDir = path.join(build, PUBLIC_DIR);
  const blobRoot = path.resolve(blobs);
  const routes = path.join(build, ROUTES_FILE);
  const shards = path.join(build, ROUTE_SHARDS_DIR);
  // A large table has no routes.json; a build made before the table was sharded has routes.json alone.
  const wholeBytes = (await stat(routes).catch(() => undefined))?.size;
  const sharded = (wholeBytes === undefined || wholeBytes > preloadRoutesBytes) && existsSync(path.join(shards, ROUTE_SHARD_INDEX));
  if (wholeBytes === undefined && !sharded) throw new Error(`The build ${build} has no route table (${ROUTES_FILE} or ${ROUTE_SHARDS_DIR}/${ROUTE_SHARD_INDEX})`);
  // With the table, the file facts are read a shard at a time where the build has them in shards.
  const factShards = sharded ? await fileShardsIn(build) : undefined;
  return template({
    site: plain(siteLink),
    build: plain(build),
    jsModule: quote(jsModule),
    script: quote(script),
    routes: sharded ? '' : quote(routes),
    routeIndex: sharded ? quote(path.join(shards, ROUTE_SHARD_INDEX)) : '',
    routeShards: sharded ? quote(shards) : '',
    manifest: quote(path.join(build, MANIFEST_FILE)),
    fileShards: factShards ?? '',
    fileShardsDir: factShards ? quote(path.join(build, FILE_SHARDS_DIR)) : '',
    listen,
    workers,
    ...logs,
    badRequest: INTERNAL.badRequest,
    notFound: INTERNAL.notFound,
    notAllowed: INTERNAL.notAllowed,
    files: [
      file(INTERNAL.site.ranged, publicDir, 1),
      file(INTERNAL.site.whole, publicDir, 0),
      file(INTERNAL.blob.ranged, blobRoot, 1),
      file(INTERNAL.blob.whole, blobRoot, 0),
    ],
  });
}

/** The njs module for Debian's njs 0.7.9, which takes only `export default <expression>`. */
export async function bundleNjsModule(): Promise<string> {
  const { code, exported } = await bundleForNjs({ entry: NJS_ENTRY, define: { CACHE_IMMUTABLE: JSON.stringify(CACHE_IMMUTABLE) }, external: ['fs'] });
  return `${code}\nexport default ${exported};\n`;
}

async function writeNjsModule(dir: string): Promise<string> {
  const source = await bundleNjsModule();
  const file = path.join(dir, `mirror-${createHash('sha256').update(source).digest('hex').slice(0, 16)}.js`);
  await mkdir(dir, { recursive: true });
  await writeFile(file, source);
  return file;
}

/** Why a value of `--access-log` or `--error-log` cannot go into the config: nginx strings cannot escape `$`, and a quote or control character would end the line. */
export function logTargetProblem(flag: string, value: string): string | undefined {
  if (value === '' || /["\\$\0-\x1f]/.test(value)) return `Expected \`${flag}\` to be a log path without \`"\`, \`\\\`, \`$\` or control characters, got \`${value}\``;
  return undefined;
}

/** A quoted log target, or '' (the template's "leave nginx's default"); nginx reads `"off"` and `"stderr"` as it reads them bare. */
function logTarget(flag: string, value: string | undefined): string {
  if (value === undefined) return '';
  const problem = logTargetProblem(flag, value);
  if (problem) throw new Error(problem);
  return `"${value}"`;
}

function quote(value: string): string {
  return `"${plain(value)}"`;
}

/** nginx strings cannot escape `$` (a variable), and quotes or control characters would end the line. */
function plain(value: string): string {
  if (/["\\$\0-\x1f]/.test(value)) throw new Error(`Expected a path without \`"\`, \`\\\`, \`$\` or control characters, got \`${value}\``);
  return value;
}
