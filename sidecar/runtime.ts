// Assembles the sidecar from its configuration: state database, blob store, token verifier,
// publisher, rate limits, logs and metrics, then the app. Every configured backend must start;
// none falls back to another silently.
import { access, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type Koa from 'koa';
import type { Logger } from 'pino';
import { loadSigning } from '../generator/trust/index.ts';
import { createFsBlobStore, removeStaleStaging } from '../generator/stores/blob-fs.ts';
import { openLocks } from '../generator/stores/locks.ts';
import { createApp } from './app.ts';
import type { RemoteSettings } from './build-worker.ts';
import { cognitoVerifier, localIssuer, type TokenVerifier } from './auth/jwt.ts';
import type { Config } from './config.ts';
import { loadCa, loadOrCreateCa, type FleetCa } from './fleet/ca.ts';
import { memoryFanout, type Fanout } from './fleet/fanout.ts';
import { postgresFanout } from './fleet/fanout-postgres.ts';
import { redisFanout } from './fleet/fanout-redis.ts';
import { createFleet, type Fleet } from './fleet/index.ts';
import { createMetrics } from './metrics.ts';
import { authenticatedSubject, perIp, perUser, rateLimit, type RateLimitMiddleware, type RateLimitRule } from './middleware/rate-limit.ts';
import { createLogger, requestLog } from './middleware/request-log.ts';
import { isSiteRead, markSiteReads } from './middleware/site-reads.ts';
import { diskHealth } from './disk-health.ts';
import { createPublisher, refreshSnapshots, type Publisher } from './publisher.ts';
import { redisHealth, type RedisHealth } from './redis-health.ts';
import { isRegistryPath, registryApi } from './registry/index.ts';
import { importRegistryStore } from './registry/sync.ts';
import { asksForEnvelope } from './routes/binary-envelope.ts';
import { healthRoutes } from './routes/health.ts';
import { createSiteSource } from './site-source.ts';
import { openDatabase, type StateDb } from './store/db.ts';
import { migrate, pendingMigrations } from './store/migrate.ts';
import { uploadsRepo } from './store/uploads.ts';

/** An upload's staging file from another host, untouched this long, belongs to no live upload; this host's go when their process does. */
const STALE_STAGING_MS = 60 * 60 * 1000;
/** How often staging is swept for what crashed processes left, besides at start. */
const STAGING_SWEEP_MS = 5 * 60 * 1000;

export interface Sidecar {
  app: Koa;
  logger: Logger;
  publisher: Publisher;
  /** The deployment-agent fleet (seed 004); `fleet.listen` opens its HTTPS listener. */
  fleet: Fleet;
  /** After the server has drained: finishes publishing, closes limits and the database. */
  close(): Promise<void>;
}

export interface SidecarOptions {
  /** Apply pending migrations at start; `mirror start` does for the embedded SQLite database. */
  migrateAtStart?: boolean;
  logger?: Logger;
}

export async function createSidecar(config: Config, options: SidecarOptions = {}): Promise<Sidecar> {
  const { settings } = config;
  const logger = options.logger ?? createLogger({ level: settings.LOG_LEVEL });
  const state = await openDatabase({
    ...(settings.DATABASE_URL ? { url: settings.DATABASE_URL } : {}),
    file: config.databaseFile,
    onError: (error) => logger.error({ err: error }, 'a state database connection failed; the pool opens another'),
  });
  const closers: (() => Promise<void>)[] = [() => state.close()];
  try {
    await prepareDatabase(state, options.migrateAtStart ?? false);
    const imported = await importRegistryStore({ releasesDir: config.releasesDir, state });
    if (imported > 0) logger.info({ versions: imported }, 'registry versions from the manifest store added to the state database');
    const verifier = await tokenVerifier(config);
    const metrics = createMetrics();
    // A fresh data directory is ready to serve at once, not after its first upload.
    await mkdir(config.blobsDir, { recursive: true });
    // A full disk refuses uploads and publishes, logged once, and leaves the replica ready, degraded.
    const disk = diskHealth({ logger, dir: config.blobsDir });
    const blobs = disk.watch(createFsBlobStore({ root: config.blobsDir }));
    const sweep = async () => {
      const stale = await removeStaleStaging(config.blobsDir, STALE_STAGING_MS);
      if (stale.length > 0) logger.warn({ files: stale }, 'removed staging files of uploads cut short');
    };
    await sweep();
    const sweeping = setInterval(() => void sweep().catch((error: unknown) => logger.error({ err: error }, 'sweeping the staging folder failed')), STAGING_SWEEP_MS);
    sweeping.unref();
    closers.unshift(async () => clearInterval(sweeping));
    const site = createSiteSource({ site: config.site });
    const signingSettings = {
      MIRROR_SIGNING_KEY: settings.MIRROR_SIGNING_KEY,
      MIRROR_SIGNING_KEY_FILE: settings.MIRROR_SIGNING_KEY_FILE,
      MIRROR_SIGNING_KEY_PASSPHRASE: settings.MIRROR_SIGNING_KEY_PASSPHRASE,
      MIRROR_SNAPSHOT_EXPIRY_SECONDS: settings.MIRROR_SNAPSHOT_EXPIRY_SECONDS,
    };
    const signing = () => loadSigning(config.dataDir, signingSettings);
    // Replicas on one PostgreSQL database take turns through its advisory locks; alone, or sharing
    // only the data directory, through lock files there. Either dies with its holder.
    const locks = await openLocks({
      url: settings.DATABASE_URL,
      dir: path.join(config.dataDir, 'locks'),
      onLost: (name, error) => logger.error({ err: error, lock: name }, 'the connection holding a lock failed; the section under way finishes unprotected'),
    });
    let remoteFailure: unknown;
    const publisher = createPublisher({
      releasesDir: config.releasesDir,
      site: config.site,
      locks,
      // The build thread reads the keys itself: only plain data crosses to it.
      signing: { dataDir: config.dataDir, settings: signingSettings },
      ...(settings.MIRROR_S3_BUCKET ? { remote: remoteSettings(config) } : {}),
      onBuilt: (report, ms) => {
        metrics.rebuildDuration.observe(ms / 1000);
        const { written, unchanged, deleted } = report.publish;
        logger.info({ ms: Math.round(ms), steps: report.timings, releasesRead: report.load.read.release, units: report.units, written, unchanged, deleted }, 'site rebuilt');
      },
      onRemoteResult: (error, retryMs) => {
        remoteFailure = error;
        metrics.remotePublishes.inc({ result: error === undefined ? 'ok' : 'failed' });
        if (error !== undefined) logger.error({ err: error, retryMs }, `publishing to S3 failed; retried in ${Math.round((retryMs ?? 0) / 1000)} s, or at the next upload`);
      },
    });
    closers.unshift(() => publisher.close());
    // A bad signing key stops the start, not the first upload.
    await signing();
    const stopRefreshing = refreshSnapshots({
      site: config.site,
      expirySeconds: settings.MIRROR_SNAPSHOT_EXPIRY_SECONDS,
      signing,
      publish: () => publisher.publish(),
      onError: (error) => logger.error({ err: error }, 'signing a fresh snapshot failed; the next check, in ten minutes, retries'),
    });
    closers.unshift(async () => stopRefreshing());
    // Per address: the API's requests against RATE_LIMIT_IP_PER_MINUTE, reads of the site against
    // RATE_LIMIT_READS_PER_MINUTE only, as a CDN or nginx would serve them; the registry counts its
    // own requests, by its contract's rules and in its error shape.
    const isApi = async (ctx: Koa.Context) => isRegistryPath(ctx.path) || (await asksForEnvelope(ctx, site));
    const apiIp = (rule: RateLimitRule): RateLimitRule => ({ ...rule, key: (ctx) => (isSiteRead(ctx) || isRegistryPath(ctx.path) ? undefined : rule.key(ctx)) });
    const readIp = (rule: RateLimitRule): RateLimitRule => ({ ...rule, name: 'reads', key: (ctx) => (isSiteRead(ctx) ? rule.key(ctx) : undefined) });
    const ipRules = [
      ...(settings.RATE_LIMIT_IP_PER_MINUTE > 0 ? [apiIp(perIp({ points: settings.RATE_LIMIT_IP_PER_MINUTE, durationSeconds: 60 }))] : []),
      ...(settings.RATE_LIMIT_READS_PER_MINUTE > 0 ? [readIp(perIp({ points: settings.RATE_LIMIT_READS_PER_MINUTE, durationSeconds: 60 }))] : []),
    ];
    const redis = redisHealth({ logger, whileDown: 'rate limits count per process and fleet tasks reach streams on other replicas at their next heartbeat until it is back' });
    const ipLimit = await limiter(config, 'ip', ipRules, redis);
    const userRules = [
      ...(settings.RATE_LIMIT_USER_PER_MINUTE > 0 ? [perUser({ points: settings.RATE_LIMIT_USER_PER_MINUTE, durationSeconds: 60 })] : []),
      ...(settings.RATE_LIMIT_UPLOADS_PER_HOUR > 0 ? [{ ...perUser({ points: settings.RATE_LIMIT_UPLOADS_PER_HOUR, durationSeconds: 3600 }), name: 'uploads' }] : []),
    ];
    const userLimit = await limiter(config, 'user', userRules, redis);
    const registryLimits = await registryLimiters(config, redis);
    for (const limit of [ipLimit, userLimit, registryLimits.requestLimit, registryLimits.publishLimit]) if (limit) closers.unshift(() => limit.close());
    const uploads = uploadsRepo(state.db);
    const ca = await fleetCa(config);
    const fleet = await createFleet({
      state,
      ca,
      dir: path.dirname(config.fleetCaFile),
      fanout: await fleetFanout(config, state, logger, redis),
      operatorTokens: verifier,
      settings: {
        certTtlSeconds: settings.FLEET_CERT_TTL_SECONDS,
        renewBeforeSeconds: settings.FLEET_RENEW_BEFORE_SECONDS,
        heartbeatIntervalSeconds: settings.FLEET_HEARTBEAT_INTERVAL_SECONDS,
        taskPollIntervalSeconds: settings.FLEET_TASK_POLL_INTERVAL_SECONDS,
        maxAttempts: settings.FLEET_TASK_MAX_ATTEMPTS,
        agentLogLevel: settings.FLEET_AGENT_LOG_LEVEL,
        serverNames: settings.FLEET_SERVER_NAMES.split(',').map((name) => name.trim()).filter(Boolean),
      },
      logger,
      metricsRegistry: metrics.registry,
      operations: [requestLog({ logger }), metrics.middleware()],
    });
    closers.unshift(() => fleet.close());
    const app = createApp({
      site,
      blobs,
      logError: (error) => logger.error({ err: error }, 'request failed'),
      operations: [
        requestLog({ logger }),
        metrics.middleware(),
        healthRoutes({
          metrics,
          checks: { database: () => state.ping(), blobs: () => access(config.blobsDir), site: async () => void (await site.current()), fleetCa: async () => caStillValid(ca) },
          degradable: {
            disk: () => disk.check(),
            ...(settings.REDIS_URL ? { redis: () => redis.check() } : {}),
            ...(settings.MIRROR_S3_BUCKET ? { s3: async () => remoteFailed(remoteFailure) } : {}),
          },
          details: () => ({ fleetCa: { expiresAt: ca.expiresAt.toISOString(), daysLeft: Math.floor((ca.expiresAt.getTime() - Date.now()) / 86_400_000) } }),
        }),
        ...(ipLimit ? [markSiteReads({ isApi }), ipLimit] : []),
      ],
      uploads: {
        verifier,
        releasesDir: config.releasesDir,
        publisher,
        maxBytes: settings.MAX_UPLOAD_BYTES,
        // With PostgreSQL its advisory locks; otherwise the host's lock files for the store, which `mirror release add` takes too.
        ...(settings.DATABASE_URL ? { releaseLocks: locks } : {}),
        ...(userLimit ? { perUser: userLimit } : {}),
        record: async (upload) => {
          await uploads.record({
            product: upload.product,
            version: upload.version,
            platform: upload.platform,
            arch: upload.arch,
            filename: upload.filename,
            blob_key: upload.blobKey,
            size: upload.size,
            sha256: upload.sha256,
            content_type: upload.contentType,
            uploaded_by: upload.uploadedBy,
            uploaded_at: upload.uploadedAt,
          });
        },
      },
      envelopeMaxBytes: settings.MAX_ENVELOPE_BYTES,
      trustedProxies: settings.TRUSTED_PROXIES,
      apis: [
        registryApi({
          state,
          blobs,
          releasesDir: config.releasesDir,
          publisher,
          github: {
            clientId: settings.GITHUB_CLIENT_ID,
            clientSecret: settings.GITHUB_CLIENT_SECRET,
            authorizeUrl: settings.GITHUB_AUTHORIZE_URL!,
            tokenUrl: settings.GITHUB_TOKEN_URL!,
            apiUrl: settings.GITHUB_API_URL!,
            redirectPrefixes: settings.REGISTRY_REDIRECT_URIS?.split(',').map((prefix) => prefix.trim()),
          },
          publicUrl: settings.MIRROR_PUBLIC_URL,
          maxTarballBytes: settings.REGISTRY_MAX_TARBALL_BYTES,
          ...(registryLimits.requestLimit ? { requestLimit: registryLimits.requestLimit } : {}),
          ...(registryLimits.publishLimit ? { publishLimit: registryLimits.publishLimit } : {}),
          onPublish: (status) => metrics.registryPublishes.inc({ result: status < 300 ? 'published' : status < 500 ? 'refused' : 'failed' }),
          onTelemetry: (stored) => metrics.registryTelemetry.inc({ stored: stored ? 'yes' : 'no' }),
        }),
      ],
    });
    // What a process stopped mid-deploy left unpublished goes out now; a deploy with nothing to do writes nothing.
    publisher.syncRemote();
    return {
      app,
      logger,
      publisher,
      fleet,
      async close() {
        for (const close of closers) await close();
      },
    };
  } catch (error) {
    for (const close of closers) await close().catch(() => undefined);
    throw error;
  }
}

/** The embedded database is migrated at start; a shared one must be migrated first, by `mirror migrate`. */
export async function prepareDatabase(state: StateDb, migrateAtStart: boolean): Promise<void> {
  if (migrateAtStart) {
    await migrate(state);
    return;
  }
  const pending = await pendingMigrations(state);
  if (pending.length > 0) throw new Error(`The state database lacks migrations ${pending.join(', ')}; run \`mirror migrate\` first`);
}

async function tokenVerifier(config: Config): Promise<TokenVerifier> {
  const { settings } = config;
  if (settings.AUTH_MODE === 'local') return localIssuer({ dir: config.authDir });
  return cognitoVerifier({ region: settings.COGNITO_REGION!, userPoolId: settings.COGNITO_USER_POOL_ID!, clientId: settings.COGNITO_CLIENT_ID!, tokenUse: settings.COGNITO_TOKEN_USE });
}

/** Limits shared through Redis when REDIS_URL is set, per process otherwise; undefined when no rule applies. */
async function limiter(config: Config, name: string, rules: RateLimitRule[], redis: RedisHealth, body?: Parameters<typeof rateLimit>[0]['body']): Promise<RateLimitMiddleware | undefined> {
  if (rules.length === 0) return undefined;
  const url = config.settings.REDIS_URL;
  return rateLimit({ rules, keyPrefix: `mirror:${name}`, ...(body ? { body } : {}), ...(url ? { redis: await redisClient(url, redis), onDegraded: () => redis.degraded() } : {}) });
}

/**
 * The registry's limits (seed 003): per address while signed out, per user once signed in, and
 * publishes per user per hour; 429s in the registry's error shape.
 */
async function registryLimiters(config: Config, redis: RedisHealth): Promise<{ requestLimit: RateLimitMiddleware | undefined; publishLimit: RateLimitMiddleware | undefined }> {
  const { settings } = config;
  const body = (_ctx: unknown, retryAfter: number, rule: RateLimitRule) => ({ error: 'Too many requests', details: [`Rate limit of ${rule.points} requests per ${rule.durationSeconds} s exceeded; retry in ${retryAfter} s`] });
  // A signed-in request counts against its user only.
  const signedOut = (rule: RateLimitRule): RateLimitRule => ({ ...rule, key: (ctx) => (authenticatedSubject(ctx) ? undefined : rule.key(ctx)) });
  const requestRules: RateLimitRule[] = [
    ...(settings.REGISTRY_RATE_LIMIT_IP_PER_MINUTE > 0 ? [signedOut(perIp({ points: settings.REGISTRY_RATE_LIMIT_IP_PER_MINUTE, durationSeconds: 60 }))] : []),
    ...(settings.REGISTRY_RATE_LIMIT_USER_PER_MINUTE > 0 ? [perUser({ points: settings.REGISTRY_RATE_LIMIT_USER_PER_MINUTE, durationSeconds: 60 })] : []),
  ];
  const publishRules = settings.REGISTRY_RATE_LIMIT_PUBLISH_PER_HOUR > 0 ? [{ ...perUser({ points: settings.REGISTRY_RATE_LIMIT_PUBLISH_PER_HOUR, durationSeconds: 3600 }), name: 'publish' }] : [];
  return {
    requestLimit: await limiter(config, 'registry', requestRules, redis, body),
    publishLimit: await limiter(config, 'registry-publish', publishRules, redis, body),
  };
}

/** The fleet CA from FLEET_CA_CERT_FILE and FLEET_CA_KEY_FILE, or the data directory's own, created on first start. */
async function fleetCa(config: Config): Promise<FleetCa> {
  const { FLEET_CA_CERT_FILE: certFile, FLEET_CA_KEY_FILE: keyFile } = config.settings;
  if (!certFile || !keyFile) return loadOrCreateCa(config.fleetCaFile);
  const read = (file: string, name: string) => readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => Promise.reject(new Error(`${name}: cannot read ${file} (${error.code ?? error.message})`)));
  return loadCa(await read(certFile, 'FLEET_CA_CERT_FILE'), await read(keyFile, 'FLEET_CA_KEY_FILE'));
}

