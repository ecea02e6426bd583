// `npm run bench`: times a full build of 10,000 releases, rebuilds after adding one release, and
// file hashing against sha256sum; prints a Markdown table. Progress goes to stderr.
// Work files go under $TMPDIR (default /tmp): the build rows measure that file system as much as our code.
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, release, tmpdir, type } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchBuilds } from './build.ts';
import { benchHashing } from './hashing.ts';
import { markdownTable } from './table.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const work = await mkdtemp(path.join(tmpdir(), 'mirror-bench-'));
const progress = (line: string) => process.stderr.write(`bench: ${line}\n`);

try {
  const builds = await benchBuilds(work, repo, progress);
  const hashing = await benchHashing(work, repo, progress);
  console.log(`Machine: nproc ${availableParallelism()}, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, ${type()} ${release()}`);
  console.log(`Commands ran from ${repo} in ${work} (removed afterwards).\n`);
  console.log(markdownTable([...builds.rows, ...hashing]));
  console.log('\nBuild steps, from the CLI output:');
  for (const line of builds.steps) console.log(`- ${line}`);
} finally {
  await rm(work, { recursive: true, force: true });
}
