// Fixed-window request limits, counted in memory or in Redis so every sidecar process shares them.
// Each applicable rule counts the request; the headers report the most restrictive one.
//
// Wiring: put it after the auth middleware that sets `ctx.state.principal` (perUser reads it) and
// after the health routes (probes must never be limited). perIp keys on `ctx.ip`: behind a proxy
// set `app.proxy = true` and `app.maxIpsCount` to the number of trusted proxies (TRUSTED_PROXIES),
// otherwise X-Forwarded-For is ignored, as it should be when any client can write it.
import type { Context, Middleware } from 'koa';
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts, type RateLimiterLike } from 'rate-limiter-flexible';

export interface RateLimitRule {
  /** Names the rule inside the store's keys; unique within one `rateLimit()`. */
  name: string;
  /** Requests allowed per window: a positive integer. */
  points: number;
  /** Window length in seconds, counted from a key's first request: a positive integer. */
  durationSeconds: number;
  /** Who the request counts against; undefined when the rule does not apply to this request. */
  key(ctx: Context): string | undefined;
}

export interface RateLimitOptions {
  /** Every rule whose key is defined counts the request. */
  rules: RateLimitRule[];
  /**
   * Shares counts across processes. Give the limiter its own connection, ready before the first
   * request (until then counts stay in memory): it takes ownership and `close()` disconnects it.
   * Attach an `error` listener to log connection trouble.
   */
  redis?: Redis;
  /** Namespaces keys in Redis, so environments sharing one server do not count together. */
  keyPrefix?: string;
  /** Longest wait for Redis before the in-memory limiter answers instead. */
  redisTimeoutMs?: number;
  /** Told of each request counted while the Redis connection is down (by this process alone). */
  onDegraded?: () => void;
  /** Body of a 429; by default the error shape of the site's other error bodies. */
  body?: (ctx: Context, retryAfterSeconds: number, rule: RateLimitRule) => unknown;
}

/** A Koa middleware that also releases the Redis connection it was given. */
export type RateLimitMiddleware = Middleware & { close(): Promise<void> };

export function rateLimit({ rules, redis, keyPrefix = 'ratelimit', redisTimeoutMs = 250, onDegraded, body = defaultBody }: RateLimitOptions): RateLimitMiddleware {
  validate(rules);
  const limiters = rules.map((rule) => ({ rule, limiter: limiterFor(rule, `${keyPrefix}:${rule.name}`, redis, redisTimeoutMs) }));

  async function rateLimitHandler(ctx: Context, next: () => Promise<unknown>): Promise<void> {
    const applicable = limiters.flatMap(({ rule, limiter }) => {
      const key = rule.key(ctx);
      return key ? [{ rule, counted: count(limiter, key) }] : [];
    });
    if (applicable.length === 0) {
      await next();
      return;
    }
    if (redis && redis.status !== 'ready') onDegraded?.();
    const outcomes = await Promise.all(applicable.map(async ({ rule, counted }) => ({ rule, ...(await counted) })));
    const rejected = outcomes.filter((outcome) => !outcome.allowed);
    const reported = rejected.length > 0 ? longestWait(rejected) : mostRestrictive(outcomes);
    const headers = {
      'X-RateLimit-Limit': String(reported.rule.points),
      'X-RateLimit-Remaining': String(reported.res.remainingPoints),
      'X-RateLimit-Reset': String(secondsUntil(reported.res)),
    };
    ctx.set(headers);
    if (rejected.length > 0) {
      const retryAfter = Math.max(1, secondsUntil(reported.res));
      ctx.status = 429;
      ctx.set('Retry-After', String(retryAfter));
      ctx.body = body(ctx, retryAfter, reported.rule);
      return;
    }
    try {
      await next();
    } catch (error) {
      keepHeadersOnError(error, headers);
      throw error;
    }
  }

  return Object.assign(rateLimitHandler, {
    // disconnect, not quit: quit waits for a reply a hung Redis never sends, and a drained server has
    // no count in flight.
    async close() {
      redis?.disconnect();
    },
  });
}

