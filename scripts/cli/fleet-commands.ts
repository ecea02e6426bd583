// `mirror fleet`: operator commands for the deployment-agent fleet (seed 004).
import { loadOrCreateCa } from '../../sidecar/fleet/ca.ts';
import { loadConfig } from '../../sidecar/config.ts';
import { UsageError, type Command } from './command.ts';

export const fleetCommands: Record<string, Command> = {
  fleet: {
    usage: `mirror fleet ca

Prints the fleet CA's certificate (PEM): what agents and operators trust to reach the fleet
listener, and what issues the agents' client certificates. The CA is created on first use, its
key kept with the certificate in $MIRROR_DATA_DIR/fleet/ca.json at mode 0600.
`,
    options: {},
    positionals: true,
    async run(_values, positionals) {
      if (positionals.join(' ') !== 'ca') throw new UsageError(`Unknown action \`${positionals.join(' ')}\`; expected \`fleet ca\``);
      process.stdout.write((await loadOrCreateCa(loadConfig().fleetCaFile)).certificate);
      return 0;
    },
  },
};
