// The sidecar's settings: environment variables over an optional JSON file (MIRROR_CONFIG),
// validated once at start. A bad setting stops the process with a message naming it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { resolvePaths, type Paths } from '../generator/config.ts';

const MiB = 1024 * 1024;

const port = z.coerce.number().int().min(0).max(65535);
const count = z.coerce.number().int().min(0);
const optionalText = z.string().trim().min(1).optional();
const url = (schemes: string[]) =>
  z
    .string()
    .trim()
    .refine((value) => URL.canParse(value) && schemes.includes(new URL(value).protocol), `must be a ${schemes.map((s) => `${s}//`).join(' or ')} URL`)
    .optional();

const schema = z
  .object({
    PORT: port.default(8080),
    HOST: z.string().trim().min(1).default('127.0.0.1'),
    MIRROR_RELEASES: z.string().trim().min(1).default('releases'),
    MIRROR_DATA_DIR: z.string().trim().min(1).default('.mirror'),
    DATABASE_URL: url(['postgres:', 'postgresql:']),
    REDIS_URL: url(['redis:', 'rediss:']),
    AUTH_MODE: z.enum(['local', 'cognito']).default('local'),
    COGNITO_REGION: optionalText,
    COGNITO_USER_POOL_ID: optionalText,
    COGNITO_CLIENT_ID: optionalText,
    COGNITO_TOKEN_USE: z.enum(['access', 'id']).default('access'),
    MAX_UPLOAD_BYTES: count.min(1).default(512 * MiB),
    MAX_ENVELOPE_BYTES: count.default(64 * MiB),
    RATE_LIMIT_IP_PER_MINUTE: count.default(600),
    RATE_LIMIT_READS_PER_MINUTE: count.default(0),
    RATE_LIMIT_USER_PER_MINUTE: count.default(120),
    RATE_LIMIT_UPLOADS_PER_HOUR: count.default(100),
    TRUSTED_PROXIES: count.default(0),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    MIRROR_S3_BUCKET: optionalText,
    MIRROR_S3_PREFIX: optionalText,
    MIRROR_S3_REGION: optionalText,
    MIRROR_CLOUDFRONT_DISTRIBUTION_ID: optionalText,
    MIRROR_KVS_ARN: optionalText,
    MIRROR_PUBLIC_URL: url(['http:', 'https:']).transform((value) => value?.replace(/\/+$/, '')),
    GITHUB_CLIENT_ID: optionalText,
    GITHUB_CLIENT_SECRET: optionalText,
    GITHUB_AUTHORIZE_URL: url(['https:', 'http:']).default('https://github.com/login/oauth/authorize'),
    GITHUB_TOKEN_URL: url(['https:', 'http:']).default('https://github.com/login/oauth/access_token'),
    GITHUB_API_URL: url(['https:', 'http:']).default('https://api.github.com').transform((value) => value!.replace(/\/+$/, '')),
    REGISTRY_REDIRECT_URIS: optionalText,
    REGISTRY_MAX_TARBALL_BYTES: count.min(1).default(50 * MiB),
    REGISTRY_RATE_LIMIT_IP_PER_MINUTE: count.default(60),
    REGISTRY_RATE_LIMIT_USER_PER_MINUTE: count.default(120),
    REGISTRY_RATE_LIMIT_PUBLISH_PER_HOUR: count.default(10),
    FLEET_PORT: port.default(8443),
    FLEET_SERVER_NAMES: z.string().trim().min(1).default('localhost,127.0.0.1'),
    FLEET_CA_CERT_FILE: optionalText,
    FLEET_CA_KEY_FILE: optionalText,
    FLEET_CERT_TTL_SECONDS: count.min(60).default(86_400),
    FLEET_RENEW_BEFORE_SECONDS: count.min(1).default(3_600),
    FLEET_HEARTBEAT_INTERVAL_SECONDS: count.min(1).default(30),
    FLEET_TASK_POLL_INTERVAL_SECONDS: count.min(1).default(5),
    FLEET_TASK_MAX_ATTEMPTS: count.min(1).default(3),
    FLEET_AGENT_LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug', 'trace']).default('info'),
    MIRROR_SIGNING_KEY: optionalText,
    MIRROR_SIGNING_KEY_FILE: optionalText,
    MIRROR_SIGNING_KEY_PASSPHRASE: optionalText,
    MIRROR_SNAPSHOT_EXPIRY_SECONDS: count.min(60).default(7 * 24 * 60 * 60),
  })
  .superRefine((config, ctx) => {
    if (config.AUTH_MODE === 'cognito') {
      for (const name of ['COGNITO_REGION', 'COGNITO_USER_POOL_ID', 'COGNITO_CLIENT_ID'] as const) {
        if (!config[name]) ctx.addIssue({ code: 'custom', path: [name], message: 'is required when AUTH_MODE=cognito' });
      }
    }
    if (Boolean(config.GITHUB_CLIENT_ID) !== Boolean(config.GITHUB_CLIENT_SECRET)) {
      ctx.addIssue({ code: 'custom', path: [config.GITHUB_CLIENT_ID ? 'GITHUB_CLIENT_SECRET' : 'GITHUB_CLIENT_ID'], message: 'GitHub sign-in needs both GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET' });
    }
    if (config.REGISTRY_REDIRECT_URIS) {
      for (const prefix of config.REGISTRY_REDIRECT_URIS.split(',').map((entry) => entry.trim())) {
        if (!URL.canParse(prefix)) ctx.addIssue({ code: 'custom', path: ['REGISTRY_REDIRECT_URIS'], message: `expected comma-separated URL prefixes, got \`${prefix}\`` });
      }
    }
    if (Boolean(config.FLEET_CA_CERT_FILE) !== Boolean(config.FLEET_CA_KEY_FILE)) {
      ctx.addIssue({ code: 'custom', path: [config.FLEET_CA_CERT_FILE ? 'FLEET_CA_KEY_FILE' : 'FLEET_CA_CERT_FILE'], message: 'a fleet CA from files needs both FLEET_CA_CERT_FILE and FLEET_CA_KEY_FILE' });
    }
    if (config.FLEET_RENEW_BEFORE_SECONDS >= config.FLEET_CERT_TTL_SECONDS) {
      ctx.addIssue({ code: 'custom', path: ['FLEET_RENEW_BEFORE_SECONDS'], message: `must be less than FLEET_CERT_TTL_SECONDS (${config.FLEET_CERT_TTL_SECONDS}), or every heartbeat renews` });
    }
    if (config.MIRROR_SIGNING_KEY && config.MIRROR_SIGNING_KEY_FILE) {
      ctx.addIssue({ code: 'custom', path: ['MIRROR_SIGNING_KEY_FILE'], message: 'set MIRROR_SIGNING_KEY or MIRROR_SIGNING_KEY_FILE, not both' });
    }
    if (config.MIRROR_CLOUDFRONT_DISTRIBUTION_ID && !config.MIRROR_S3_BUCKET) {
      ctx.addIssue({ code: 'custom', path: ['MIRROR_CLOUDFRONT_DISTRIBUTION_ID'], message: 'needs MIRROR_S3_BUCKET: the distribution serves that bucket' });
    }
  });

export type Settings = z.output<typeof schema>;

/** The settings, with the data paths they imply. */
export interface Config extends Paths {
  settings: Settings;
  /** SQLite file, used when DATABASE_URL is not set. */
  databaseFile: string;
  /** The local issuer's signing key lives here (AUTH_MODE=local). */
  authDir: string;
  /** The fleet CA's certificate and key (mode 0600), created on first use. */
  fleetCaFile: string;
}

export class ConfigError extends Error {
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Every setting the sidecar reads, for `--help` and the README. */
export const SETTING_NAMES = Object.keys(schema.shape) as (keyof Settings)[];

/** Settings whose value is never printed: it is a secret or may hold one. */
const SECRET_SETTINGS = new Set<string>(['DATABASE_URL', 'REDIS_URL', 'GITHUB_CLIENT_SECRET', 'MIRROR_SIGNING_KEY', 'MIRROR_SIGNING_KEY_PASSPHRASE']);

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const fromFile = env.MIRROR_CONFIG ? readConfigFile(env.MIRROR_CONFIG) : {};
  const fromEnv = Object.fromEntries(SETTING_NAMES.filter((name) => env[name] !== undefined && env[name] !== '').map((name) => [name, env[name]]));
  const parsed = schema.safeParse({ ...fromFile, ...fromEnv });
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.') || '(file)'}: ${issue.message}${received(issue.path, { ...fromFile, ...fromEnv })}`));
  }
  const settings = parsed.data;
  const paths = resolvePaths({}, { MIRROR_RELEASES: settings.MIRROR_RELEASES, MIRROR_DATA_DIR: settings.MIRROR_DATA_DIR });
  return { settings, ...paths, databaseFile: path.join(paths.dataDir, 'state.db'), authDir: path.join(paths.dataDir, 'auth'), fleetCaFile: path.join(paths.dataDir, 'fleet', 'ca.json') };
}

