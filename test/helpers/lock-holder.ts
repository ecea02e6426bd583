// A process that takes one lock and says so on stdout: `held`, then either holds until killed
// (`forever`) or blocks its own event loop for the given milliseconds (a live holder too busy to
// answer anything), releases and says `released`. Arguments: file|postgres, dir or URL, name, mode.
import { openLocks } from '../../generator/stores/locks.ts';

const [backend, where, name, mode] = process.argv.slice(2);
// Started with --expose-gc: collect often, so a lock that only an unreachable object keeps is lost at once.
const collect = (globalThis as { gc?: () => void }).gc;
if (collect) setInterval(collect, 50).unref();
const locks = await openLocks(backend === 'postgres' ? { url: where!, dir: '' } : { dir: where! });
await locks.withLock(name!, async () => {
  process.stdout.write('held\n');
  // Until killed: the timer keeps the process alive; the section awaits a promise nothing
  // references, which a lock must hold through too.
  if (mode === 'forever') {
    setInterval(() => undefined, 60_000);
    await new Promise(() => undefined);
  }
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(mode));
});
process.stdout.write('released\n');
