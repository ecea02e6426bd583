// A request refused before its body was read: the rest of the body is read and dropped, within
// limits, before the answer goes out. A client still sending when the server answers and closes
// gets a reset connection instead of the answer (EPIPE, ECONNRESET); one whose body has arrived
// reads the answer, and the connection can carry its next request.
import type { IncomingMessage } from 'node:http';

/** Past this much body, or this long, the connection is closed instead. */
export const DRAIN_LIMITS = { bytes: 1024 * 1024, ms: 5_000 };

/** True once the whole body has arrived (and been dropped); false when the limits ran out, the body broke, or it could not be read. */
export function drainBody(req: IncomingMessage, limits = DRAIN_LIMITS): Promise<boolean> {
  if (req.readableEnded) return Promise.resolve(true);
  if (req.destroyed) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    let received = 0;
    const done = (ended: boolean) => {
      clearTimeout(timer);
      req.off('data', count);
      req.off('end', ended_);
      req.off('error', failed);
      req.off('close', closed);
      if (!ended) req.pause();
      resolve(ended);
    };
    const count = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limits.bytes) done(false);
    };
    const ended_ = () => done(true);
    const failed = () => done(false);
    const closed = () => done(req.readableEnded);
    const timer = setTimeout(() => done(false), limits.ms);
    req.on('data', count);
    req.once('end', ended_);
    req.once('error', failed);
    req.once('close', closed);
    req.resume();
  });
}
