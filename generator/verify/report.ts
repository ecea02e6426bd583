// What `mirror verify` found: every problem with the URL it was seen at, and how much was checked.

/** What a trust problem means: the attack, or the failure, it reveals. */
export type ProblemKind = 'tampered' | 'mix-and-match' | 'rollback' | 'freeze' | 'unknown-key' | 'retired-key' | 'bad-signature' | 'missing';

export interface VerifyProblem {
  url: string;
  /** What was expected and what was received. */
  problem: string;
  kind?: ProblemKind;
}

export interface VerifyCounts {
  /** Distinct artifacts the indexes list; each one downloaded (or tried) and checked. */
  artifactsChecked: number;
  /** SHA256SUMS files read and compared with the downloaded bytes. */
  checksumFilesChecked: number;
  /** Artifact downloads that answered 200, including one installer reached through several redirects. */
  filesDownloaded: number;
  /** Artifact bytes received; index and checksum bodies are not counted. */
  bytesDownloaded: number;
  /** Redirects answered with a usable Location and followed. */
  redirectsFollowed: number;
  /** Files the signed snapshot names, fetched and compared with its hash. */
  snapshotFilesChecked: number;
  /** OpenPGP signatures of SHA256SUMS files checked. */
  signaturesChecked: number;
}

export interface VerifyReport {
  baseUrl: string;
  /** Sorted by URL, so two runs over the same mirror print the same report. */
  problems: VerifyProblem[];
  counts: VerifyCounts;
  /** What the signed snapshot established, in one line; absent when trust was not checked. */
  trust?: string;
}

/** `index`: a JSON index or SHA256SUMS file was read; `download`: an artifact was received whole. */
export type VerifyProgressEvent =
  | { type: 'index'; url: string }
  | { type: 'download'; url: string; bytes: number }
  | { type: 'problem'; url: string; problem: string };

export interface Recorder {
  problem(url: URL | string, problem: string, kind?: ProblemKind): void;
  count(name: keyof VerifyCounts, amount?: number): void;
  progress(event: VerifyProgressEvent): void;
  report(): VerifyReport;
}

export function createRecorder(baseUrl: string, onProgress?: (event: VerifyProgressEvent) => void): Recorder {
  const problems: VerifyProblem[] = [];
  // The same link can be met through several indexes; its problem is reported once.
  const reported = new Set<string>();
  const counts: VerifyCounts = { artifactsChecked: 0, checksumFilesChecked: 0, filesDownloaded: 0, bytesDownloaded: 0, redirectsFollowed: 0, snapshotFilesChecked: 0, signaturesChecked: 0 };
  return {
    problem(url, problem, kind) {
      const entry: VerifyProblem = { url: String(url), problem, ...(kind ? { kind } : {}) };
      const key = `${entry.url}\n${problem}`;
      if (reported.has(key)) return;
      reported.add(key);
      problems.push(entry);
      onProgress?.({ type: 'problem', ...entry });
    },
    count(name, amount = 1) {
      counts[name] += amount;
    },
    progress(event) {
      onProgress?.(event);
    },
    report() {
      const sorted = [...problems].sort((a, b) => compareText(a.url, b.url) || compareText(a.problem, b.problem));
      return { baseUrl, problems: sorted, counts: { ...counts } };
    },
  };
}

/** A summary line, then one line per problem: what the CLI prints. */
export function formatVerifyReport(report: VerifyReport): string {
  const { counts, problems } = report;
  const checked =
    `${counts.artifactsChecked} artifacts (${counts.filesDownloaded} downloads, ${counts.bytesDownloaded} bytes), ` +
    `${counts.checksumFilesChecked} SHA256SUMS files, ${counts.redirectsFollowed} redirects`;
  const verdict = problems.length === 0 ? 'no problems' : `${problems.length} problem${problems.length === 1 ? '' : 's'}`;
  const lines = [`verified ${report.baseUrl}: ${checked}: ${verdict}`];
  if (report.trust) lines.push(`trust: ${report.trust}`);
  for (const { url, problem, kind } of problems) lines.push(`  ${url}: ${kind ? `[${kind}] ` : ''}${problem}`);
  return `${lines.join('\n')}\n`;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
