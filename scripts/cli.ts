// The `mirror` CLI: argument parsing and output only; the work is done by generator/ and sidecar/.
// Each group of commands lives in scripts/cli/.
import { parseArgs } from 'node:util';
import { LoadError } from '../generator/load/index.ts';
import { ReleaseConflictError } from '../generator/release-add.ts';
import { KeyError } from '../generator/trust/keyring.ts';
import { UsageError, type Command } from './cli/command.ts';
import { deployCommands } from './cli/deploy-commands.ts';
import { fleetCommands } from './cli/fleet-commands.ts';
import { registryCommands } from './cli/registry-commands.ts';
import { releaseCommands } from './cli/release-commands.ts';
import { siteCommands } from './cli/site-commands.ts';
import { trustCommands } from './cli/trust-commands.ts';

const USAGE = `mirror: build and serve a release distribution site

Usage:
  mirror build [--releases DIR] [--out DIR]
  mirror serve [--site DIR] [--port N] [--host HOST]
  mirror start [--releases DIR] [--port N] [--host HOST]
  mirror migrate
  mirror token create --sub NAME [--ttl DURATION]
  mirror registry token create --user NAME | revoke TOKEN
  mirror fleet ca | token create [--ttl D] [--label K=V]... | agents
  mirror fleet task create AGENT_ID --type T [--payload JSON] | task cancel AGENT_ID TASK_ID
  mirror release add --product P --version V [--channel C]... FILES...
  mirror deploy --bucket B [--prefix P] [--region R] [--endpoint URL]
                [--distribution-id ID] [--kvs-arn ARN] [--dry-run] [--no-delete]
  mirror cloudfront-function
  mirror keys create [--name N] [--email E] | list | retire KEYID
  mirror snapshot refresh [--releases DIR] [--out DIR]
  mirror verify --base-url URL [--keys FILE] [--state FILE] [--concurrency N] [--timeout SECONDS]
  mirror nginx-conf [--site DIR] [--listen HOST:PORT]

Run \`mirror COMMAND --help\` for a command's options.
Environment: MIRROR_RELEASES (manifest store, default releases/), MIRROR_DATA_DIR (blobs, built
site and state, default .mirror/), PORT (default 8080), HOST (default 127.0.0.1); the sidecar's
settings (DATABASE_URL, REDIS_URL, AUTH_MODE, ...) are listed in the README and printed by
\`mirror serve\` at start.
`;

const COMMANDS: Record<string, Command> = { ...siteCommands, ...releaseCommands, ...deployCommands, ...registryCommands, ...fleetCommands, ...trustCommands };

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`Unknown command \`${name}\`\n\n${USAGE}`);
    return 2;
  }
  try {
    const { values, positionals } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: command.positionals ?? false,
      strict: true,
    });
    if (values.help) {
      process.stdout.write(command.usage);
      return 0;
    }
    return await command.run(values, positionals);
  } catch (error) {
    if (error instanceof LoadError || error instanceof ReleaseConflictError || error instanceof KeyError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(error as Error).message}\n\n${command.usage}`);
      return 2;
    }
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
