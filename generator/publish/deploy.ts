// Executes a publish plan against a remote target: steps in order, uploads within a step a few at
// a time; with a distribution, new objects, then the routes in its KeyValueStore and its function,
// then the changed files and their invalidation; deletions after all of that, then the state record. A failure
// names its step; running the deploy again converges, since the plan is computed afresh from what
// the target holds.
import pLimit from 'p-limit';
import type { RenderedSite } from '../render/index.ts';
import type { BuiltFile } from '../render/site-file.ts';
import type { BlobStore } from '../stores/blob-store.ts';
import type { CloudFrontTarget, EdgeFunction, KvsRecord } from './cloudfront/cloudfront-target.ts';
import { diffKvs, invalidationPaths, kvsBatches, withinInvalidationLimits, type KvsChanges } from './cloudfront/edge-plan.ts';
import { cloudFrontFunctionCode } from './cloudfront/function-code.ts';
import { checkKvsLimits, kvsEntries } from './cloudfront/kvs-entries.ts';
import { SNAPSHOT_STEP, deployObjects, planPublish, type DeployObject, type PlannedPut, type PublishPlan, type RemoteObject } from './deploy-plan.ts';
import type { S3Target } from './s3-target.ts';

export interface DeployOptions {
  site: RenderedSite<BuiltFile>;
  /** The body of a file the site holds only the record of (a render memo gave it back): read from the local build that holds it. */
  read?: ((key: string) => Uint8Array) | undefined;
  blobs: BlobStore;
  target: S3Target;
  /** The distribution in front of the bucket; without one, routes, function and invalidation are left alone. */
  edge?: CloudFrontTarget;
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
  edge?: EdgePlan;
  uploaded: number;
  uploadedBytes: number;
  deleted: number;
  /** The id of the invalidation made and completed. */
  invalidation?: string;
}

/** What changes at the distribution. */
export interface EdgePlan {
  kvsArn: string;
  store: KvsRecord;
  changes: KvsChanges;
  edgeFunction: EdgeFunction;
  code: string;
  invalidate: string[];
}

/**
 * Kept beside the deploy state: the KeyValueStore's contents as last written, and the paths an
 * invalidation still owes, so a deploy cut short before its invalidation completed makes it on the re-run.
 */
interface EdgeRecord {
  store?: KvsRecord;
  invalidate: string[];
}
const EDGE_RECORD = 'edge-state.json';

const PUT_CONCURRENCY = 8;

export async function deploy(options: DeployOptions): Promise<DeployReport> {
  const { site, blobs, target, edge } = options;
  const objects = deployObjects(site, options.read);
  const routes = edge ? kvsEntries(site.routes) : undefined;
  if (routes) checkKvsLimits(routes);
  const remote = await target.list();
  const plan = planPublish(objects, remote, { delete: options.delete });
  await checkBlobsToUpload(plan, blobs);
  const edgePlan = edge && routes ? await planEdge(edge, target, routes, plan, objects, options.delete) : undefined;
  const report: DeployReport = { plan, ...(edgePlan ? { edge: edgePlan } : {}), uploaded: 0, uploadedBytes: 0, deleted: 0 };
  if (options.dryRun) return report;

  const puts = plan.steps.flatMap((step) => step.puts);
  const bucketChanges = puts.length > 0 || plan.deletes.length > 0;
  const storeChanges = edgePlan !== undefined && edgePlan.changes.puts.length + edgePlan.changes.settles.length + edgePlan.changes.deletes.length > 0;
  const edgeWork = edgePlan !== undefined && (storeChanges || !edgePlan.edgeFunction.upToDate || edgePlan.invalidate.length > 0);
  if (!bucketChanges && !edgeWork) return report;
  const touched = new Set([...puts.map((put) => put.object.key), ...plan.deletes]);
  const untouched = new Map([...remote].filter(([key]) => !touched.has(key)));
  await inStep('record pending changes', async () => {
    if (bucketChanges) await target.saveState(untouched, [...touched]);
    if (edgePlan && edgePlan.invalidate.length > 0) await target.writeRecord(EDGE_RECORD, { store: edgePlan.store, invalidate: edgePlan.invalidate } satisfies EdgeRecord);
  });
  const totalBytes = puts.reduce((sum, put) => sum + put.object.size, 0);
  const progress = (step: string) => options.onProgress?.({ step, objects: report.uploaded, totalObjects: puts.length, bytes: report.uploadedBytes, totalBytes });
  const upload = (name: string, stepPuts: PlannedPut[]) =>
    inStep(`upload ${name}`, async () => {
      const limit = pLimit(PUT_CONCURRENCY);
      const put = async (object: DeployObject) => {
        await target.put(object, blobs);
        report.uploaded++;
        report.uploadedBytes += object.size;
        progress(name);
      };
      // After a failure, start nothing more of the step: the deploy stops where it failed.
      await Promise.all(stepPuts.map(({ object }) => limit(put, object))).catch((error: unknown) => {
        limit.clearQueue();
        throw error;
      });
    });
  if (!edge || !edgePlan) {
    for (const step of plan.steps) await upload(step.name, step.puts);
  } else {
    // At the edge a path is reachable only once the store routes it. New objects go up first,
    // unreachable; the routes then make them reachable; only then do the files clients already
    // reach change to name them, and last the snapshot that names them all. Routes go away after
    // the invalidation, with the objects.
    const steps = plan.steps.filter((step) => step.name !== SNAPSHOT_STEP);
    for (const step of steps) await upload(step.name, step.puts.filter((put) => put.reason === 'new'));
    let store = edgePlan.store;
    const record = (invalidate: string[]) => target.writeRecord(EDGE_RECORD, { store, invalidate } satisfies EdgeRecord);
    if (edgePlan.changes.puts.length > 0) {
      store = await inStep('routes', () => edge.updateStore(store, kvsBatches({ puts: edgePlan.changes.puts, deletes: [] })));
      await inStep('record routes', () => record(edgePlan.invalidate));
    }
    if (!edgePlan.edgeFunction.upToDate) await inStep('function', () => edge.publishFunction(edgePlan.edgeFunction.name, edgePlan.code, edgePlan.kvsArn));
    for (const step of steps) await upload(`${step.name}, changed`, step.puts.filter((put) => put.reason === 'changed'));
    for (const step of plan.steps) if (step.name === SNAPSHOT_STEP) await upload(step.name, step.puts);
    if (edgePlan.invalidate.length > 0) {
      report.invalidation = await inStep('invalidate', () => edge.invalidate(edgePlan.invalidate));
      await inStep('record invalidation', () => record([]));
    }
    if (edgePlan.changes.settles.length + edgePlan.changes.deletes.length > 0) {
      store = await inStep('unroute', () => edge.updateStore(store, kvsBatches({ puts: edgePlan.changes.settles, deletes: edgePlan.changes.deletes })));
      await inStep('record routes', () => record([]));
    }
  }
  if (plan.deletes.length > 0) {
    await inStep('delete', () => target.delete(plan.deletes));
    report.deleted = plan.deletes.length;
    progress('delete');
  }
  if (!bucketChanges) return report;
  const state = new Map<string, RemoteObject>(options.delete ? [] : remote);
  for (const object of objects) state.set(object.key, { size: object.size, sha256: object.sha256 });
  await inStep('save state', () => target.saveState(state));
  return report;
}

