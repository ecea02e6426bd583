// The publisher's side of the build thread: one worker (sidecar/build-worker.ts), started with the
// publisher and kept, so a rebuild runs off the event loop and the first upload does not pay for
// starting a thread and compiling the generator (about a third of a second). A worker that crashes
// or exits fails the build under way, like a build error; the next build starts another.
import { Worker } from 'node:worker_threads';
import type { BuildReport } from '../generator/pipeline.ts';
import { packagePath } from '../generator/package-root.ts';
import type { BuildAnswer, BuildRequest, BuildTarget, RemoteSettings } from './build-worker.ts';

export interface BuildThread {
  /** Resolves once the worker has compiled the generator and rendered its target (its rehearsal), or has failed: a build started then runs at once. */
  ready(): Promise<void>;
  build(request: Omit<BuildRequest, 'id' | 'remote'>): Promise<BuildReport>;
  /** Deploys the store to S3 (and CloudFront) in the worker, rendering only what changed since its last build. */
  deploy(request: Omit<BuildRequest, 'id'> & { remote: RemoteSettings }): Promise<void>;
  /** Stops the worker; a build under way fails. */
  close(): Promise<void>;
}

interface Waiting {
  resolve(report: BuildReport | undefined): void;
  reject(error: Error): void;
}

/** With `target`, each worker's rehearsal loads and renders that site's store, so its first build renders only what changed since. */
export function createBuildThread(target?: BuildTarget): BuildThread {
  let current: { worker: Worker; waiting: Map<number, Waiting>; ready: Promise<void> } | undefined;
  let lastId = 0;
  const start = () => {
    const worker = startWorker(target);
    const waiting = new Map<number, Waiting>();
    let warmed!: () => void;
    const ready = new Promise<void>((resolve) => (warmed = resolve));
    const started = { worker, waiting, ready };
    // Idle, the worker holds no process open; with a build under way it does, like the build would.
    worker.unref();
    worker.on('message', (answer: BuildAnswer) => {
      if ('ready' in answer) return warmed();
      const build = waiting.get(answer.id);
      if (!build) return;
      waiting.delete(answer.id);
      if (waiting.size === 0) worker.unref();
      if ('error' in answer) build.reject(revive(answer.error));
      else build.resolve(answer.report);
    });
    const fail = (error: Error) => {
      warmed();
      if (current === started) current = undefined;
      for (const build of waiting.values()) build.reject(error);
      waiting.clear();
    };
    worker.on('error', (error) => fail(new Error(`the build worker failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => fail(new Error(`the build worker exited with code ${code}`)));
    return started;
  };
  const send = (request: Omit<BuildRequest, 'id'>) => {
    current ??= start();
    const { worker, waiting } = current;
    const id = ++lastId;
    return new Promise<BuildReport | undefined>((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ ...request, id } satisfies BuildRequest);
    });
  };
  current = start();
  return {
    ready() {
      current ??= start();
      return current.ready;
    },
    async build(request) {
      return (await send(request))!;
    },
    async deploy(request) {
      await send(request);
    },
    async close() {
      const stopping = current;
      current = undefined;
      await stopping?.worker.terminate();
    },
  };
}

/**
 * Compiled, the worker is dist/build-worker.js (scripts/build.js emits it beside the CLI's entry).
 * From the TypeScript sources it needs tsx, registered inside the thread through tsx's API: Node
 * 20's workers do not run the parent's `--import tsx`, and `npm run dev` registers tsx in-process.
 */
function startWorker(target: BuildTarget | undefined): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(packagePath('dist', 'build-worker.js'), { workerData: target });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./build-worker.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`, { eval: true, workerData: target });
}

/** The worker's error as an Error of this thread, with the worker's name, message and stack. */
function revive({ name, message, stack }: Extract<BuildAnswer, { error: unknown }>['error']): Error {
  const error = new Error(message);
  error.name = name;
  if (stack) error.stack = stack;
  return error;
}
