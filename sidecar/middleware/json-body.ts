// JSON request bodies (koa-body) for an API's small POSTs and PUTs, within a byte limit; every
// refusal (415, 413, malformed JSON) is thrown as the API's own error, so it answers in its shape.
import type { Middleware } from 'koa';
import { koaBody } from 'koa-body';
import compose from 'koa-compose';

export interface JsonBodyOptions {
  limitBytes: number;
  /** The API's error for a status and message: 400, 413 or 415. */
  refuse: (status: 400 | 413 | 415, message: string) => Error;
}

export function jsonBody({ limitBytes, refuse }: JsonBodyOptions): Middleware {
  const tooLarge = `The request body is larger than the limit of ${limitBytes} bytes`;
  const parse = koaBody({
    json: true,
    jsonStrict: true,
    jsonLimit: limitBytes,
    urlencoded: false,
    text: false,
    multipart: false,
    onError(error) {
      const status = (error as { status?: unknown }).status;
      if (status === 413) throw refuse(413, tooLarge);
      throw refuse(400, `Malformed JSON body: ${error.message}`);
    },
  });
  return compose([
    async function requireJsonHandler(ctx, next) {
      if (!ctx.is('application/json')) throw refuse(415, `Expected Content-Type application/json, got '${ctx.get('Content-Type') || 'none'}'`);
      const declared = Number(ctx.get('Content-Length') || NaN);
      if (declared > limitBytes) {
        ctx.set('Connection', 'close');
        throw refuse(413, tooLarge);
      }
      await next();
    },
    parse,
  ]);
}
