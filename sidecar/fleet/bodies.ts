// What each fleet request may carry, as zod schemas: the seed's fields and the capability
// vocabulary. A refused body is a 400 naming every problem, and changes nothing.
import { z } from 'zod';
import { FleetError } from './errors.ts';

export const CAPABILITIES = ['docker', 'compose', 'ssh', 'winrm', 'ecs', 'nomad'] as const;
export type Capability = (typeof CAPABILITIES)[number];

const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62}[A-Za-z0-9])?$/;
const MAX_LOG_ENTRIES = 1_000;

const capabilities = z.array(z.enum(CAPABILITIES)).max(CAPABILITIES.length).refine((list) => new Set(list).size === list.length, 'must not repeat a capability');
export const labels = z
  .record(z.string().regex(LABEL_KEY, 'label keys are letters, digits and . _ / -, up to 64'), z.string().max(256))
  .refine((map) => Object.keys(map).length <= 64, 'at most 64 labels');
const percent = z.number().min(0).max(100);
const jsonObject = z.record(z.string(), z.unknown());
const logEntry = z.object({
  timestamp: z.iso.datetime({ offset: true }).optional(),
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  message: z.string().max(16 * 1024),
});
export type TaskLogEntry = z.output<typeof logEntry>;

// Agents' bodies ignore fields they do not know, so a newer agent works with an older mirror;
// operators' bodies refuse them, so a misspelt field is not silently dropped.
export const registerBody = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1 to 63 letters, digits and . _ -, starting with a letter or digit'),
  version: z.string().min(1).max(64),
  capabilities,
  labels: labels.default({}),
});

export const updateBody = z
  .strictObject({ labels: labels.optional(), capabilities: capabilities.optional() })
  .refine((body) => body.labels !== undefined || body.capabilities !== undefined, 'expected `labels` or `capabilities` to change');

export const heartbeatBody = z.object({
  status: z.string().regex(/^[a-z][a-z_-]{0,31}$/, 'must be a lower-case word such as healthy or degraded'),
  resourceUsage: z.object({ cpu: percent.optional(), memory: percent.optional(), disk: percent.optional() }).default({}),
  capabilities: capabilities.optional(),
  runningTasks: z.int().min(0).max(100_000).default(0),
});

export const taskBody = z.strictObject({
  taskType: z.string().regex(/^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/, 'must be dotted lower-case words such as docker.pull').max(64),
  payload: jsonObject.default({}),
  credentials: z.record(z.string(), z.string()).default({}),
  timeout: z.int().min(1).max(7 * 86_400).default(300),
  priority: z.int().min(0).max(1_000).default(0),
});

export const completeBody = z.object({
  success: z.boolean(),
  result: z.unknown().optional(),
  logs: z.array(logEntry).max(MAX_LOG_ENTRIES).default([]),
  /** The attempt being completed, as delivered; without it, the agent's current lease. */
  leaseId: z.string().min(1).max(64).optional(),
});

export const registrationTokenBody = z.strictObject({
  ttlSeconds: z.int().min(60).max(30 * 86_400).default(86_400),
  labels: labels.default({}),
});

/** Messages an agent sends on its task stream. */
export const streamMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('task_progress'), taskId: z.string(), progress: z.number().min(0).max(100), message: z.string().max(4096).optional(), leaseId: z.string().optional() }),
  z.object({ type: z.literal('task_log'), taskId: z.string(), level: logEntry.shape.level, message: z.string().max(16 * 1024), timestamp: logEntry.shape.timestamp, leaseId: z.string().optional() }),
]);

/** The body parsed by `schema`, or a 400 that lists every problem with where it is. */
export function parse<T extends z.ZodType>(schema: T, body: unknown, what = 'body'): z.output<T> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  throw new FleetError('invalid_request', problems(parsed.error, what));
}

export function problems(error: z.ZodError, what: string): string {
  return `Invalid ${what}: ${error.issues.map((issue) => `${issue.path.length > 0 ? `\`${issue.path.join('.')}\` ` : ''}${issue.message}`).join('; ')}`;
}

export { MAX_LOG_ENTRIES };
