// The `mirror` CLI: finds the command, checks its arguments against its declaration
// (scripts/cli/commands.ts), then imports and runs its implementation. Usage errors exit 2,
// failures 1, each as one line.
import { isGroup, UsageError, type CommandSpec, type GroupSpec } from './cli/command.ts';
import { COMMANDS } from './cli/commands.ts';
import { commandHelp, groupHelp, parseCommand } from './cli/parse.ts';

export async function main(argv: string[]): Promise<number> {
  quietNodeVersionNotice();
  let spec: CommandSpec | GroupSpec = COMMANDS;
  const path: string[] = [];
  while (isGroup(spec)) {
    const name = argv[path.length];
    const prefix = ['mirror', ...path].join(' ');
    if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
      const help = groupHelp(path.join(' '), spec);
      if (name === undefined) process.stderr.write(`${prefix}: name a ${path.length > 0 ? 'subcommand' : 'command'}\n\n${help}`);
      else process.stdout.write(help);
      return name === undefined ? 2 : 0;
    }
    const next: CommandSpec | GroupSpec | undefined = Object.hasOwn(spec.commands, name) ? spec.commands[name] : undefined;
    if (!next) {
      const kind = path.length > 0 ? 'subcommand' : 'command';
      process.stderr.write(`${prefix}: unknown ${kind} ${JSON.stringify(name)} (${prefix} --help lists the ${kind}s)\n`);
      return 2;
    }
    path.push(name);
    spec = next;
  }
  const command = ['mirror', ...path].join(' ');
  try {
    const parsed = parseCommand(spec, argv.slice(path.length));
    if (parsed.help) {
      process.stdout.write(commandHelp(path.join(' '), spec));
      return 0;
    }
    const run = await spec.load();
    return await run(parsed.values, parsed.positionals);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${command}: ${error.message} (${command} --help lists the options)\n`);
      return 2;
    }
    // Failures are phrased for the user where they are thrown; the stack is not theirs to read.
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

/**
 * The AWS SDK announces that its releases after January 2027 need Node 22; the versions this
 * package locks run on Node 20, so that notice only distracts from the command's own output.
 */
function quietNodeVersionNotice(): void {
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const type = typeof rest[0] === 'object' ? (rest[0] as { type?: string } | null)?.type : rest[0];
    if (String(warning).includes('NodeVersionSupportWarning') || type === 'NodeVersionSupportWarning') return;
    emitWarning(warning, ...rest);
  }) as typeof process.emitWarning;
}
