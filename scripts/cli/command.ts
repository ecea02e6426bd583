// How a command is declared: its summary, description, positionals and options, each option with
// its value name, help, default and parser. `--help` and validation both come from this one
// declaration (scripts/cli/parse.ts). Nothing here may import a command's implementation.

/** What a command's implementation receives: parsed option values and positionals. */
export type Run = (values: Record<string, unknown>, positionals: string[]) => Promise<number>;

export interface OptionSpec {
  /** The value's name in help (DIR, N, URL, HOST:PORT); absent for a flag that takes no value. */
  value?: string;
  help: string;
  /** Repeatable: the values are collected in order. */
  multiple?: boolean;
  /** Used when the option is not given, and shown in help as "(default …)". */
  default?: string;
  required?: boolean;
  /** Turns the text into the value; throws `Invalid` with what was expected. */
  parse?: (text: string) => unknown;
}

export interface PositionalSpec {
  name: string;
  help: string;
  /** Takes every remaining argument. */
  variadic?: boolean;
  optional?: boolean;
  /** Throws `Invalid` with what was expected; the argument itself is passed on as given. */
  check?: (text: string) => void;
}

export interface CommandSpec {
  summary: string;
  /** Paragraphs after the summary in `--help`. */
  description?: string;
  positionals?: PositionalSpec[];
  options: Record<string, OptionSpec>;
  /** The implementation, imported only when the command runs, so `--help` loads no SDK. */
  load: () => Promise<Run>;
}

export interface GroupSpec {
  summary: string;
  description?: string;
  commands: Record<string, CommandSpec | GroupSpec>;
}

export function isGroup(spec: CommandSpec | GroupSpec): spec is GroupSpec {
  return 'commands' in spec;
}

/** A mistake in the command line: printed as one line naming the command, with exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Thrown by a parser: what the option expects, e.g. "HOST:PORT". */
export class Invalid extends Error {
  override name = 'Invalid';
}

/** `--flag expects WHAT, got "value"`: the wording of every bad value. */
export function expected(flag: string, what: string, got: string): UsageError {
  return new UsageError(`${flag} expects ${what}, got ${JSON.stringify(got)}`);
}

export const releasesOption = {
  releases: { value: 'DIR', help: 'manifest store (default $MIRROR_RELEASES or releases/)' },
} satisfies Record<string, OptionSpec>;

export const listenOptions = {
  port: { value: 'N', help: 'port (default $PORT or 8080)', parse: port },
  host: { value: 'HOST', help: 'address to bind (default $HOST or 127.0.0.1)' },
} satisfies Record<string, OptionSpec>;

export function port(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw new Invalid('a port from 0 to 65535');
  return Number(text);
}

/** `HOST:PORT`, `[IPv6]:PORT`; the host may be a name or an address. */
export function hostPort(text: string): string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (!match || Number(match[2]) > 65535) throw new Invalid('HOST:PORT');
  return text;
}

export function httpUrl(text: string): string {
  if (!URL.canParse(text) || !/^https?:$/.test(new URL(text).protocol)) throw new Invalid('an http or https URL');
  return text;
}

export function positiveInteger(text: string): number {
  if (!/^[1-9][0-9]*$/.test(text)) throw new Invalid('a positive integer');
  return Number(text);
}

export function integer(text: string): number {
  if (!/^-?(0|[1-9][0-9]*)$/.test(text)) throw new Invalid('an integer');
  return Number(text);
}

/** `90s`, `30m`, `1h`, `7d`, or plain seconds; the value is in seconds. */
export function duration(text: string): number {
  const match = /^([1-9][0-9]*)([smhd]?)$/.exec(text);
  if (!match) throw new Invalid('a duration such as 30m, 1h or 7d');
  return Number(match[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
}

/** `KEY=VALUE`, split at the first `=`. */
export function keyValue(text: string): [string, string] {
  const at = text.indexOf('=');
  if (at < 1) throw new Invalid('KEY=VALUE');
  return [text.slice(0, at), text.slice(at + 1)];
}

export function jsonObject(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Invalid('a JSON object');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Invalid('a JSON object');
  return value;
}

export function oneOf(...choices: string[]): (text: string) => string {
  return function choice(text) {
    if (!choices.includes(text)) throw new Invalid(`one of ${choices.join(', ')}`);
    return text;
  };
}
