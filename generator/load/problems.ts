// What the loader reports: a problem names its file and JSON path, and LoadError lists them all.

export interface Problem {
  file: string;
  /** JSON path inside the file, empty for the file as a whole. */
  path: string;
  message: string;
}

/** Collects one problem; the loader goes on to find the rest. */
export type Report = (file: string, jsonPath: string, message: string) => void;

export class LoadError extends Error {
  constructor(readonly problems: Problem[]) {
    super(`${problems.length} problem${problems.length === 1 ? '' : 's'} in the manifest store:\n${problems.map(formatProblem).join('\n')}`);
    this.name = 'LoadError';
  }
}

export function formatProblem(problem: Problem): string {
  return problem.path ? `${problem.file}: ${problem.path}: ${problem.message}` : `${problem.file}: ${problem.message}`;
}

/** A Report that adds to `problems`. */
export function reportInto(problems: Problem[]): Report {
  return (file, jsonPath, message) => problems.push({ file, path: jsonPath, message });
}
