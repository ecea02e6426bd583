// The fleet's error shape, `{"error": code, "message": text}`, for every 4xx and 5xx of the fleet
// listener: thrown FleetErrors, unknown paths, wrong methods, bodies koa-body refused, and
// unexpected failures (whose cause goes to the log, never to the client).
import type { Context, Middleware } from 'koa';

/** The seed's status codes, each with the code clients branch on. */
export const FLEET_ERRORS = {
  invalid_request: 400,
  invalid_registration_token: 401,
  unauthorized: 401,
  forbidden: 403,
  agent_not_found: 404,
  task_not_found: 404,
  not_found: 404,
  method_not_allowed: 405,
  name_taken: 409,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  upgrade_required: 426,
  agent_offline: 503,
  internal_error: 500,
} as const;

export type FleetErrorCode = keyof typeof FLEET_ERRORS;

export class FleetError extends Error {
  readonly status: number;

  constructor(
    readonly code: FleetErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'FleetError';
    this.status = FLEET_ERRORS[code];
  }
}

export function sendFleetError(ctx: Context, code: FleetErrorCode, message: string): void {
  ctx.status = FLEET_ERRORS[code];
  ctx.body = { error: code, message };
  ctx.set('Cache-Control', 'no-store');
}

export function fleetErrors(): Middleware {
  return async function fleetErrorsHandler(ctx, next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) sendFleetError(ctx, 'not_found', `No fleet endpoint at ${ctx.method} ${ctx.path}`);
      else if (ctx.status === 405 && ctx.body === undefined) sendFleetError(ctx, 'method_not_allowed', `Method ${ctx.method} not allowed; use ${ctx.response.get('Allow')}`);
      else if (ctx.status === 501 && ctx.body === undefined) sendFleetError(ctx, 'method_not_allowed', `Method ${ctx.method} not allowed`);
    } catch (error) {
      if (error instanceof FleetError) {
        ctx.set(error.headers);
        sendFleetError(ctx, error.code, error.message);
        return;
      }
      // koa-body's refusals: malformed JSON (400), too large (413), wrong type (415).
      const { status, expose } = error as { status?: unknown; expose?: unknown };
      if (status === 413) return sendFleetError(ctx, 'payload_too_large', (error as Error).message);
      if (status === 415) return sendFleetError(ctx, 'unsupported_media_type', (error as Error).message);
      if (typeof status === 'number' && status >= 400 && status < 500 && expose) return sendFleetError(ctx, 'invalid_request', (error as Error).message);
      ctx.app.emit('error', error, ctx);
      sendFleetError(ctx, 'internal_error', 'Internal server error');
    }
  };
}
