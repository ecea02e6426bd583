// From a command's declaration to its help text and its parsed arguments. node:util's parseArgs
// splits the arguments into tokens; the checks and the one-line messages are ours, since
// parseArgs' own errors name neither the command nor the value received.
import { parseArgs } from 'node:util';
import { Invalid, UsageError, isGroup, type CommandSpec, type GroupSpec, type OptionSpec, type PositionalSpec } from './command.ts';

const HELP_OPTION: OptionSpec = { help: 'prints this help' };
const WIDTH = 100;

export interface Parsed {
  values: Record<string, unknown>;
  positionals: string[];
  help: boolean;
}

/** Checks the arguments against the declaration; a mistake throws a `UsageError` naming the flag or positional. */
export function parseCommand(spec: CommandSpec, args: string[]): Parsed {
  const options = Object.fromEntries(Object.entries(spec.options).map(([name, option]) => [name, { type: option.value ? ('string' as const) : ('boolean' as const) }]));
  const { tokens } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: false, allowPositionals: true, tokens: true });
  const given: Record<string, string | boolean | string[]> = {};
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value);
    if (token.kind !== 'option') continue;
    if (token.name === 'help') return { values: {}, positionals: [], help: true };
    const option = spec.options[token.name];
    if (!option) throw new UsageError(`unknown option ${token.rawName}`);
    const flag = `--${token.name}`;
    if (!option.value) {
      if (token.value !== undefined) throw new UsageError(`${flag} takes no value, got ${JSON.stringify(token.value)}`);
      given[token.name] = true;
      continue;
    }
    // parseArgs takes the next argument as the value even when it is another option.
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) throw new UsageError(`${flag} expects ${option.value}, got nothing`);
    given[token.name] = option.multiple ? [...((given[token.name] as string[] | undefined) ?? []), token.value] : token.value;
  }
  const values: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(spec.options)) {
    const text = given[name] ?? option.default;
    if (text === undefined) {
      if (option.required) throw new UsageError(`--${name} ${option.value} is missing`);
      continue;
    }
    values[name] = typeof text === 'boolean' ? text : Array.isArray(text) ? text.map((item) => check(`--${name}`, item, option.parse)) : check(`--${name}`, text, option.parse);
  }
  return { values, positionals: checkPositionals(spec, positionals), help: false };
}

function checkPositionals(spec: CommandSpec, given: string[]): string[] {
  const declared = spec.positionals ?? [];
  declared.forEach((positional, index) => {
    const values = positional.variadic ? given.slice(index) : given.slice(index, index + 1);
    if (values.length === 0 && !positional.optional) throw new UsageError(`${positional.name} is missing`);
    for (const value of values) check(positional.name, value, positional.check);
  });
  const extra = declared.at(-1)?.variadic ? undefined : given[declared.length];
  if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`);
  return given;
}

function check(name: string, text: string, parse: ((text: string) => unknown) | undefined): unknown {
  if (!parse) return text;
  try {
    return parse(text);
  } catch (error) {
    if (error instanceof Invalid) throw new UsageError(`${name} expects ${error.message}, got ${JSON.stringify(text)}`);
    throw error;
  }
}

/** `mirror build [--releases DIR] [--out DIR]`, the options listed one a line, the description. */
export function commandHelp(path: string, spec: CommandSpec): string {
  const positional = ({ name, variadic, optional }: PositionalSpec) => `${optional ? `[${name}]` : name}${variadic ? '...' : ''}`;
  // Fixed positionals read best after the command's words, a list of files after the options.
  const parts = [
    ...(spec.positionals ?? []).filter((p) => !p.variadic).map(positional),
    ...Object.entries(spec.options).map(([name, option]) => {
      const text = `--${name}${option.value ? ` ${option.value}` : ''}`;
      return option.required ? text : `[${text}]${option.multiple ? '...' : ''}`;
    }),
    ...(spec.positionals ?? []).filter((p) => p.variadic).map(positional),
  ];
  const rows: [string, string][] = [
    ...(spec.positionals ?? []).map(({ name, help }): [string, string] => [name, help]),
    ...Object.entries({ ...spec.options, help: HELP_OPTION }).map(([name, option]): [string, string] => [
      `${name === 'help' ? '-h, ' : ''}--${name}${option.value ? ` ${option.value}` : ''}`,
      `${option.help}${option.default === undefined ? '' : ` (default ${option.default})`}${option.multiple ? '; repeatable' : ''}`,
    ]),
  ];
  return [wrap(`Usage: mirror ${path} `, parts), '', sentence(spec.summary), ...(spec.description ? ['', spec.description.trimEnd()] : []), '', table(rows), ''].join('\n');
}

/** A group's subcommands, or every command when the group is the CLI itself. */
export function groupHelp(path: string, spec: GroupSpec): string {
  const rows = leaves(spec).map(([name, command]): [string, string] => [name, command.summary]);
  const prefix = path ? `mirror ${path}` : 'mirror';
  return [`${prefix}: ${spec.summary}`, '', `Usage: ${prefix} ${path ? 'SUBCOMMAND' : 'COMMAND'} [options]`, '', path ? 'Subcommands:' : 'Commands:', table(rows), '', ...(spec.description ? [spec.description.trimEnd(), ''] : [])].join('\n');
}

function sentence(text: string): string {
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

function leaves(group: GroupSpec, prefix = ''): [string, CommandSpec][] {
  return Object.entries(group.commands).flatMap(([name, spec]) => (isGroup(spec) ? leaves(spec, `${prefix}${name} `) : [[`${prefix}${name}`, spec] as [string, CommandSpec]]));
}

function table(rows: [string, string][]): string {
  const left = Math.min(Math.max(...rows.map(([name]) => name.length)) + 2, 28);
  return rows
    .map(([name, help]) => {
      const lines = fold(help, WIDTH - left - 2);
      const first = name.length + 2 <= left ? `  ${name.padEnd(left)}${lines[0] ?? ''}` : `  ${name}\n${' '.repeat(left + 2)}${lines[0] ?? ''}`;
      return [first, ...lines.slice(1).map((line) => `${' '.repeat(left + 2)}${line}`)].join('\n');
    })
    .join('\n');
}

/** `head part part ...`, continued lines indented under the first part. */
function wrap(head: string, parts: string[]): string {
  const lines = [head.trimEnd()];
  for (const part of parts) {
    if (lines.at(-1)!.length + 1 + part.length > WIDTH && lines.at(-1)!.length > head.length) lines.push(' '.repeat(head.length - 1));
    lines[lines.length - 1] += ` ${part}`;
  }
  return lines.join('\n');
}

function fold(text: string, width: number): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      if (line && line.length + 1 + word.length > width) {
        lines.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    lines.push(line);
  }
  return lines;
}
