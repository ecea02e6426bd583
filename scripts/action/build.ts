// `npm run build:action`: bundles the GitHub Action (scripts/action/index.ts and all it imports,
// dependencies included) into action/index.js, the one file action.yml runs. The bundle is
// committed, so the action installs nothing; test/github-action.test.ts rebuilds it and fails when
// the committed one differs, so the build must be deterministic (no paths, dates or hashes of this
// machine). Nothing native is bundled: what would need it is left out (LEFT_OUT).
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';
import { cloudFrontFunctionCode } from '../../generator/publish/cloudfront/function-code.ts';

const root = path.dirname(path.dirname(path.dirname(fileURLToPath(import.meta.url))));

/** The bundle, relative to the repository root: what action.yml's `runs.main` names. */
export const ACTION_BUNDLE = 'action/index.js';
/** GitHub downloads the action's repository on every job; the bundle is most of it. */
export const ACTION_BUNDLE_LIMIT = 10 * 1024 * 1024;

/**
 * Left out of the bundle, each replaced by a module that throws when it is loaded: what adding a
 * release and deploying never load; test/github-action.test.ts runs both from the bundle alone.
 */
const LEFT_OUT: { filter: RegExp; why: string }[] = [
  // Native addons and database clients: the state database, the sidecar's locks and fan-out.
  { filter: /^(better-sqlite3|pg|ioredis)$/, why: 'it carries no native addon and opens no database' },
  // The CLI's other commands, which its command table imports lazily.
  { filter: /^\.\/(site|registry|fleet|trust)-commands\.ts$/, why: 'it runs `release add` and `deploy` only' },
];

export async function buildAction(outfile = path.join(root, ACTION_BUNDLE)): Promise<Metafile> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['scripts/action/index.ts'],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // The ES module builds of the AWS SDK and the rest, where packages have one.
    mainFields: ['module', 'main'],
    // CommonJS dependencies call require() for Node's modules; an ES module has none of its own.
    banner: { js: "import { createRequire as __actionRequire } from 'node:module';\nconst require = __actionRequire(import.meta.url);" },
    // Not minified: a change to one module changes a few lines of the committed file rather than
    // renaming throughout it, and stack traces read; 5 MB is well within the limit.
    legalComments: 'eof',
    metafile: true,
    plugins: [prebuilt(await cloudFrontFunctionCode()), leaveOut()],
    logLevel: 'warning',
  });
  return result.metafile;
}

/**
 * The CloudFront function's code is the same for every catalog; bundled at run time it would need
 * esbuild's native binary, so the action carries the code built here instead.
 */
function prebuilt(functionCode: string): Plugin {
  return {
    name: 'prebuilt-cloudfront-function',
    setup(plugin) {
      plugin.onResolve({ filter: /\/function-code\.ts$/ }, () => ({ path: 'cloudfront-function-code', namespace: 'prebuilt' }));
      plugin.onLoad({ filter: /.*/, namespace: 'prebuilt' }, () => ({
        contents: `export async function cloudFrontFunctionCode() { return ${JSON.stringify(functionCode)}; }`,
        loader: 'js',
      }));
    },
  };
}

/**
 * Replaces what LEFT_OUT names, and xz, which `release add` needs for a .deb whose control archive
 * is xz-compressed, with a module that says why it is missing. Any other native file fails the build.
 */
function leaveOut(): Plugin {
  const unavailable = (what: string, why: string) => `throw new Error(${JSON.stringify(`The GitHub Action cannot load ${what}: ${why}`)});`;
  return {
    name: 'leave-out',
    setup(plugin) {
      plugin.onResolve({ filter: /^@napi-rs\/lzma$/ }, () => ({ path: 'xz', namespace: 'left-out' }));
      for (const { filter, why } of LEFT_OUT) plugin.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'left-out', pluginData: why }));
      plugin.onLoad({ filter: /.*/, namespace: 'left-out' }, (args) => ({
        contents:
          args.path === 'xz'
            ? `export const xz = { decompress() { ${unavailable('xz', 'this .deb has an xz-compressed control archive and the action carries no native addon; build the package with a gzip or zstd control archive, or add it with the mirror CLI')} } };`
            : unavailable(args.path, args.pluginData as string),
        loader: 'js',
      }));
      plugin.onResolve({ filter: /\.node$/ }, (args) => ({ errors: [{ text: `The action must not load the native addon ${args.path} (imported by ${path.relative(root, args.importer)})` }] }));
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await buildAction();
  const { size } = await stat(path.join(root, ACTION_BUNDLE));
  console.log(`${ACTION_BUNDLE}: ${(size / 1024 / 1024).toFixed(2)} MB`);
}
