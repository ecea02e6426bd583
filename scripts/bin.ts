#!/usr/bin/env node
// The `mirror` command as installed: compiled to dist/mirror.js by scripts/build.js. From a
// checkout, scripts/mirror.js runs the same CLI from the TypeScript sources through tsx.
import { main } from './cli.ts';

process.exitCode = await main(process.argv.slice(2));
