// `mirror fleet`: operator commands for the deployment-agent fleet (seed 004). Registration tokens
// are written to the state database directly, so they can be made before the sidecar runs; task
// and agent commands go through the running fleet listener, as any operator client would, so a
// new task reaches the agent's stream at once. Their options are declared in commands.ts.
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
import { UsageError } from './command.ts';

type Values = Record<string, unknown>;

export async function fleetCa(): Promise<number> {
  process.stdout.write(await fleetCaCertificate(loadConfig()));
  return 0;
}

export async function fleetTokenCreate(values: Values): Promise<number> {
  const config = loadConfig();
  const parsedLabels = labelsSchema.safeParse(Object.fromEntries((values.label as [string, string][] | undefined) ?? []));
  if (!parsedLabels.success) throw new UsageError(problems(parsedLabels.error, '--label'));
  const state = await openDatabase({ ...(config.settings.DATABASE_URL ? { url: config.settings.DATABASE_URL } : {}), file: config.databaseFile });
  try {
    await prepareDatabase(state, !config.settings.DATABASE_URL);
    const created = await createRegistrationToken(state.db, { ttlSeconds: values.ttl as number, labels: parsedLabels.data, createdBy: `cli:${process.env.USER ?? 'unknown'}` }, new Date());
    const labelText = Object.entries(created.labels).map(([key, value]) => `${key}=${value}`).join(', ');
    console.log(`one-time registration token, valid until ${created.expiresAt.toISOString()}${labelText ? `, labels ${labelText}` : ''}:`);
    console.log(created.token);
    return 0;
  } finally {
    await state.close();
  }
}

export async function fleetAgents(values: Values): Promise<number> {
  const query = new URLSearchParams();
  for (const name of ['status', 'capability']) if (typeof values[name] === 'string') query.set(name, values[name]);
  return printResponse(await fleetApi(loadConfig(), values, 'GET', `/api/v1/agents${query.size > 0 ? `?${query}` : ''}`));
}

export async function fleetTaskCreate(values: Values, [agentId]: string[]): Promise<number> {
  const body = {
    taskType: values.type as string,
    payload: values.payload,
    credentials: Object.fromEntries((values.credential as [string, string][] | undefined) ?? []),
    timeout: values.timeout as number,
    priority: values.priority as number,
  };
  return printResponse(await fleetApi(loadConfig(), values, 'POST', `/api/v1/agents/${encodeURIComponent(agentId!)}/tasks`, body));
}

export async function fleetTaskCancel(values: Values, [agentId, taskId]: string[]): Promise<number> {
  return printResponse(await fleetApi(loadConfig(), values, 'POST', `/api/v1/agents/${encodeURIComponent(agentId!)}/tasks/${encodeURIComponent(taskId!)}/cancel`));
}

async function fleetCaCertificate(config: Config): Promise<string> {
  const file = config.settings.FLEET_CA_CERT_FILE;
  return file ? readFile(file, 'utf8') : (await loadOrCreateCa(config.fleetCaFile)).certificate;
}

async function operatorToken(config: Config, values: Values): Promise<string> {
  const given = (values.token as string | undefined) ?? process.env.MIRROR_FLEET_TOKEN;
  if (given) return given;
  if (config.settings.AUTH_MODE !== 'local') throw new Error(`AUTH_MODE is cognito: give an operator token with the ${OPERATOR_SCOPE} scope in --token or MIRROR_FLEET_TOKEN`);
  return (await localIssuer({ dir: config.authDir })).mint('cli', 300, [OPERATOR_SCOPE]);
}

/** One call to the fleet listener over HTTPS, trusting the fleet CA; the status and parsed body. */
async function fleetApi(config: Config, values: Values, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
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
