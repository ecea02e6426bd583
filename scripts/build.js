// Compiles the CLI to dist/ (`npm run build`; npm's `prepare` runs it on install and pack), so the
// `mirror` bin starts without compiling TypeScript. The command table is in the entry; each
// command's implementation is its own chunk, loaded when the command runs. dist/build-worker.js is
// the sidecar's build thread, a second entry sharing those chunks. Dependencies stay in
// node_modules. dist/meta.json is esbuild's metafile: test/cli.test.ts reads it to check what the
// entry loads.
import { chmod, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const outdir = path.join(root, 'dist');

await rm(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { mirror: 'scripts/bin.ts', 'build-worker': 'sidecar/build-worker.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
});
await writeFile(path.join(outdir, 'meta.json'), JSON.stringify(result.metafile));
await chmod(path.join(outdir, 'mirror.js'), 0o755);
