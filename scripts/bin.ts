#!/usr/bin/env node
// The `mirror` command as installed: compiled to dist/mirror.js by scripts/build.js. From a
// checkout, scripts/mirror.js runs the same CLI from the TypeScript sources through tsx.
import module from 'node:module';

// V8 keeps the code it compiles for the CLI's modules on disk (in the OS's temporary folder), so
// the next run starts without compiling them again; before they are imported, hence the import below.
// (Node 22.1 and later; this project's @types/node is 20's, which lacks it.)
(module as typeof module & { enableCompileCache(): unknown }).enableCompileCache();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));
