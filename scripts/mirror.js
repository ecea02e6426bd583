#!/usr/bin/env node
// The `mirror` command: runs the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

// The AWS SDK announces that its releases after January 2027 need Node 22; the versions this
// package locks run on Node 20, so that notice only distracts from the command's own output.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const name = typeof rest[0] === 'object' ? rest[0]?.type : rest[0];
  if (String(warning).includes('NodeVersionSupportWarning') || name === 'NodeVersionSupportWarning') return;
  emitWarning(warning, ...rest);
};

register();
const { main } = await import('./cli.ts');
process.exitCode = await main(process.argv.slice(2));
