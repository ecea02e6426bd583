// Liveness, readiness and Prometheus metrics for the orchestrator and the scraper.
//
// Wiring: before the rate limiter and auth, so probes and scrapes are never limited or refused.
// /readyz shows check error messages and /metrics internals: keep both off the public listener
// or behind the edge's allow-list.
import type { Context, Middleware } from 'koa';
import type { Metrics } from '../metrics.ts';

export interface HealthRoutesOptions {
  /** Dependencies the replica cannot serve without (database, blob store, site); a rejection answers 503. */
  checks: Record<string, () => Promise<void>>;
  /** Dependencies that fail open (Redis, the remote target); a rejection answers 200, `degraded`, naming them. */
  degradable?: Record<string, () => Promise<void>>;
  /** Whose registry /metrics serves. */
  metrics: Metrics;
  /** Facts shown beside the checks in /readyz, such as certificate expiries. */
  details?: () => Record<string, unknown>;
  /** How long each check may take before it counts as failed. */
  checkTimeoutMs?: number;
}

export function healthRoutes({ checks, degradable = {}, metrics, details, checkTimeoutMs = 2_000 }: HealthRoutesOptions): Middleware {
  return async function healthHandler(ctx, next) {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    switch (ctx.path) {
      case '/healthz':
        return answer(ctx, 200, { status: 'ok' });
      case '/readyz': {
        const [required, optional] = await Promise.all([runChecks(checks, checkTimeoutMs), runChecks(degradable, checkTimeoutMs)]);
        const ready = Object.values(required).every((result) => result === 'ok');
        const degraded = Object.keys(optional).filter((name) => optional[name] !== 'ok');
        const status = !ready ? 'unavailable' : degraded.length > 0 ? 'degraded' : 'ready';
        return answer(ctx, ready ? 200 : 503, { status, checks: { ...required, ...optional }, ...(degraded.length > 0 ? { degraded } : {}), ...(details ? { details: details() } : {}) });
      }
      case '/metrics':
        ctx.set('Cache-Control', 'no-store');
        ctx.type = metrics.registry.contentType;
        ctx.body = await metrics.registry.metrics();
        return;
      default:
        return next();
    }
  };
}

function answer(ctx: Context, status: number, body: unknown): void {
  ctx.set('Cache-Control', 'no-store');
  ctx.status = status;
  ctx.body = body;
}

/** Runs every check at once; each reports `ok` or why it failed. */
async function runChecks(checks: Record<string, () => Promise<void>>, timeoutMs: number): Promise<Record<string, string>> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await withTimeout(check(), timeoutMs);
        return [name, 'ok'] as const;
      } catch (error) {
        return [name, error instanceof Error ? error.message : String(error)] as const;
      }
    }),
  );
  return Object.fromEntries(entries);
}

function withTimeout(work: Promise<void>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
