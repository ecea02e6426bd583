// The serving rows' floor for a Koa server: one handler, no middleware, answering the JSON index
// from memory with its Content-Type and Cache-Control, and the redirect with its Location.
// `node --import tsx scripts/bench/bare-koa.ts PORT JSON_FILE JSON_PATH REDIRECT_URL LOCATION`
import { readFile } from 'node:fs/promises';
import Koa from 'koa';

const [port, jsonFile, jsonPath, redirectUrl, location] = process.argv.slice(2) as [string, string, string, string, string];
const json = await readFile(jsonFile);
const app = new Koa();
app.use(function bareHandler(ctx) {
  if (ctx.path === jsonPath) {
    ctx.type = 'application/json';
    ctx.set('Cache-Control', 'public, max-age=60');
    ctx.body = json;
  } else if (ctx.url === redirectUrl) {
    ctx.status = 302;
    ctx.set('Location', location);
    ctx.set('Cache-Control', 'public, max-age=60');
    ctx.type = 'text/plain';
    ctx.body = `Redirecting to ${location}\n`;
  }
});
app.listen(Number(port), '127.0.0.1');
