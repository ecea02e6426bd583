// Executes a publish plan against a remote target: steps in order, uploads within a step a few at
// a time, deletions after every upload, then the state record. A failure names its step; running
// the deploy again converges, since the plan is computed afresh from what the target holds.
import type { RenderedSite } from '../render/index.ts';
import type { BlobStore } from '../stores/blob-store.ts';
import { deployObjects, planPublish, type PublishPlan, type RemoteObject } from './deploy-plan.ts';
import type { S3Target } from './s3-target.ts';

export interface DeployOptions {
  site: RenderedSite;
  blobs: BlobStore;
  target: S3Target;
  dryRun: boolean;
  /** Remove objects the site no longer references. */
  delete: boolean;
  log: (line: string) => void;
}

export interface DeployReport {
  plan: PublishPlan;
  uploaded: number;
  uploadedBytes: number;
  deleted: number;
}

const PUT_CONCURRENCY = 8;

export async function deploy(options: DeployOptions): Promise<DeployReport> {
  const { site, blobs, target, log } = options;
  const blobSizes = await statBlobs(site, blobs);
  const objects = deployObjects(site, blobSizes);
  const remote = await target.list();
  const plan = planPublish(objects, remote, { delete: options.delete });
  const report: DeployReport = { plan, uploaded: 0, uploadedBytes: 0, deleted: 0 };
  if (options.dryRun) return report;

  const total = plan.steps.reduce((sum, step) => sum + step.puts.length, 0);
  for (const step of plan.steps) {
    await inStep(`upload ${step.name}`, async () => {
      for (let i = 0; i < step.puts.length; i += PUT_CONCURRENCY) {
        await Promise.all(
          step.puts.slice(i, i + PUT_CONCURRENCY).map(async ({ object }) => {
            await target.put(object, blobs);
            report.uploaded++;
            report.uploadedBytes += object.size;
          }),
        );
        log(`uploaded ${report.uploaded}/${total} objects (${report.uploadedBytes} bytes), step ${step.name}`);
      }
    });
  }
  if (plan.deletes.length > 0) {
    await inStep('delete', () => target.delete(plan.deletes));
    report.deleted = plan.deletes.length;
    log(`deleted ${plan.deletes.length} objects no longer referenced`);
  }
  const state = new Map<string, RemoteObject>(options.delete ? [] : remote);
  for (const object of objects) state.set(object.key, { size: object.size, sha256: object.sha256 });
  await inStep('save state', () => target.saveState(state));
  return report;
}

/** Sizes of the artifacts to upload; a missing one stops the deploy before anything is sent. */
async function statBlobs(site: RenderedSite, blobs: BlobStore): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  const missing: string[] = [];
  for (const target of Object.values(site.routes.paths)) {
    if (target.type !== 'blob' || sizes.has(target.blob)) continue;
    const info = await blobs.stat(target.blob);
    if (!info) missing.push(target.blob);
    else if (info.size !== target.size) missing.push(`${target.blob} (${info.size} bytes, the release says ${target.size})`);
    else sizes.set(target.blob, info.size);
  }
  if (missing.length > 0) throw new Error(`The blob store lacks artifact bytes the releases name: ${missing.join(', ')}`);
  return sizes;
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
