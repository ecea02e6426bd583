// One JSON line per request, tied together by a request id the client can pass in and read back.
// Headers and query strings are never logged: both carry tokens. No child logger per request: with
// the redaction paths below, pino builds one in microseconds that a fleet heartbeat cannot spare.
//
// Wiring: first in the chain, so its line covers every other middleware, 429s and errors included.
import type { Middleware } from 'koa';
import { randomUUID } from 'node:crypto';
import { pino, type DestinationStream, type Logger } from 'pino';

export interface LoggerOptions {
  /** Lowest level written: `trace`, `debug`, `info`, `warn`, `error`, `fatal` or `silent`. */
  level?: string;
  /** Where lines go; stdout when absent, which is what a container's log collector reads. */
  destination?: DestinationStream;
}

export interface RequestLogOptions {
  /** Where the request lines go. */
  logger: Logger;
}

/** Field paths censored wherever a caller logs an object holding them. */
const REDACTED = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-agent-token"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.authorization',
  '*.cookie',
  'token',
  '*.token',
  'password',
  '*.password',
  'secret',
  '*.secret',
  '*.accessKeyId',
  '*.secretAccessKey',
  'credentials',
  '*.credentials',
];

const VALID_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function createLogger({ level = 'info', destination }: LoggerOptions = {}): Logger {
  return pino({ level, redact: { paths: REDACTED, censor: '[Redacted]' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

export function requestLog({ logger }: RequestLogOptions): Middleware {
  // A request line is made of the fields below and nothing else, none of them secret: it skips the
  // redaction pass, which took about 40 % of the line's cost (pino 10, @pinojs/redact).
  const lines = logger.child({}, { redact: [] });
  return async function requestLogHandler(ctx, next) {
    const started = process.hrtime.bigint();
    const incoming = ctx.get('X-Request-Id');
    const reqId = VALID_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    ctx.set('X-Request-Id', reqId);
    // Read now: once a TLS connection has closed, its socket no longer knows the peer's address.
    const ip = ctx.ip;
    // Logged on close rather than after `next()`: the status Koa sends for a thrown error and the
    // time spent streaming the body are only known then.
    ctx.res.once('close', () => {
      const length = ctx.method === 'HEAD' ? 0 : Number(ctx.res.getHeader('Content-Length'));
      const line = {
        method: ctx.method,
        path: ctx.path,
        status: ctx.res.statusCode,
        durationMs: Math.round(Number(process.hrtime.bigint() - started) / 1e3) / 1e3,
        bytes: Number.isFinite(length) ? length : undefined,
        ip,
        aborted: ctx.res.writableFinished ? undefined : true,
      };
      // 503 is an answer the contracts give on purpose (not ready, agent offline), not a failure of ours.
      if (line.status === 503) lines.warn({ reqId, ...line }, 'request refused: service unavailable');
      else if (line.status >= 500) lines.error({ reqId, ...line }, 'request failed');
      else if (lines.isLevelEnabled('info')) lines.info({ reqId, ...line }, 'request completed');
    });
    try {
      await next();
    } catch (error) {
      keepRequestIdOnError(error, reqId);
      throw error;
    }
  };
}

/** Koa's default error response drops every header except the error's own `headers`. */
function keepRequestIdOnError(error: unknown, reqId: string): void {
  if (typeof error !== 'object' || error === null) return;
  const carrier = error as { headers?: Record<string, string> };
  carrier.headers = { ...carrier.headers, 'X-Request-Id': reqId };
}