/** One line per setting, secrets hidden: passwords in URLs. */
export function describeConfig(config: Config): string {
  return SETTING_NAMES.map((name) => {
    const value = config.settings[name];
    if (value === undefined) return `${name}=(unset)`;
    if (name === 'GITHUB_CLIENT_SECRET' || name === 'MIRROR_SIGNING_KEY' || name === 'MIRROR_SIGNING_KEY_PASSPHRASE') return `${name}=***`;
    return `${name}=${name === 'DATABASE_URL' || name === 'REDIS_URL' ? redactUrl(String(value)) : String(value)}`;
  }).join('\n');
}

function redactUrl(value: string): string {
  const parsed = new URL(value);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError([`MIRROR_CONFIG: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
  try {
    const value: unknown = JSON.parse(text);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('expected a JSON object of settings');
    const unknown = Object.keys(value).filter((key) => !(SETTING_NAMES as string[]).includes(key));
    if (unknown.length > 0) throw new Error(`unknown settings ${unknown.join(', ')}`);
    return value as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError([`MIRROR_CONFIG: ${file}: ${(error as Error).message}`]);
  }
}

/** The value given, for the message; never for settings that may hold a secret. */
function received(issuePath: PropertyKey[], given: Record<string, unknown>): string {
  const name = String(issuePath[0]);
  if (!(name in given) || SECRET_SETTINGS.has(name)) return '';
  return `, got \`${String(given[name])}\``;
}
