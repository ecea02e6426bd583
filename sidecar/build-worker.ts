// The sidecar's build thread: runs the generator's build (load, render, sign, publish) and its
// deploy to S3 and CloudFront off the server's event loop, so requests are answered while a large
// site is rebuilt or deployed. It gets plain data (paths, where to read the signing keys, the
// remote's names) and answers with the build report or the error.
import { parentPort, workerData } from 'node:worker_threads';
import { build, createBuildMemory, deploy, rehearse, type BuildMemory, type BuildReport } from '../generator/pipeline.ts';
import { createCloudFrontTarget } from '../generator/publish/cloudfront/cloudfront-target.ts';
import { spareBuilds } from '../generator/publish/local-dir.ts';
import { createS3Target } from '../generator/publish/s3-target.ts';
import { createFsBlobStore } from '../generator/stores/blob-fs.ts';
import { loadSigning, type SigningEnv } from '../generator/trust/index.ts';

/** Where a remote deploy goes: the bucket (credentials and endpoint from the process's AWS_* environment) and, optionally, the distribution in front of it. */
export interface RemoteSettings {
  /** The blob store the artifacts are uploaded from. */
  blobsDir: string;
  bucket: string;
  prefix?: string | undefined;
  region?: string | undefined;
  distributionId?: string | undefined;
  kvsArn?: string | undefined;
}

export interface BuildRequest {
  id: number;
  releasesDir: string;
  site: string;
  /** Read again for each build, so `mirror keys create` and `retire` apply without a restart; unsigned without. */
  signing?: { dataDir: string; settings: SigningEnv } | undefined;
  /** Deploy the store to this remote instead of publishing it to the local site (whose load cache and memory it shares). */
  remote?: RemoteSettings | undefined;
}

/** What the worker is started with: the site it will build, which its rehearsal loads and renders into its memory. */
export type BuildTarget = Pick<BuildRequest, 'releasesDir' | 'site'>;

export type BuildAnswer = { id: number; report?: BuildReport } | { id: number; error: { name: string; message: string; stack?: string | undefined } } | { ready: true };

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
// other process waits on a rehearsal. Meanwhile the site gets the builds a publish brings up to
// date in place, linked in a thread of their own under the site's publish lock (another process's
// publish waits for those links), so that the first two builds, like every later one, write only
// what changed.
const target = workerData as BuildTarget | undefined;
const warm = Promise.allSettled([rehearse(target && { ...target, memory: memoryOf(target) }), target && spareBuilds({ site: target.site })]);
void warm.then(() => port.postMessage({ ready: true } satisfies BuildAnswer));

port.on('message', (request: BuildRequest) => {
  void answer(request).then((message) => port.postMessage(message));
});

async function answer({ id, releasesDir, site, signing, remote }: BuildRequest): Promise<BuildAnswer> {
  await warm;
  try {
    const memory = memoryOf({ releasesDir, site });
    const keys = signing ? await loadSigning(signing.dataDir, signing.settings) : undefined;
    if (remote) {
      await deployTo(remote, releasesDir, keys, { memory, site });
      return { id };
    }
    const report = await build({ releasesDir, site, checkCloudFront: false, signing: keys }, memory);
    return { id, report };
  } catch (error) {
    const { name, message, stack } = error instanceof Error ? error : new Error(String(error));
    return { id, error: { name, message, stack } };
  }
}

async function deployTo(remote: RemoteSettings, releasesDir: string, signing: Awaited<ReturnType<typeof loadSigning>> | undefined, kept: { memory: BuildMemory; site: string }): Promise<void> {
  const target = await createS3Target({ bucket: remote.bucket, ...(remote.prefix ? { prefix: remote.prefix } : {}), ...(remote.region ? { region: remote.region } : {}) });
  const edge = remote.distributionId ? await createCloudFrontTarget({ distributionId: remote.distributionId, ...(remote.kvsArn ? { kvsArn: remote.kvsArn } : {}) }) : undefined;
  const blobs = createFsBlobStore({ root: remote.blobsDir });
  await deploy({ releasesDir, blobs, target, ...(edge ? { edge } : {}), dryRun: false, delete: false, signing }, kept);
}
