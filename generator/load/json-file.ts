// Reads one JSON file of the manifest store and checks it against its schema, reporting each
// problem with the file and the JSON path it is at.
import { existsSync, readFileSync } from 'node:fs';
import type { z } from 'zod';
import type { Report } from './problems.ts';

/** The file's data as the schema outputs it; an absent optional file gives the schema's defaults. */
export async function readJson<S extends z.ZodType>(file: string, schema: S, report: Report, options: { optional?: boolean } = {}): Promise<z.output<S> | undefined> {
  if (options.optional && !existsSync(file)) return schema.parse({}) as z.output<S>;
  const read = readJsonData(file, report);
  return read === undefined ? undefined : validate(file, schema, read.data, report);
}

/** The parsed JSON of a file, unchecked; undefined once its problem is reported. */
export function readJsonData(file: string, report: Report): { data: unknown } | undefined {
  const bytes = readBytes(file, report);
  return bytes === undefined ? undefined : parseJson(file, bytes.toString('utf8'), report);
}

/** A file's bytes; undefined once its problem is reported. */
export function readBytes(file: string, report: Report): Buffer | undefined {
  try {
    // Synchronous: thousands of small files read several times faster than through the thread pool.
    return readFileSync(file);
  } catch (error) {
    reportUnreadable(file, (error as NodeJS.ErrnoException).code, report);
    return undefined;
  }
}

/** Reports a file that could not be read, by the error's code. */
export function reportUnreadable(file: string, code: string | undefined, report: Report): void {
  report(file, '', code === 'ENOENT' ? 'missing' : `cannot read (${code})`);
}

export function parseJson(file: string, text: string, report: Report): { data: unknown } | undefined {
  try {
    return { data: JSON.parse(text) };
  } catch (error) {
    report(file, '', `not valid JSON (${(error as Error).message})`);
    return undefined;
  }
}

/** A file's text parsed and checked against its schema; undefined once its problems are reported. */
export function parseValid<S extends z.ZodType>(file: string, schema: S, text: string, report: Report): z.output<S> | undefined {
  const parsed = parseJson(file, text, report);
  return parsed === undefined ? undefined : validate(file, schema, parsed.data, report);
}

export function validate<S extends z.ZodType>(file: string, schema: S, data: unknown, report: Report): z.output<S> | undefined {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    for (const key of keys) report(file, formatJsonPath(key === undefined ? issue.path : [...issue.path, key]), key === undefined ? issue.message : 'unknown field');
  }
  return undefined;
}

function formatJsonPath(segments: PropertyKey[]): string {
  return segments.map((segment, i) => (typeof segment === 'number' ? `[${segment}]` : `${i === 0 ? '' : '.'}${String(segment)}`)).join('');
}
