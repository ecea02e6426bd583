// Reads a SHA256SUMS file the way `sha256sum -c` does, and checks it against a version's files.
import type { Recorder } from './report.ts';

export interface ParsedSums {
  /** File name → lower-case hex digest. */
  digests: Map<string, string>;
  /** Lines `sha256sum -c` would not accept, with their 1-based numbers. */
  malformed: { line: number; text: string }[];
  /** File names listed more than once. */
  repeated: string[];
}

/** `<64 hex digits>`, a space, then a space (text mode) or `*` (binary mode), then the name. */
const SUMS_LINE = /^([0-9a-fA-F]{64}) [ *](.+)$/;

export function parseSha256Sums(text: string): ParsedSums {
  const parsed: ParsedSums = { digests: new Map(), malformed: [], repeated: [] };
  text.split('\n').forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') return;
    const match = SUMS_LINE.exec(line);
    if (!match) {
      parsed.malformed.push({ line: index + 1, text: line });
      return;
    }
    const filename = match[2]!;
    if (parsed.digests.has(filename)) parsed.repeated.push(filename);
    parsed.digests.set(filename, match[1]!.toLowerCase());
  });
  return parsed;
}

export interface SumsCheck {
  sumsUrl: URL;
  text: string;
  /** Where the version's files were listed, named in the problems. */
  listingUrl: URL;
  /** Every file the listing gives for the version, by name, with where it was downloaded from. */
  listed: Map<string, string>;
  /** SHA-256 of the bytes actually received, for the files that downloaded. */
  received: Map<string, string>;
}

/** Every line names a listed file, every listed file has a line, and each digest is the received bytes'. */
export function checkSums(record: Recorder, { sumsUrl, text, listingUrl, listed, received }: SumsCheck): void {
  const sums = parseSha256Sums(text);
  for (const { line, text: content } of sums.malformed) record.problem(sumsUrl, `expected line ${line} to read \`<sha256>  <file>\`, got \`${content}\``);
  for (const filename of sums.repeated) record.problem(sumsUrl, `expected one line for ${filename}, got several`);
  for (const filename of sums.digests.keys()) {
    if (!listed.has(filename)) record.problem(sumsUrl, `has a line for ${filename}, which ${listingUrl} does not list`);
  }
  for (const [filename, url] of listed) {
    const digest = sums.digests.get(filename);
    if (digest === undefined) {
      record.problem(sumsUrl, `expected a line for ${filename}, which ${listingUrl} lists; got none`);
      continue;
    }
    const actual = received.get(filename);
    // The bytes are the evidence: a digest is only judged against a file that downloaded.
    if (actual !== undefined && actual !== digest) record.problem(sumsUrl, `expected sha256 ${actual} for ${filename} (the bytes of ${url}), got ${digest}`, 'tampered');
  }
}
