// The registry's error shape, `{"error": ..., "details"?: [...]}`, for every 4xx and 5xx under
// /api/v1: thrown RegistryErrors, unknown paths, wrong methods, and unexpected failures (whose
// cause goes to the log, never to the client).
import type { Context, Middleware } from 'koa';

export class RegistryError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: string[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** 400 `Validation failed` with every problem. */
export function validationFailed(details: string[]): RegistryError {
  return new RegistryError(400, 'Validation failed', details);
}

export function sendError(ctx: Context, status: number, error: string, details?: string[]): void {
  ctx.status = status;
  ctx.body = details && details.length > 0 ? { error, details } : { error };
  ctx.set('Cache-Control', 'no-store');
}

export function registryErrors(): Middleware {
  return async function registryErrorsHandler(ctx, next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) sendError(ctx, 404, 'Not found');
      else if (ctx.status === 405 && ctx.body === undefined) sendError(ctx, 405, `Method ${ctx.method} not allowed; use ${ctx.response.get('Allow')}`);
      else if (ctx.status === 501 && ctx.body === undefined) sendError(ctx, 405, `Method ${ctx.method} not allowed`);
    } catch (error) {
      if (error instanceof RegistryError) {
        ctx.set(error.headers);
        sendError(ctx, error.status, error.message, error.details);
        return;
      }
      const status = (error as { status?: unknown; expose?: unknown }).status;
      if (typeof status === 'number' && status >= 400 && status < 500 && (error as { expose?: unknown }).expose) {
        sendError(ctx, status, (error as Error).message);
        return;
      }
      ctx.app.emit('error', error, ctx);
      sendError(ctx, 500, 'Internal server error');
    }
  };
}
