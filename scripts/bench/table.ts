// The benchmark's report: one Markdown table row per measurement.
export interface Row {
  measured: string;
  ours: string;
  reference: string;
  target: string;
  /** Undefined when the row has no target. */
  met?: boolean;
  ourCommand: string;
  referenceCommand?: string;
}

const HEADER = ['Measured', 'Ours', 'Reference', 'Target', 'Met', 'Command (ours)', 'Command (reference)'];

export function markdownTable(rows: Row[]): string {
  const cells = rows.map((row) => [
    row.measured,
    row.ours,
    row.reference,
    row.target,
    row.met === undefined ? '—' : row.met ? 'yes' : '**no**',
    code(row.ourCommand),
    row.referenceCommand ? code(row.referenceCommand) : '—',
  ]);
  return [HEADER, HEADER.map(() => '---'), ...cells].map((line) => `| ${line.join(' | ')} |`).join('\n');
}

function code(command: string): string {
  return `\`${command}\``;
}
