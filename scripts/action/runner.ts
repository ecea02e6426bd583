// What the GitHub Actions runner hands a JavaScript action and reads back: inputs from `INPUT_*`
// variables, outputs and the job summary through the files it names, annotations and log groups as
// workflow commands on stdout. Written by hand rather than with @actions/core: these are four
// short documented formats, and that package would bring its HTTP client (for OIDC tokens, unused
// here) into a bundle that must stay small and install nothing.
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';

export interface RunnerEnv {
  [name: string]: string | undefined;
}

/** An input as the runner passes it: `INPUT_` and the name upper-cased, spaces as `_`, hyphens kept; trimmed. */
export function input(env: RunnerEnv, name: string): string {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

/** A boolean input, read as @actions/core's getBooleanInput reads it: YAML 1.2's core schema words only. */
export function booleanInput(env: RunnerEnv, name: string): boolean {
  const text = input(env, name);
  if (['true', 'True', 'TRUE'].includes(text)) return true;
  if (['false', 'False', 'FALSE', ''].includes(text)) return false;
  throw new Error(`Expected input \`${name}\` to be true or false, got \`${text}\``);
}

/** Words separated by spaces or new lines, as the composite action's shell split them. */
export function listInput(env: RunnerEnv, name: string): string[] {
  return input(env, name).split(/\s+/).filter(Boolean);
}

/** Appends `name<<delimiter` blocks to $GITHUB_OUTPUT, safe for values with new lines. */
export function setOutputs(env: RunnerEnv, outputs: Record<string, string>): void {
  const lines = Object.entries(outputs).map(([name, value]) => {
    const delimiter = `ghadelimiter_${randomUUID()}`;
    return `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
  });
  if (env.GITHUB_OUTPUT) appendFileSync(env.GITHUB_OUTPUT, lines.join(''));
  else for (const [name, value] of Object.entries(outputs)) console.log(`output ${name}: ${value}`);
}

export function appendSummary(env: RunnerEnv, markdown: string): void {
  if (env.GITHUB_STEP_SUMMARY) appendFileSync(env.GITHUB_STEP_SUMMARY, markdown);
}

/** `::error file=F::message`, shown on the run's page and, for a file in the repository, on that file. */
export function errorAnnotation(message: string, file?: string): void {
  const properties = file ? ` file=${escapeProperty(file)}` : '';
  process.stdout.write(`::error${properties}::${escapeData(message)}\n`);
}

/** Runs `run` with its log lines folded under `title`; the fold closes on failure too. */
export async function group<T>(title: string, run: () => Promise<T>): Promise<T> {
  process.stdout.write(`::group::${escapeData(title)}\n`);
  try {
    return await run();
  } finally {
    process.stdout.write('::endgroup::\n');
  }
}

function escapeData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}
