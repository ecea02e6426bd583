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

/**
 * Runs `argv` (a leading `node` is this Node binary) and measures its wall time; fails on a non-zero exit.
 * `env` is added to this process's environment and shown in front of the command, as a shell would take it.
 */
export async function timed(argv: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  const [program, ...args] = argv as [string, ...string[]];
  // Flush dirty pages first, so writeback left by an earlier run is not billed to this one.
  await execFileAsync('sync');
  const started = performance.now();
  const { stdout } = await execFileAsync(program === 'node' ? process.execPath : program, args, { cwd, maxBuffer: 64 << 20, env: { ...process.env, ...env } });
  const prefix = Object.entries(env).map(([name, value]) => `${name}=${value} `).join('');
  return { command: prefix + argv.join(' '), ms: performance.now() - started, stdout };
}

export interface Best extends Run {
  /** Wall times of every attempt, in order: how noisy the machine was. */
  allMs: number[];
}

/** Runs `times` times and keeps the fastest run; `run` gets the attempt number (1-based). */
export async function bestOf(times: number, run: (attempt: number) => Promise<Run>): Promise<Best> {
  const runs: Run[] = [];
  for (let attempt = 1; attempt <= times; attempt++) runs.push(await run(attempt));
  return fastest(runs);
}

export function fastest(runs: Run[]): Best {
  const best = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
  return { ...best, allMs: runs.map((r) => r.ms) };
}

/** `12.34 s (runs 12.34, 13.10, 12.90)` */
export function bestSeconds(best: Best): string {
  return `${seconds(best.ms)} (runs ${best.allMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')})`;
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
