// `mirror fleet`: operator commands for the deployment-agent fleet (seed 004). Registration tokens
// are written to the state database directly, so they can be made before the sidecar runs; task
// and agent commands go through the running fleet listener, as any operator client would, so a
// new task reaches the agent's stream at once.
import { request } from 'node:https';
import { readFile } from 'node:fs/promises';
import { localIssuer } from '../../sidecar/auth/jwt.ts';
import { loadConfig, type Config } from '../../sidecar/config.ts';
import { OPERATOR_SCOPE } from '../../sidecar/fleet/auth.ts';
import { labels as labelsSchema, problems } from '../../sidecar/fleet/bodies.ts';
import { loadOrCreateCa } from '../../sidecar/fleet/ca.ts';
import { createRegistrationToken } from '../../sidecar/fleet/registration.ts';
import { prepareDatabase } from '../../sidecar/runtime.ts';
import { openDatabase } from '../../sidecar/store/db.ts';
import { UsageError, durationSeconds, positiveInteger, required, type Command } from './command.ts';

const apiOptions = { url: { type: 'string' }, token: { type: 'string' } } as const;

export const fleetCommands: Record<string, Command> = {
  fleet: {
    usage: `mirror fleet ca
mirror fleet token create [--ttl DURATION] [--label KEY=VALUE]...
mirror fleet agents [--status online|degraded|offline] [--capability C]
mirror fleet task create AGENT_ID --type TYPE [--payload JSON] [--credential KEY=VALUE]...
                         [--timeout SECONDS] [--priority N]
mirror fleet task cancel AGENT_ID TASK_ID

ca            prints the fleet CA's certificate (PEM): what agents trust to reach the fleet
              listener, and what issues their client certificates. Created on first use, its key
              kept with it in $MIRROR_DATA_DIR/fleet/ca.json at mode 0600 (or FLEET_CA_CERT_FILE
              and FLEET_CA_KEY_FILE).
token create  prints a one-time registration token, alone on the last line, for one agent to
              register with (X-Agent-Token). Stored hashed in the state database.
                --ttl DURATION      how long it may wait to be used: 30m, 24h, 7d (default 24h)
                --label KEY=VALUE   a label every agent registered with it gets; repeatable
agents        lists the registered agents as JSON.
task create   creates a task for an agent and prints it as JSON; a connected agent's task
              stream receives it at once.
                --type TYPE         e.g. docker.pull
                --payload JSON      the task's payload object (default {})
                --credential K=V    a credential handed to the agent only; repeatable
                --timeout SECONDS   the lease of each attempt (default 300)
                --priority N        higher first (default 0)
task cancel   cancels a queued or running task; its agent's stream is told.

The agents and task commands call the fleet listener:
  --url URL       default https://127.0.0.1:$FLEET_PORT, trusting the fleet CA
  --token TOKEN   an operator token with the ${OPERATOR_SCOPE} scope (default $MIRROR_FLEET_TOKEN;
                  with AUTH_MODE=local, one is minted for the call)
`,
    options: {
      ttl: { type: 'string' },
      label: { type: 'string', multiple: true },
      status: { type: 'string' },
      capability: { type: 'string' },
      type: { type: 'string' },
      payload: { type: 'string' },
      credential: { type: 'string', multiple: true },
      timeout: { type: 'string' },
      priority: { type: 'string' },
      ...apiOptions,
    },
    positionals: true,
    async run(values, positionals) {
      const [group, action, ...rest] = positionals;
      const config = loadConfig();
      if (group === 'ca' && action === undefined) {
        process.stdout.write((await fleetCaCertificate(config)));
        return 0;
      }
      if (group === 'token' && action === 'create' && rest.length === 0) return createToken(config, values);
      if (group === 'agents' && action === undefined) {
        const query = new URLSearchParams();
        for (const name of ['status', 'capability']) if (typeof values[name] === 'string') query.set(name, values[name]);
        return printResponse(await fleetApi(config, values, 'GET', `/api/v1/agents${query.size > 0 ? `?${query}` : ''}`));
      }
      if (group === 'task' && action === 'create' && rest.length === 1) {
        let payload: unknown = {};
        if (typeof values.payload === 'string') {
          try {
            payload = JSON.parse(values.payload);
          } catch {
            throw new UsageError(`Expected \`--payload\` to be a JSON object, got \`${values.payload}\``);
          }
        }
        const body = {
          taskType: required(values, 'type'),
          payload,
          credentials: keyValues((values.credential as string[] | undefined) ?? [], 'credential'),
          timeout: positiveInteger(values, 'timeout', 300),
          priority: values.priority === undefined ? 0 : Number(values.priority),
        };
        return printResponse(await fleetApi(config, values, 'POST', `/api/v1/agents/${encodeURIComponent(rest[0]!)}/tasks`, body));
      }
      if (group === 'task' && action === 'cancel' && rest.length === 2) {
        return printResponse(await fleetApi(config, values, 'POST', `/api/v1/agents/${encodeURIComponent(rest[0]!)}/tasks/${encodeURIComponent(rest[1]!)}/cancel`));
      }
      throw new UsageError(`Unknown action \`${positionals.join(' ')}\`; expected \`fleet ca\`, \`fleet token create\`, \`fleet agents\`, \`fleet task create AGENT_ID\` or \`fleet task cancel AGENT_ID TASK_ID\``);
    },
  },
};

