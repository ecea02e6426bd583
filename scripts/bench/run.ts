// Timing child processes: wall time of a whole command, as a user running it would see it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface Run {
  /** The command line as typed in a shell from the repository root. */
  command: string;
  ms: number;
  stdout: string;
}

/** Runs `argv` (a leading `node` is this Node binary) and measures its wall time; fails on a non-zero exit. */
export async function timed(argv: string[], cwd: string): Promise<Run> {
  const [program, ...args] = argv as [string, ...string[]];
  const started = performance.now();
  const { stdout } = await execFileAsync(program === 'node' ? process.execPath : program, args, { cwd, maxBuffer: 16 << 20 });
  return { command: argv.join(' '), ms: performance.now() - started, stdout };
}

/** Runs `times` times and keeps the fastest run; `run` gets the attempt number (1-based). */
export async function bestOf(times: number, run: (attempt: number) => Promise<Run>): Promise<Run> {
  let best: Run | undefined;
  for (let attempt = 1; attempt <= times; attempt++) {
    const result = await run(attempt);
    if (!best || result.ms < best.ms) best = result;
  }
  return best!;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
