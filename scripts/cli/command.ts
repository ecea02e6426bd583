// What every command of the CLI shares: its shape, usage errors, and the parsing of common flags.
import type { ParseArgsConfig } from 'node:util';

export interface Command {
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  positionals?: boolean;
  run(values: Record<string, unknown>, positionals: string[]): Promise<number>;
}

/** A mistake in the command line: the command's usage is printed with it, and the exit code is 2. */
export class UsageError extends Error {}

export const releasesOption = { releases: { type: 'string' } } as const;
export const listenOptions = { port: { type: 'string' }, host: { type: 'string' } } as const;

export function required(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`Missing \`--${name}\``);
  return value;
}

export function positiveInteger(values: Record<string, unknown>, name: string, fallback: number): number {
  const value = values[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^[1-9][0-9]*$/.test(value)) throw new UsageError(`Expected \`--${name}\` to be a positive integer, got \`${String(value)}\``);
  return Number(value);
}

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new UsageError(`Expected a port from 0 to 65535, got \`${value}\``);
  return port;
}

/** `90s`, `30m`, `1h`, `7d`, or plain seconds. */
export function durationSeconds(text: string, flag: string): number {
  const match = /^([1-9][0-9]*)([smhd]?)$/.exec(text);
  if (!match) throw new UsageError(`Expected \`--${flag}\` to be a duration such as 30m, 1h or 7d, got \`${text}\``);
  return Number(match[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
}
