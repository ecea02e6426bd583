// The sidecar's build thread: runs the generator's build (load, render, sign, publish) off the
// server's event loop, so requests are answered while a large site is rebuilt. It gets plain data
// (paths, and where to read the signing keys) and answers with the build report or the error.
import { parentPort, workerData } from 'node:worker_threads';
import { build, createBuildMemory, rehearse, type BuildMemory, type BuildReport } from '../generator/pipeline.ts';
import { loadSigning, type SigningEnv } from '../generator/trust/index.ts';

export interface BuildRequest {
  id: number;
  releasesDir: string;
  site: string;
  /** Read again for each build, so `mirror keys create` and `retire` apply without a restart; unsigned without. */
  signing?: { dataDir: string; settings: SigningEnv } | undefined;
}

/** What the worker is started with: the site it will build, which its rehearsal loads and renders into its memory. */
export type BuildTarget = Pick<BuildRequest, 'releasesDir' | 'site'>;

export type BuildAnswer = { id: number; report: BuildReport } | { id: number; error: { name: string; message: string; stack?: string | undefined } } | { ready: true };

const port = parentPort;
if (!port) throw new Error('sidecar/build-worker runs as a worker thread, started by the publisher');

// What each build keeps for the next of the same site: it loads and renders only what changed.
const memories = new Map<string, BuildMemory>();
const memoryOf = ({ releasesDir, site }: BuildTarget): BuildMemory => {
  const key = `${releasesDir}\n${site}`;
  return memories.get(key) ?? memories.set(key, createBuildMemory()).get(key)!;
};

// A build that arrives while the rehearsal runs waits for it: it would compile the same code and
// render the same units. The publisher waits for `ready` before it takes the build lock, so no
// other process waits on a rehearsal.
const target = workerData as BuildTarget | undefined;
const warm = rehearse(target && { ...target, memory: memoryOf(target) }).catch(() => undefined);
void warm.then(() => port.postMessage({ ready: true } satisfies BuildAnswer));

port.on('message', (request: BuildRequest) => {
  void answer(request).then((message) => port.postMessage(message));
});

async function answer({ id, releasesDir, site, signing }: BuildRequest): Promise<BuildAnswer> {
  await warm;
  try {
    const memory = memoryOf({ releasesDir, site });
    const report = await build({ releasesDir, site, checkCloudFront: false, signing: signing ? await loadSigning(signing.dataDir, signing.settings) : undefined }, memory);
    return { id, report };
  } catch (error) {
    const { name, message, stack } = error instanceof Error ? error : new Error(String(error));
    return { id, error: { name, message, stack } };
  }
}
