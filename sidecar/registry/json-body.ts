// JSON request bodies (koa-body) for the registry's small POSTs, within a byte limit; every
// refusal in the registry's error shape.
import type { Middleware } from 'koa';
import { koaBody } from 'koa-body';
import compose from 'koa-compose';
import { RegistryError } from './errors.ts';

export function jsonBody({ limitBytes }: { limitBytes: number }): Middleware {
  const parse = koaBody({
    json: true,
    jsonStrict: true,
    jsonLimit: limitBytes,
    urlencoded: false,
    text: false,
    multipart: false,
    onError(error) {
      const status = (error as { status?: unknown }).status;
      if (status === 413) throw new RegistryError(413, `The request body is larger than the limit of ${limitBytes} bytes`);
      throw new RegistryError(400, `Malformed JSON body: ${error.message}`);
    },
  });
  return compose([
    async function requireJsonHandler(ctx, next) {
      if (!ctx.is('application/json')) throw new RegistryError(415, `Expected Content-Type application/json, got '${ctx.get('Content-Type') || 'none'}'`);
      const declared = Number(ctx.get('Content-Length') || NaN);
      if (declared > limitBytes) {
        ctx.set('Connection', 'close');
        throw new RegistryError(413, `The request body is larger than the limit of ${limitBytes} bytes`);
      }
      await next();
    },
    parse,
  ]);
}