/** Counts against `ctx.ip`, which trusts X-Forwarded-For only as far as `app.proxy` and `app.maxIpsCount` allow. */
export function perIp({ points, durationSeconds }: { points: number; durationSeconds: number }): RateLimitRule {
  return { name: 'ip', points, durationSeconds, key: (ctx) => ctx.ip || undefined };
}

/** Counts against the authenticated subject; needs the auth middleware to run first. */
export function perUser({ points, durationSeconds }: { points: number; durationSeconds: number }): RateLimitRule {
  return {
    name: 'user',
    points,
    durationSeconds,
    key: authenticatedSubject,
  };
}

/** The subject the auth middleware put in `ctx.state.principal`, or undefined for an anonymous request. */
export function authenticatedSubject(ctx: Context): string | undefined {
  const sub = (ctx.state as { principal?: { sub?: unknown } }).principal?.sub;
  return typeof sub === 'string' && sub !== '' ? sub : undefined;
}

interface Outcome {
  rule: RateLimitRule;
  allowed: boolean;
  res: RateLimiterRes;
}

function limiterFor(rule: RateLimitRule, keyPrefix: string, redis: Redis | undefined, timeoutMs: number): RateLimiterLike {
  const memory = new RateLimiterMemory({ keyPrefix, points: rule.points, duration: rule.durationSeconds });
  if (!redis) return memory;
  // In-memory insurance rather than failing open: during a Redis outage each process still enforces the limit.
  const shared = new RateLimiterRedis({ storeClient: redis, keyPrefix, points: rule.points, duration: rule.durationSeconds, rejectIfRedisNotReady: true });
  // The wrapper alone holds the insurance, so a late Redis failure after a timeout is not counted twice;
  // the timeout covers a connection that is up but not answering, which would otherwise wait for TCP.
  return new RLWrapperTimeouts({ limiter: shared, timeoutMs, insuranceLimiter: memory });
}

async function count(limiter: RateLimiterLike, key: string): Promise<Omit<Outcome, 'rule'>> {
  try {
    return { allowed: true, res: await limiter.consume(key) };
  } catch (reason) {
    if (reason instanceof RateLimiterRes) return { allowed: false, res: reason };
    throw reason;
  }
}

function mostRestrictive(outcomes: Outcome[]): Outcome {
  return outcomes.reduce((a, b) => (b.res.remainingPoints < a.res.remainingPoints ? b : a));
}

/** Among exhausted rules, the client must wait for the last one to reset. */
function longestWait(outcomes: Outcome[]): Outcome {
  return outcomes.reduce((a, b) => (b.res.msBeforeNext > a.res.msBeforeNext ? b : a));
}

function secondsUntil(res: RateLimiterRes): number {
  return Math.max(0, Math.ceil(res.msBeforeNext / 1000));
}

function defaultBody(_ctx: Context, retryAfterSeconds: number, rule: RateLimitRule): unknown {
  return {
    error: 'Too Many Requests',
    message: `Rate limit of ${rule.points} requests per ${rule.durationSeconds} s exceeded; retry in ${retryAfterSeconds} s`,
  };
}

/** Koa's default error response drops every header except the error's own `headers`. */
function keepHeadersOnError(error: unknown, headers: Record<string, string>): void {
  if (typeof error !== 'object' || error === null) return;
  const carrier = error as { headers?: Record<string, string> };
  carrier.headers = { ...headers, ...carrier.headers };
}

function validate(rules: RateLimitRule[]): void {
  const names = new Set<string>();
  for (const rule of rules) {
    if (!Number.isInteger(rule.points) || rule.points < 1) throw new TypeError(`Expected \`points\` of rule \`${rule.name}\` to be a positive integer, got \`${rule.points}\``);
    if (!Number.isInteger(rule.durationSeconds) || rule.durationSeconds < 1) throw new TypeError(`Expected \`durationSeconds\` of rule \`${rule.name}\` to be a positive integer, got \`${rule.durationSeconds}\``);
    if (names.has(rule.name)) throw new TypeError(`Expected rule names to be unique, got \`${rule.name}\` twice`);
    names.add(rule.name);
  }
}
