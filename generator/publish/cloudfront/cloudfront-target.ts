// The distribution side of a deploy: the KeyValueStore the function routes from, the function
// itself, and invalidations. The SDKs load only when a deploy names a distribution.
import type { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import type { CloudFrontKeyValueStoreClient } from '@aws-sdk/client-cloudfront-keyvaluestore';
import type { KvsBatch } from './edge-plan.ts';

export interface CloudFrontTargetOptions {
  distributionId: string;
  /** The KeyValueStore; by default the one associated with the distribution's viewer-request function. */
  kvsArn?: string;
  /** How long to wait for an invalidation to complete before the deploy stops (deletions not made). */
  invalidationTimeoutSeconds?: number;
  /** Shortest wait between checks of an invalidation's status. */
  pollSeconds?: number;
  /** Extra client settings, e.g. credentials in tests. */
  clientConfig?: Record<string, unknown>;
  /** Waits between `TooManyInvalidationsInProgress` retries; tests shorten it. */
  sleep?: (ms: number) => Promise<void>;
}

/** What the store held at a moment: its ETag and every entry. */
export interface KvsRecord {
  arn: string;
  etag: string;
  entries: Record<string, string>;
}

export interface EdgeFunction {
  name: string;
  /** The code the LIVE stage runs equals ours, associated with the store. */
  upToDate: boolean;
}

export interface CloudFrontTarget {
  describe(): string;
  /** The function attached to the distribution's default behaviour and the store it reads. */
  edgeFunction(code: string): Promise<EdgeFunction & { kvsArn: string }>;
  /** The store's contents: `recorded` when its ETag is still current, otherwise read key by key. */
  readStore(kvsArn: string, recorded: KvsRecord | undefined): Promise<KvsRecord>;
  /** Applies the batches in order, each with the ETag the previous one returned. */
  updateStore(current: KvsRecord, batches: KvsBatch[]): Promise<KvsRecord>;
  /** Updates the function's code and publishes it to LIVE. */
  publishFunction(name: string, code: string, kvsArn: string): Promise<void>;
  /** Creates an invalidation (retrying while too many are in progress) and waits for it to complete. */
  invalidate(paths: string[]): Promise<string>;
}

const RUNTIME = 'cloudfront-js-2.0';
const INVALIDATION_RETRIES = 8;
const LIST_ATTEMPTS = 3;

export async function createCloudFrontTarget(options: CloudFrontTargetOptions): Promise<CloudFrontTarget> {
  const cf = await import('@aws-sdk/client-cloudfront');
  // The KeyValueStore API signs with SigV4A; this registers the JavaScript signer.
  await import('@aws-sdk/signature-v4a');
  const kvs = await import('@aws-sdk/client-cloudfront-keyvaluestore');
  const settings = { region: 'us-east-1', maxAttempts: 6, ...options.clientConfig };
  const client: CloudFrontClient = new cf.CloudFrontClient(settings);
  const store: CloudFrontKeyValueStoreClient = new kvs.CloudFrontKeyValueStoreClient(settings);
  const DistributionId = options.distributionId;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  return {
    describe: () => `CloudFront distribution ${DistributionId}`,

    async edgeFunction(code) {
      const { DistributionConfig } = await client.send(new cf.GetDistributionConfigCommand({ Id: DistributionId }));
      const association = DistributionConfig?.DefaultCacheBehavior?.FunctionAssociations?.Items?.find((item) => item.EventType === 'viewer-request');
      if (!association?.FunctionARN) throw new Error(`Distribution ${DistributionId} has no viewer-request function on its default behaviour; attach one (templates/aws/distribution.yaml shows how)`);
      const name = association.FunctionARN.slice(association.FunctionARN.lastIndexOf('/') + 1);
      const live = await client.send(new cf.DescribeFunctionCommand({ Name: name, Stage: 'LIVE' }));
      const associated = live.FunctionSummary?.FunctionConfig?.KeyValueStoreAssociations?.Items?.map((item) => item.KeyValueStoreARN!) ?? [];
      const kvsArn = options.kvsArn ?? (associated.length === 1 ? associated[0]! : undefined);
      if (!kvsArn) throw new Error(`Function ${name} is associated with ${associated.length} KeyValueStores; name one with --kvs-arn`);
      const { FunctionCode } = await client.send(new cf.GetFunctionCommand({ Name: name, Stage: 'LIVE' }));
      const liveCode = FunctionCode ? Buffer.from(FunctionCode).toString('utf8') : '';
      const runtime = live.FunctionSummary?.FunctionConfig?.Runtime;
      return { name, kvsArn, upToDate: liveCode === code && runtime === RUNTIME && associated.length === 1 && associated[0] === kvsArn };
    },

    async readStore(kvsArn, recorded) {
      let { ETag } = await store.send(new kvs.DescribeKeyValueStoreCommand({ KvsARN: kvsArn }));
      if (recorded && recorded.arn === kvsArn && recorded.etag === ETag) return recorded;
      for (let attempt = 0; attempt < LIST_ATTEMPTS; attempt++) {
        const entries: Record<string, string> = {};
        let NextToken: string | undefined;
        do {
          const page = await store.send(new kvs.ListKeysCommand({ KvsARN: kvsArn, MaxResults: 50, NextToken }));
          for (const item of page.Items ?? []) entries[item.Key!] = item.Value!;
          NextToken = page.NextToken;
        } while (NextToken);
        // The listing is a consistent picture only if nobody wrote while it was taken.
        const after = (await store.send(new kvs.DescribeKeyValueStoreCommand({ KvsARN: kvsArn }))).ETag;
        if (after === ETag && ETag) return { arn: kvsArn, etag: ETag, entries };
        ETag = after;
      }
      throw new Error(`KeyValueStore ${kvsArn} kept changing while it was read; is another deploy running?`);
    },

    async updateStore(current, batches) {
      const entries = { ...current.entries };
      let etag = current.etag;
      for (const batch of batches) {
        const result = await store.send(new kvs.UpdateKeysCommand({ KvsARN: current.arn, IfMatch: etag, Puts: batch.puts, Deletes: batch.deletes }));
        etag = result.ETag!;
        for (const put of batch.puts) entries[put.Key] = put.Value;
        for (const deleted of batch.deletes) delete entries[deleted.Key];
      }
      return { arn: current.arn, etag, entries };
    },

    async publishFunction(name, code, kvsArn) {
      const development = await client.send(new cf.DescribeFunctionCommand({ Name: name, Stage: 'DEVELOPMENT' }));
      const updated = await client.send(
        new cf.UpdateFunctionCommand({
          Name: name,
          IfMatch: development.ETag,
          FunctionCode: Buffer.from(code),
          FunctionConfig: {
            Comment: development.FunctionSummary?.FunctionConfig?.Comment ?? 'release-mirror routes',
            Runtime: RUNTIME,
            KeyValueStoreAssociations: { Quantity: 1, Items: [{ KeyValueStoreARN: kvsArn }] },
          },
        }),
      );
      await client.send(new cf.PublishFunctionCommand({ Name: name, IfMatch: updated.ETag }));
    },

    async invalidate(paths) {
      const batch = { CallerReference: `mirror-${Date.now()}-${Math.random().toString(36).slice(2, 10)}`, Paths: { Quantity: paths.length, Items: paths } };
      let id: string | undefined;
      for (let attempt = 0; id === undefined; attempt++) {
        try {
          const created = await client.send(new cf.CreateInvalidationCommand({ DistributionId, InvalidationBatch: batch }));
          id = created.Invalidation!.Id!;
        } catch (error) {
          if ((error as Error).name !== 'TooManyInvalidationsInProgress' || attempt + 1 >= INVALIDATION_RETRIES) throw error;
          await sleep(Math.min(60_000, 2_000 * 2 ** attempt));
        }
      }
      const maxWaitTime = options.invalidationTimeoutSeconds ?? 900;
      try {
        const minDelay = options.pollSeconds ?? 5;
        await cf.waitUntilInvalidationCompleted({ client, maxWaitTime, minDelay, maxDelay: Math.max(minDelay, 30) }, { DistributionId, Id: id });
      } catch (error) {
        throw new Error(`Invalidation ${id} did not complete within ${maxWaitTime} s (${(error as Error).message})`);
      }
      return id;
    },
  };
}
