// nginx configuration that serves a built site without the sidecar, answering like it route by
// route. nginx serves the bytes (sendfile, HEAD, byte ranges); an njs module answers everything
// that needs the route table: negotiation, redirects, the contracts' error bodies, ETag checks.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { CACHE_IMMUTABLE } from '../render/site-file.ts';
import { MANIFEST_FILE, PUBLIC_DIR, ROUTES_FILE, currentBuild } from './local-dir.ts';
import { INTERNAL } from './nginx/locations.ts';
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
}

export const DEBIAN_NJS_MODULE = '/usr/lib/nginx/modules/ngx_http_js_module.so';
const TEMPLATE = fileURLToPath(new URL('../../templates/nginx/nginx.conf.hbs', import.meta.url));
const NJS_ENTRY = fileURLToPath(new URL('./nginx/njs-handler.ts', import.meta.url));

/**
 * Returns a complete nginx.conf for the site's current build. The njs module it imports is written
 * beside the site, to `<site>.nginx/mirror-<hash>.js`, named by its content so a running nginx
 * keeps its own copy while a new config is generated.
 */
export async function nginxConfig({ site, blobs, listen, jsModule = DEBIAN_NJS_MODULE }: NginxConfigOptions): Promise<string> {
  const siteLink = path.resolve(site);
  const build = await currentBuild(siteLink);
  if (!build) throw new Error(`No site has been built at ${site}; run \`mirror build\` first`);
  if (!/^\S+$/.test(listen) || /[;{}"'$]/.test(listen)) throw new Error(`Expected --listen to be HOST:PORT, got \`${listen}\``);

  const script = await writeNjsModule(`${siteLink}.nginx`);
  const template = Handlebars.compile(await readFile(TEMPLATE, 'utf8'), { noEscape: true, strict: true });
  const file = (uri: string, root: string, maxRanges: number) => ({ uri, alias: `"${plain(root)}/$mirror_file"`, maxRanges });
  const publicDir = path.join(build, PUBLIC_DIR);
  const blobRoot = path.resolve(blobs);
  return template({
    site: plain(siteLink),
    build: plain(build),
    jsModule: quote(jsModule),
    script: quote(script),
    routes: quote(path.join(build, ROUTES_FILE)),
    manifest: quote(path.join(build, MANIFEST_FILE)),
    listen,
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
  const { code, exported } = await bundleForNjs({ entry: NJS_ENTRY, define: { CACHE_IMMUTABLE: JSON.stringify(CACHE_IMMUTABLE) } });
  return `${code}\nexport default ${exported};\n`;
}

async function writeNjsModule(dir: string): Promise<string> {
  const source = await bundleNjsModule();
  const file = path.join(dir, `mirror-${createHash('sha256').update(source).digest('hex').slice(0, 16)}.js`);
  await mkdir(dir, { recursive: true });
  await writeFile(file, source);
  return file;
}

function quote(value: string): string {
  return `"${plain(value)}"`;
}

/** nginx strings cannot escape `$` (a variable), and quotes or control characters would end the line. */
function plain(value: string): string {
  if (/["\\$\0-\x1f]/.test(value)) throw new Error(`Expected a path without \`"\`, \`\\\`, \`$\` or control characters, got \`${value}\``);
  return value;
}
