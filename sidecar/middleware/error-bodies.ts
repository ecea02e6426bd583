// Turns thrown errors into the seed-000 error shape: a 4xx says what was wrong, a 5xx only its
// status text. The full error goes to the app's error log.
import type { Middleware } from 'koa';
import { STATUS_CODES } from 'node:http';

export function errorBodies(): Middleware {
  return async function errorBodiesHandler(ctx, next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: 'Not Found', message: 'Not found' };
      }
    } catch (error) {
      const status = statusOf(error);
      if (status >= 500) ctx.app.emit('error', error, ctx);
      ctx.status = status;
      ctx.body = {
        error: STATUS_CODES[status] ?? 'Error',
        message: status < 500 && error instanceof Error ? error.message : 'The server could not complete the request',
      };
    }
  };
}

function statusOf(error: unknown): number {
  const status = (error as { status?: unknown; expose?: unknown })?.status;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}
