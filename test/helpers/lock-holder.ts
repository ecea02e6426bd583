// A process that takes one lock and says so on stdout: `held`, then either holds until killed
// (`forever`) or blocks its own event loop for the given milliseconds (a live holder too busy to
// answer anything), releases and says `released`. Arguments: file|postgres, dir or URL, name, mode.
import { openLocks } from '../../generator/stores/locks.ts';

const [backend, where, name, mode] = process.argv.slice(2);
const locks = await openLocks(backend === 'postgres' ? { url: where!, dir: '' } : { dir: where! });
await locks.withLock(name!, async () => {
  process.stdout.write('held\n');
  if (mode === 'forever') await new Promise(() => setInterval(() => undefined, 60_000));
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(mode));
});
process.stdout.write('released\n');