/**
 * The store's diff, whether the function needs publishing, and the paths to invalidate: the changed
 * files (never artifacts; the function rewrites before the cache lookup, so a file's cache key is
 * its own key), and what an earlier deploy left owing.
 */
async function planEdge(edge: CloudFrontTarget, target: S3Target, routes: Map<string, string>, plan: PublishPlan, objects: DeployObject[], deleting: boolean): Promise<EdgePlan> {
  const code = await cloudFrontFunctionCode();
  const { kvsArn, ...edgeFunction } = await edge.edgeFunction(code);
  const record = await target.readRecord<EdgeRecord>(EDGE_RECORD);
  const store = await edge.readStore(kvsArn, record?.store);
  const diff = diffKvs(new Map(Object.entries(store.entries)), routes);
  // Kept objects stay routed: without deletions, their keys stay too, and the minors keep listing them.
  const changes = deleting ? diff : { puts: diff.puts, settles: [], deletes: [] };
  const files = objects.filter((object) => object.source.type === 'body').map((object) => object.key);
  const changed = plan.steps.flatMap((step) => step.puts).filter((put) => put.reason === 'changed' && put.object.source.type === 'body');
  const owed = record?.invalidate ?? [];
  const invalidate = withinInvalidationLimits([...new Set([...owed, ...(changed.length > 0 ? invalidationPaths(changed.map((put) => put.object.key), files) : [])])]);
  return { kvsArn, store, changes, edgeFunction, code, invalidate };
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
export function formatPlan({ plan, edge }: Pick<DeployReport, 'plan' | 'edge'>, describeTarget: string): string {
  const lines = [`plan for ${describeTarget}: ${plan.steps.reduce((n, step) => n + step.puts.length, 0)} to upload, ${plan.deletes.length} to delete, ${plan.unchanged} unchanged`];
  for (const step of plan.steps) {
    lines.push(`step ${step.name}:`);
    for (const put of step.puts) lines.push(`  put ${put.object.key} (${put.reason}, ${put.object.size} bytes)`);
  }
  if (edge) {
    const { puts, settles, deletes } = edge.changes;
    lines.push(`KeyValueStore ${edge.kvsArn}: ${puts.length} to put, ${deletes.length} to delete`);
    for (const [key] of puts) lines.push(`  put ${key} (${key in edge.store.entries ? 'changed' : 'new'})`);
    for (const [key] of settles) lines.push(`  put ${key} again with the deletions (it lists what it loses until then)`);
    for (const key of deletes) lines.push(`  delete ${key} (no longer routed)`);
    lines.push(`function ${edge.edgeFunction.name}: ${edge.edgeFunction.upToDate ? 'unchanged' : 'update and publish (its code changed)'}`);
    lines.push(edge.invalidate.length > 0 ? `invalidate ${edge.invalidate.length} paths:` : 'invalidate nothing (no cached file changed)', ...edge.invalidate.map((path) => `  ${path}`));
  }
  if (plan.deletes.length > 0) lines.push('then delete (no longer referenced):', ...plan.deletes.map((key) => `  delete ${key}`));
  return lines.join('\n');
}