async function remoteFailed(failure: unknown): Promise<void> {
  if (failure !== undefined) throw new Error(`the last publish to S3 failed (${failure instanceof Error ? failure.message : String(failure)}); retried on a timer and at the next upload`);
}

async function caStillValid(ca: FleetCa): Promise<void> {
  if (ca.expiresAt.getTime() <= Date.now()) throw new Error(`the fleet CA expired at ${ca.expiresAt.toISOString()}; agents cannot register or renew`);
}

/** Fleet events between replicas: Redis when configured, else PostgreSQL's LISTEN/NOTIFY, else this process alone. */
async function fleetFanout(config: Config, state: StateDb, logger: Logger, redis: RedisHealth): Promise<Fanout> {
  const { REDIS_URL, DATABASE_URL } = config.settings;
  if (REDIS_URL) return redisFanout({ client: await redisClient(REDIS_URL, redis), logger, watch: (connection) => redis.watch(connection) });
  if (DATABASE_URL) return postgresFanout({ state, url: DATABASE_URL, logger });
  return memoryFanout();
}

/** A connection of the limiter's own, ready before the server listens; its outages are reported by `health`. */
async function redisClient(url: string, health: RedisHealth) {
  // Loaded only when configured, like the AWS SDK.
  const { Redis } = await import('ioredis');
  const client = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true, connectTimeout: 5_000 });
  try {
    // The first failure decides: at start, a Redis that is configured must answer.
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve);
      client.once('error', reject);
      client.connect().catch(reject);
    });
  } catch (error) {
    client.disconnect();
    throw new Error(`REDIS_URL: cannot connect (${(error as Error).message})`);
  }
  health.watch(client);
  return client;
}

/** After each local build, the same catalog to S3 (and CloudFront when configured). */
/** The remote the build thread deploys to after each local build. */
function remoteSettings(config: Config): RemoteSettings {
  const { settings } = config;
  return {
    blobsDir: config.blobsDir,
    bucket: settings.MIRROR_S3_BUCKET!,
    prefix: settings.MIRROR_S3_PREFIX,
    region: settings.MIRROR_S3_REGION,
    distributionId: settings.MIRROR_CLOUDFRONT_DISTRIBUTION_ID,
    kvsArn: settings.MIRROR_KVS_ARN,
  };
}
