// Rebuilds and publishes the site after an upload, through the generator's own load → render →
// publish. Requests that arrive while a build runs share the next one; processes sharing the data
// directory take turns through a lock file, so two never swap the site at once.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { lock } from 'proper-lockfile';
import { build, type BuildReport } from '../generator/pipeline.ts';

export interface PublisherOptions {
  releasesDir: string;
  /** The local site (the symlink `mirror build` maintains); the sidecar serves it. */
  site: string;
  /** Publishes to a remote target after each local build (S3 and CloudFront); runs in the background. */
  remote?: () => Promise<void>;
  onBuilt?: (report: BuildReport, ms: number) => void;
  onRemoteError?: (error: unknown) => void;
}

export interface Publisher {
  /** Resolves once a local build that started after the call has been published. */
  publish(): Promise<void>;
  /** Waits for the builds and remote publishes under way. */
  settle(): Promise<void>;
}

export function createPublisher(options: PublisherOptions): Publisher {
  const lockFile = `${path.resolve(options.site)}.publish.lock`;
  const local = coalesce(async () => {
    await mkdir(path.dirname(lockFile), { recursive: true });
    const release = await lock(options.site, { realpath: false, lockfilePath: lockFile, stale: 60_000, retries: { retries: 600, minTimeout: 20, maxTimeout: 200 } });
    try {
      const started = performance.now();
      const report = await build({ releasesDir: options.releasesDir, site: options.site });
      options.onBuilt?.(report, performance.now() - started);
    } finally {
      await release();
    }
  });
  const remote = options.remote ? coalesce(options.remote) : undefined;
  let remoteRun: Promise<void> = Promise.resolve();
  return {
    async publish() {
      await local();
      if (remote) remoteRun = remote().catch((error: unknown) => options.onRemoteError?.(error));
    },
    async settle() {
      await local.idle();
      await remoteRun;
    },
  };
}

/**
 * `run` at most once at a time: a call while it runs is answered by the next run, which starts
 * when the current one ends and serves every call made in between.
 */
function coalesce(run: () => Promise<void>): (() => Promise<void>) & { idle(): Promise<void> } {
  let current: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const call = (): Promise<void> => {
    if (!current) {
      current = run().finally(() => {
        current = undefined;
      });
      return current;
    }
    next ??= current
      .catch(() => undefined)
      .then(() => {
        next = undefined;
        return call();
      });
    return next;
  };
  return Object.assign(call, { idle: async () => void (await Promise.allSettled([current, next])) });
}
