// Commands that publish to AWS: deploy (S3, then CloudFront) and cloudfront-function. Their
// options are declared in commands.ts.
import cliProgress from 'cli-progress';
import { resolvePaths } from '../../generator/config.ts';
import { createCloudFrontTarget } from '../../generator/publish/cloudfront/cloudfront-target.ts';
import { cloudFrontFunctionCode } from '../../generator/publish/cloudfront/function-code.ts';
import { formatPlan, type DeployProgress, type DeployReport } from '../../generator/publish/deploy.ts';
import { createS3Target } from '../../generator/publish/s3-target.ts';
import { deploy as deployPipeline } from '../../generator/pipeline.ts';
import { createFsBlobStore } from '../../generator/stores/blob-fs.ts';
import { loadSigning } from '../../generator/trust/index.ts';
import { UsageError } from './command.ts';
import { boundHeapGrowth } from './heap.ts';

const { SingleBar, Presets } = cliProgress;
type SingleBar = InstanceType<typeof SingleBar>;
type Values = Record<string, unknown>;

export async function deploy(values: Values): Promise<number> {
  boundHeapGrowth();
  await deployFrom(values);
  return 0;
}

/** The deploy's report, for callers that report it (the GitHub Action's outputs). */
export async function deployFrom(values: Values): Promise<DeployReport> {
  return deployTo(values).catch((error: unknown) => {
    if ((error as Error | undefined)?.name === 'CredentialsProviderError') throw new Error(noCredentials(values['dry-run'] === true, values.bucket as string, values['distribution-id'] as string | undefined));
    throw error;
  });
}

async function deployTo(values: Values): Promise<DeployReport> {
  const paths = resolvePaths({ releases: values.releases as string | undefined });
  const distributionId = values['distribution-id'] as string | undefined;
  const kvsArn = values['kvs-arn'] as string | undefined;
  if (kvsArn && !distributionId) throw new UsageError('--kvs-arn needs --distribution-id: the store is read by that distribution\'s function');
  const target = await createS3Target({
    bucket: values.bucket as string,
    prefix: values.prefix as string | undefined,
    region: values.region as string | undefined,
    endpoint: values.endpoint as string | undefined,
  });
  const edge = distributionId
    ? await createCloudFrontTarget({ distributionId, ...(kvsArn ? { kvsArn } : {}), invalidationTimeoutSeconds: values['invalidation-timeout'] as number })
    : undefined;
  if (!edge) console.log('cloudfront: skipped, no --distribution-id given (routes, function and invalidation left alone)');
  const dryRun = values['dry-run'] === true;
  const progress = deployProgress();
  const { deploy: report, signing, timings } = await deployPipeline({
    releasesDir: paths.releasesDir,
    blobs: createFsBlobStore({ root: paths.blobsDir }),
    target,
    ...(edge ? { edge } : {}),
    dryRun,
    delete: values['no-delete'] !== true,
    onProgress: progress.update,
    signing: await loadSigning(paths.dataDir, process.env),
  });
  progress.stop();
  if (dryRun) {
    console.log(formatPlan(report, target.describe()));
    return report;
  }
  if (signing.snapshot) console.log(`snapshot version ${signing.snapshot.version}${signing.snapshot.resigned ? ' signed' : ' unchanged'}, expires ${signing.snapshot.expires}; ${signing.signaturesMade} signatures made`);
  else if (signing.keys === 0) console.log('unsigned: no signing key (`mirror keys create`, or MIRROR_SIGNING_KEY)');
  console.log(`deployed to ${target.describe()}: ${report.uploaded} uploaded (${report.uploadedBytes} bytes), ${report.deleted} deleted, ${report.plan.unchanged} unchanged [${Object.entries(timings).map(([step, ms]) => `${step} ${ms} ms`).join(', ')}]`);
  if (edge && report.edge) {
    const { changes, edgeFunction, invalidate } = report.edge;
    console.log(`${edge.describe()}: ${changes.puts.length} route keys put, ${changes.deletes.length} deleted; function ${edgeFunction.name} ${edgeFunction.upToDate ? 'unchanged' : 'published'}; ${report.invalidation ? `invalidation ${report.invalidation} of ${invalidate.length} paths completed` : 'nothing to invalidate'}`);
  }
  return report;
}

export async function cloudfrontFunction(): Promise<number> {
  process.stdout.write(await cloudFrontFunctionCode());
  return 0;
}

/** Why a deploy needs credentials even to plan, and which permissions (README: "IAM permissions"). */
function noCredentials(dryRun: boolean, bucket: string, distributionId: string | undefined): string {
  const command = `mirror deploy${dryRun ? ' --dry-run' : ''}`;
  const edge = distributionId ? ' (and with --distribution-id: cloudfront:GetDistributionConfig, cloudfront:DescribeFunction, cloudfront:GetFunction, cloudfront-keyvaluestore:DescribeKeyValueStore and ListKeys)' : '';
  const why = dryRun
    ? `even a dry run reads the bucket's deploy record and object list to plan, so it needs s3:ListBucket and s3:GetObject on ${bucket}${edge}`
    : `a deploy reads the bucket's deploy record and object list, then writes, so it needs the permissions of the README's IAM policy on ${bucket}`;
  return `${command}: no AWS credentials found (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role); ${why}; the README's IAM policy lists every permission`;
}

/** A live bar of objects and bytes on a terminal; a plain line every few seconds otherwise (CI logs). */
function deployProgress(): { update: (progress: DeployProgress) => void; stop: () => void } {
  if (process.stdout.isTTY) {
    let bar: SingleBar | undefined;
    return {
      update(progress) {
        bar ??= new SingleBar({ format: 'deploy [{bar}] {value}/{total} objects | {mib}/{totalMib} MiB | {step}', hideCursor: true }, Presets.shades_classic);
        if (!bar.isActive) bar.start(progress.totalObjects, 0, {});
        bar.update(progress.objects, { step: progress.step, mib: mib(progress.bytes), totalMib: mib(progress.totalBytes) });
      },
      stop: () => bar?.stop(),
    };
  }
  let last = 0;
  return {
    update(progress) {
      const now = Date.now();
      if (now - last < 5_000 && progress.objects < progress.totalObjects) return;
      last = now;
      console.log(`deploy: ${progress.objects}/${progress.totalObjects} objects, ${mib(progress.bytes)}/${mib(progress.totalBytes)} MiB, step ${progress.step}`);
    },
    stop: () => undefined,
  };
}

function mib(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}
