// Rebuilds and publishes the site after an upload, through the generator's own load → render →
// publish, in a worker thread, so the server keeps answering while a large site is rebuilt.
// Requests that arrive while a build runs share the next one; processes sharing the data directory
// take turns through locks that die with their holder (taken here, in the main thread, around the
// worker's build), so two never swap the site, or deploy it, at once, and a crashed process stalls
// no one.
import path from 'node:path';
import { localSnapshot, type BuildReport } from '../generator/pipeline.ts';
import type { Locks } from '../generator/stores/locks.ts';
import { readSnapshotUnverified, resignDue } from '../generator/trust/snapshot.ts';
import type { SigningEnv, SigningSettings } from '../generator/trust/index.ts';
import { createBuildThread } from './build-thread.ts';
import type { RemoteSettings } from './build-worker.ts';

export interface PublisherOptions {
  releasesDir: string;
  /** The local site (the symlink `mirror build` maintains); the sidecar serves it. */
  site: string;
  /** Shared by every process that publishes this site: the data directory's lock files, or PostgreSQL's advisory locks. */
  locks: Locks;
  /** Where the keys to sign with are (the data directory and the signing settings), read again in the build thread for each build, so `mirror keys create` and `retire` apply without a restart. */
  signing?: { dataDir: string; settings: SigningEnv };
  /** Publishes to a remote target after each local build (S3 and CloudFront), in the background: in the build thread, or by the function given. */
  remote?: RemoteSettings | (() => Promise<void>);
  onBuilt?: (report: BuildReport, ms: number) => void;
  /** The first pause before a failed remote publish is tried again (default 5 s); it doubles up to 5 minutes. */
  remoteRetryMs?: number;
  /** Told once per remote publish how it ended: undefined when it succeeded; otherwise the error, and in how many ms it is tried again. */
  onRemoteResult?: (error: unknown, retryMs: number | undefined) => void;
}

export interface Publisher {
  /** Resolves once a local build that started after the call has been published. */
  publish(): Promise<void>;
  /** Starts a remote publish of the current site (at start, to finish what a stopped process left). */
  syncRemote(): void;
  /** Waits for the builds and remote publishes under way. */
  settle(): Promise<void>;
  /** Settles, then stops the build thread. */
  close(): Promise<void>;
}

export function createPublisher(options: PublisherOptions): Publisher {
  const site = path.resolve(options.site);
  const { locks } = options;
  const thread = createBuildThread({ releasesDir: options.releasesDir, site });
  const local = coalesce(async () => {
    // A fresh worker compiles the generator first: not while holding the lock other processes wait on.
    await thread.ready();
    await locks.withLock('site-build', async () => {
      const started = performance.now();
      const report = await thread.build({ releasesDir: options.releasesDir, site, signing: options.signing });
      options.onBuilt?.(report, performance.now() - started);
    });
  });
  // A remote deploy can wait minutes for its invalidation; another process's waits its turn. One
  // that fails is tried again after a pause that doubles each time (an upload meanwhile tries at
  // once), so the remote catches up once it answers again, without waiting for the next upload.
  const remoteOption = options.remote;
  const deployRemote =
    typeof remoteOption === 'function' ? remoteOption : remoteOption && (() => thread.deploy({ releasesDir: options.releasesDir, site, signing: options.signing, remote: remoteOption }));
  let retry: NodeJS.Timeout | undefined;
  const firstRetryMs = options.remoteRetryMs ?? REMOTE_RETRY_FIRST_MS;
  let retryMs = firstRetryMs;
  const remote = deployRemote
    ? coalesce(async () => {
        try {
          // The builds already asked for go first: they share the build thread with the deploy, and
          // an upload waits for its build, not for the remote.
          await local.idle();
          await locks.withLock('site-deploy', deployRemote);
          retryMs = firstRetryMs;
          options.onRemoteResult?.(undefined, undefined);
        } catch (error) {
          retry = setTimeout(syncRemote, retryMs);
          retry.unref();
          options.onRemoteResult?.(error ?? new Error('remote publish failed'), retryMs);
          retryMs = Math.min(retryMs * 2, REMOTE_RETRY_MAX_MS);
        }
      })
    : undefined;
  let remoteRun: Promise<void> = Promise.resolve();
  function syncRemote() {
    if (!remote) return;
    clearTimeout(retry);
    remoteRun = remote();
  }
  const settle = async () => {
    await local.idle();
    await remoteRun;
  };
  return {
    async publish() {
      await local();
      syncRemote();
    },
    syncRemote,
    settle,
    async close() {
      await settle();
      clearTimeout(retry);
      await thread.close();
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

const REMOTE_RETRY_FIRST_MS = 5_000;
const REMOTE_RETRY_MAX_MS = 5 * 60 * 1000;
const SNAPSHOT_CHECK_MS = 10 * 60 * 1000;

/**
 * Keeps the local site's signed snapshot from expiring without a new release: checks now and
 * every ten minutes, and publishes again (which signs a new snapshot) once half its life is gone.
 * Without an active key there is nothing to sign, until `mirror keys create` makes one. Returns
 * the function that stops it.
 */
export function refreshSnapshots(options: { site: string; expirySeconds: number; signing: () => Promise<SigningSettings>; publish: () => Promise<void>; onError: (error: unknown) => void }): () => void {
  const check = async () => {
    if ((await options.signing()).keyring.active.length === 0) return;
    const text = await localSnapshot(options.site);
    if (resignDue(text === undefined ? undefined : readSnapshotUnverified(text), new Date(), options.expirySeconds)) await options.publish();
  };
  const run = () => void check().catch(options.onError);
  run();
  const timer = setInterval(run, SNAPSHOT_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