async function createToken(config: Config, values: Record<string, unknown>): Promise<number> {
  const ttlSeconds = durationSeconds((values.ttl as string | undefined) ?? '24h', 'ttl');
  const parsedLabels = labelsSchema.safeParse(keyValues((values.label as string[] | undefined) ?? [], 'label'));
  if (!parsedLabels.success) throw new UsageError(problems(parsedLabels.error, '--label'));
  const state = await openDatabase({ ...(config.settings.DATABASE_URL ? { url: config.settings.DATABASE_URL } : {}), file: config.databaseFile });
  try {
    await prepareDatabase(state, !config.settings.DATABASE_URL);
    const created = await createRegistrationToken(state.db, { ttlSeconds, labels: parsedLabels.data, createdBy: `cli:${process.env.USER ?? 'unknown'}` }, new Date());
    const labelText = Object.entries(created.labels).map(([key, value]) => `${key}=${value}`).join(', ');
    console.log(`one-time registration token, valid until ${created.expiresAt.toISOString()}${labelText ? `, labels ${labelText}` : ''}:`);
    console.log(created.token);
    return 0;
  } finally {
    await state.close();
  }
}

function keyValues(pairs: string[], flag: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1) throw new UsageError(`Expected \`--${flag}\` as KEY=VALUE, got \`${pair}\``);
    map[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return map;
}

async function fleetCaCertificate(config: Config): Promise<string> {
  const file = config.settings.FLEET_CA_CERT_FILE;
  return file ? readFile(file, 'utf8') : (await loadOrCreateCa(config.fleetCaFile)).certificate;
}

async function operatorToken(config: Config, values: Record<string, unknown>): Promise<string> {
  const given = (values.token as string | undefined) ?? process.env.MIRROR_FLEET_TOKEN;
  if (given) return given;
  if (config.settings.AUTH_MODE !== 'local') throw new UsageError(`AUTH_MODE is cognito: give an operator token with the ${OPERATOR_SCOPE} scope in --token or MIRROR_FLEET_TOKEN`);
  return (await localIssuer({ dir: config.authDir })).mint('cli', 300, [OPERATOR_SCOPE]);
}

/** One call to the fleet listener over HTTPS, trusting the fleet CA; the status and parsed body. */
async function fleetApi(config: Config, values: Record<string, unknown>, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const base = (values.url as string | undefined) ?? `https://127.0.0.1:${config.settings.FLEET_PORT}`;
  const url = new URL(path, base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const ca = await fleetCaCertificate(config);
  const token = await operatorToken(config, values);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca, headers: { Authorization: `Bearer ${token}`, ...(payload ? { 'Content-Type': 'application/json' } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: text });
        }
      });
      res.on('error', reject);
    });
    req.on('error', (error: NodeJS.ErrnoException) => reject(new Error(`Cannot reach the fleet listener at ${base} (${error.code ?? error.message}); is \`mirror serve\` running? (--url)`)));
    req.end(payload);
  });
}

function printResponse({ status, body }: { status: number; body: unknown }): number {
  const text = JSON.stringify(body, null, 2);
  if (status >= 400) {
    console.error(`${status}: ${text}`);
    return 1;
  }
  console.log(text);
  return 0;
}
