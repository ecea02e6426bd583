// Prometheus metrics on a registry of their own, so two apps in one process (tests, say) do not
// clash over metric names. `/metrics` is served by routes/health.ts.
//
// Wiring: `app.use(metrics.middleware())` early, before the routes and the rate limiter, so 429s
// and errors are counted too.
import type { Middleware } from 'koa';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { isUploadPath } from './routes/binary-upload.ts';

export interface MetricsOptions {
  /**
   * First path segments that name a part of the site; a request elsewhere is labelled `other`.
   * Labels must stay few: every distinct value is a time series kept forever.
   */
  routePrefixes?: string[];
}

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  /**
   * Every POST to an upload path, counted once when its connection closes, whichever part answered
   * (the rate limits, the token check or the upload itself): `result` is `created`, `refused`
   * (with a `reason`: auth, too_large, invalid, conflict, rate_limited), `failed` (5xx) or
   * `aborted` (the client left before an answer); `reason` is empty but for refusals.
   */
  uploads: Counter<'result' | 'reason'>;
  /** Observed by whoever rebuilds the site. */
  rebuildDuration: Histogram;
  /** Deploys to S3 and CloudFront after a rebuild: `result` is `ok` or `failed`. */
  remotePublishes: Counter<'result'>;
  /** Registry publishes: `result` is `published`, `refused` or `failed`. */
  registryPublishes: Counter<'result'>;
  /** Registry telemetry reports: `stored` is `yes`, or `no` for an agent the registry does not list. */
  registryTelemetry: Counter<'stored'>;
  /** Records every request's count and duration under a bounded `route` label. */
  middleware(): Middleware;
}

const DEFAULT_PREFIXES = ['binary', 'v2', 'api', 'healthz', 'readyz', 'metrics'];

export function createMetrics({ routePrefixes = DEFAULT_PREFIXES }: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const httpRequests = new Counter({ name: 'http_requests_total', help: 'HTTP requests answered', labelNames: ['method', 'route', 'status'] as const, registers });
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request to the last byte of the response',
    labelNames: ['method', 'route'] as const,
    // Up to a minute: artifact downloads stream for a long time.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const uploads = new Counter({ name: 'uploads_total', help: 'Artifact uploads by result, and refusals by reason', labelNames: ['result', 'reason'] as const, registers });
  const remotePublishes = new Counter({ name: 'site_remote_publishes_total', help: 'Deploys of the site to S3 and CloudFront by result', labelNames: ['result'] as const, registers });
  const rebuildDuration = new Histogram({ name: 'site_rebuild_duration_seconds', help: 'Time to rebuild the site', buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers });
  const registryPublishes = new Counter({ name: 'registry_publishes_total', help: 'Agent package publishes by result', labelNames: ['result'] as const, registers });
  const registryTelemetry = new Counter({ name: 'registry_telemetry_reports_total', help: 'Telemetry reports by whether they were stored', labelNames: ['stored'] as const, registers });
  const known = new Set(routePrefixes);

  function middleware(): Middleware {
    return async function metricsHandler(ctx, next) {
      const stopTimer = httpDuration.startTimer();
      // Recorded on close: the status of a thrown error and the streaming time are only known then.
      ctx.res.once('close', () => {
        const route = routeOf(ctx, known);
        stopTimer({ method: ctx.method, route });
        httpRequests.inc({ method: ctx.method, route, status: String(ctx.res.statusCode) });
        if (ctx.method === 'POST' && isUploadPath(ctx.path)) uploads.inc(uploadOutcome(ctx.res.writableFinished ? ctx.res.statusCode : undefined));
      });
      await next();
    };
  }

  return { registry, httpRequests, httpDuration, uploads, rebuildDuration, remotePublishes, registryPublishes, registryTelemetry, middleware };
}

/** An upload's labels from the status it was answered with; undefined when it was never answered. */
function uploadOutcome(status: number | undefined): { result: string; reason: string } {
  if (status === undefined) return { result: 'aborted', reason: '' };
  if (status < 400) return { result: 'created', reason: '' };
  if (status >= 500) return { result: 'failed', reason: '' };
  const reason = status === 401 || status === 403 ? 'auth' : status === 413 ? 'too_large' : status === 409 ? 'conflict' : status === 429 ? 'rate_limited' : 'invalid';
  return { result: 'refused', reason };
}

/** @koa/router's matched pattern when a router answered, else `/<known prefix>`, `/` or `other`; never the raw path. */
function routeOf(ctx: { path: string }, known: Set<string>): string {
  const matched = (ctx as { _matchedRoute?: unknown })._matchedRoute;
  if (typeof matched === 'string') return matched;
  const segment = ctx.path.split('/')[1] ?? '';
  if (segment === '') return '/';
  return known.has(segment) ? `/${segment}` : 'other';
}
