#!/usr/bin/env node
// The `mirror` command from the TypeScript sources, through tsx: what the tests and `npm run dev`
// run. The installed bin is the compiled dist/mirror.js (scripts/build.js).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));
