// Executes a publish plan against a remote target: steps in order, uploads within a step a few at
// a time, deletions after every upload, then the state record. A failure names its step; running
// the deploy again converges, since the plan is computed afresh from what the target holds.
import pLimit from 'p-limit';
import type { RenderedSite } from '../render/index.ts';
import type { BlobStore } from '../stores/blob-store.ts';
import { deployObjects, planPublish, type DeployObject, type PublishPlan, type RemoteObject } from './deploy-plan.ts';
import type { S3Target } from './s3-target.ts';

export interface DeployOptions {
  site: RenderedSite;
  blobs: BlobStore;
  target: S3Target;
  dryRun: boolean;
  /** Remove objects the site no longer references. */
  delete: boolean;
  /** Called after each upload and deletion batch. */
  onProgress?: (progress: DeployProgress) => void;
}

export interface DeployProgress {
  step: string;
  objects: number;
  totalObjects: number;
  bytes: number;
  totalBytes: number;
}

export interface DeployReport {
  plan: PublishPlan;
  uploaded: number;
  uploadedBytes: number;
  deleted: number;
}

const PUT_CONCURRENCY = 8;

export async function deploy(options: DeployOptions): Promise<DeployReport> {
  const { site, blobs, target } = options;
  const objects = deployObjects(site);
  const remote = await target.list();
  const plan = planPublish(objects, remote, { delete: options.delete });
  const report: DeployReport = { plan, uploaded: 0, uploadedBytes: 0, deleted: 0 };
  await checkBlobsToUpload(plan, blobs);
  if (options.dryRun) return report;

  const puts = plan.steps.flatMap((step) => step.puts);
  if (puts.length === 0 && plan.deletes.length === 0) return report;
  const touched = new Set([...puts.map((put) => put.object.key), ...plan.deletes]);
  const untouched = new Map([...remote].filter(([key]) => !touched.has(key)));
  await inStep('record pending changes', () => target.saveState(untouched, [...touched]));
  const totalBytes = puts.reduce((sum, put) => sum + put.object.size, 0);
  const progress = (step: string) => options.onProgress?.({ step, objects: report.uploaded, totalObjects: puts.length, bytes: report.uploadedBytes, totalBytes });
  for (const step of plan.steps) {
    await inStep(`upload ${step.name}`, async () => {
      const limit = pLimit(PUT_CONCURRENCY);
      const upload = async (object: DeployObject) => {
        await target.put(object, blobs);
        report.uploaded++;
        report.uploadedBytes += object.size;
        progress(step.name);
      };
      // After a failure, start nothing more of the step: the deploy stops where it failed.
      await Promise.all(step.puts.map(({ object }) => limit(upload, object))).catch((error: unknown) => {
        limit.clearQueue();
        throw error;
      });
    });
  }
  if (plan.deletes.length > 0) {
    await inStep('delete', () => target.delete(plan.deletes));
    report.deleted = plan.deletes.length;
    progress('delete');
  }
  const state = new Map<string, RemoteObject>(options.delete ? [] : remote);
  for (const object of objects) state.set(object.key, { size: object.size, sha256: object.sha256 });
  await inStep('save state', () => target.saveState(state));
  return report;
}

/**
 * The local blob store needs only the artifacts this deploy uploads (a CI job has the new
 * release's files, not every earlier one's); a missing or mis-sized one stops it before anything is sent.
 */
async function checkBlobsToUpload(plan: PublishPlan, blobs: BlobStore): Promise<void> {
  const problems: string[] = [];
  for (const { object } of plan.steps.flatMap((step) => step.puts)) {
    if (object.source.type !== 'blob') continue;
    const info = await blobs.stat(object.source.blob);
    if (!info) problems.push(`${object.source.blob} (missing)`);
    else if (info.size !== object.size) problems.push(`${object.source.blob} (${info.size} bytes, the release says ${object.size})`);
  }
  if (problems.length > 0) throw new Error(`The blob store lacks artifact bytes this deploy must upload: ${problems.join(', ')}`);
}

async function inStep<T>(name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof Error) error.message = `deploy step "${name}" failed: ${error.message}; nothing later was changed, and running the deploy again continues from here`;
    throw error;
  }
}

/** The plan as `--dry-run` prints it. */
export function formatPlan(plan: PublishPlan, describeTarget: string): string {
  const lines = [`plan for ${describeTarget}: ${plan.steps.reduce((n, step) => n + step.puts.length, 0)} to upload, ${plan.deletes.length} to delete, ${plan.unchanged} unchanged`];
  for (const step of plan.steps) {
    lines.push(`step ${step.name}:`);
    for (const put of step.puts) lines.push(`  put ${put.object.key} (${put.reason}, ${put.object.size} bytes)`);
  }
  if (plan.deletes.length > 0) lines.push('then delete (no longer referenced):', ...plan.deletes.map((key) => `  delete ${key}`));
  return lines.join('\n');
}
