// Commands that publish to AWS: deploy (S3, then CloudFront) and cloudfront-function.
import cliProgress from 'cli-progress';
import { resolvePaths } from '../../generator/config.ts';
import { createCloudFrontTarget } from '../../generator/publish/cloudfront/cloudfront-target.ts';
import { cloudFrontFunctionCode } from '../../generator/publish/cloudfront/function-code.ts';
import { formatPlan, type DeployProgress } from '../../generator/publish/deploy.ts';
import { createS3Target } from '../../generator/publish/s3-target.ts';
import { deploy } from '../../generator/pipeline.ts';
import { createFsBlobStore } from '../../generator/stores/blob-fs.ts';
import { loadSigning } from '../../generator/trust/index.ts';
import { UsageError, positiveInteger, releasesOption, required, type Command } from './command.ts';

const { SingleBar, Presets } = cliProgress;
type SingleBar = InstanceType<typeof SingleBar>;

export const deployCommands: Record<string, Command> = {
  deploy: {
    usage: `mirror deploy --bucket B [--prefix P] [--region R] [--endpoint URL]
              [--distribution-id ID] [--kvs-arn ARN] [--dry-run] [--no-delete]

Renders the manifest store and uploads the site and its artifacts to an S3 bucket: only objects
whose sha256 (kept in each object's metadata) changed, artifacts first, then indexes from the
deepest paths up, so no index ever names an object not yet uploaded. With a CloudFront
distribution, then: the route table into its KeyValueStore (by diff), its viewer-request function
(only when the code changed), and an invalidation of the changed files, waited for. Unreferenced
objects are deleted last. Credentials come from the standard AWS chain (environment, profile, role).

  --bucket B                bucket name
  --prefix P                key prefix inside the bucket (default: the bucket root)
  --region R                AWS region of the bucket (default: from the AWS configuration)
  --endpoint URL            S3-compatible endpoint, path-style (default $AWS_ENDPOINT_URL_S3)
  --distribution-id ID      CloudFront distribution serving the bucket (without it, CloudFront
                            steps are skipped)
  --kvs-arn ARN             its KeyValueStore (default: the one its viewer-request function reads)
  --invalidation-timeout S  seconds to wait for the invalidation (default 900)
  --dry-run                 print the plan (uploads with reasons, store keys, function,
                            invalidation paths, deletions) and change nothing
  --no-delete               keep objects the site no longer references
  --releases DIR            manifest store (default $MIRROR_RELEASES or releases/)
`,
    options: {
      ...releasesOption,
      bucket: { type: 'string' },
      prefix: { type: 'string' },
      region: { type: 'string' },
      endpoint: { type: 'string' },
      'distribution-id': { type: 'string' },
      'kvs-arn': { type: 'string' },
      'invalidation-timeout': { type: 'string' },
      'dry-run': { type: 'boolean' },
      'no-delete': { type: 'boolean' },
    },
    async run(values) {
      const paths = resolvePaths({ releases: values.releases as string | undefined });
      const target = await createS3Target({
        bucket: required(values, 'bucket'),
        prefix: values.prefix as string | undefined,
        region: values.region as string | undefined,
        endpoint: values.endpoint as string | undefined,
      });
      const distributionId = values['distribution-id'] as string | undefined;
      const kvsArn = values['kvs-arn'] as string | undefined;
      if (kvsArn && !distributionId) throw new UsageError('--kvs-arn needs --distribution-id: the store is read by that distribution\'s function');
      const edge = distributionId
        ? await createCloudFrontTarget({ distributionId, ...(kvsArn ? { kvsArn } : {}), invalidationTimeoutSeconds: positiveInteger(values, 'invalidation-timeout', 900) })
        : undefined;
      if (!edge) console.log('cloudfront: skipped, no --distribution-id given (routes, function and invalidation left alone)');
      const dryRun = values['dry-run'] === true;
      const progress = deployProgress();
      const { deploy: report, signing, timings } = await deploy({
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
        return 0;
      }
      if (signing.snapshot) console.log(`snapshot version ${signing.snapshot.version}${signing.snapshot.resigned ? ' signed' : ' unchanged'}, expires ${signing.snapshot.expires}; ${signing.signaturesMade} signatures made`);
      else if (signing.keys === 0) console.log('unsigned: no signing key (`mirror keys create`, or MIRROR_SIGNING_KEY)');
      console.log(`deployed to ${target.describe()}: ${report.uploaded} uploaded (${report.uploadedBytes} bytes), ${report.deleted} deleted, ${report.plan.unchanged} unchanged [${Object.entries(timings).map(([step, ms]) => `${step} ${ms} ms`).join(', ')}]`);
      if (edge && report.edge) {
        const { changes, edgeFunction, invalidate } = report.edge;
        console.log(`${edge.describe()}: ${changes.puts.length} route keys put, ${changes.deletes.length} deleted; function ${edgeFunction.name} ${edgeFunction.upToDate ? 'unchanged' : 'published'}; ${report.invalidation ? `invalidation ${report.invalidation} of ${invalidate.length} paths completed` : 'nothing to invalidate'}`);
      }
      return 0;
    },
  },

  'cloudfront-function': {
    usage: `mirror cloudfront-function

Prints the code of the CloudFront viewer-request function (runtime cloudfront-js-2.0) that
routes requests from the KeyValueStore \`mirror deploy --distribution-id\` fills. The code is
the same for every catalog; deploy publishes it when the distribution's function differs.
`,
    options: {},
    async run() {
      process.stdout.write(await cloudFrontFunctionCode());
      return 0;
    },
  },

};

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
