// The build and the deploy, step by step: load → render → sign → publish. Each step gets what it
// needs and returns what it makes; a failing step's error names the step.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pLimit, { type LimitFunction } from 'p-limit';
import { loadCacheFile, noLoadCache, openLoadCache, type LoadCache, type LoadCacheMemory, type LoadStats } from './load/cache.ts';
import { LOADER_FINGERPRINT, loadCatalog } from './load/index.ts';
import { loadTemplates } from './load/templates.ts';
import type { Catalog } from './model/catalog.ts';
import { deploy as deployToTarget, type DeployOptions, type DeployReport } from './publish/deploy.ts';
import type { FileWriterOptions } from './publish/file-writer.ts';
import { PUBLIC_DIR, currentBuild, keptManifest, pinBuild, withLocalPublish, type LocalPublish, type LocalPublishResult } from './publish/local-dir.ts';
import { KvsLimitError, KvsReplayError, checkKvsLimits, kvsEntriesOfParts, kvsEntryStream, kvsPart, type KvsPart } from './publish/cloudfront/kvs-entries.ts';
import { isSpilled, render, type PathsSink, type RenderedSite, type SpilledSite } from './render/index.ts';
import { NO_MEMO, createRecordMemo, type KeptRenderMemo, type RecordMemo, type RenderStats } from './render/memo.ts';
import { openRenderMemoFile, renderMemoFile, type RenderMemoFile } from './publish/render-memo-file.ts';
import { routeShards } from './publish/route-shards.ts';
import type { PathTarget, RouteRules } from './render/route-table.ts';
import { recordOf, type BuiltFile, type SiteFile } from './render/site-file.ts';
import { SAMPLE_STORE } from './sample-store.ts';
import { packageOrigin } from './render/packages/origin.ts';
import type { Templates } from './render/html.ts';
import type { SigningSettings } from './trust/index.ts';
import { signSite, type SigningReport } from './trust/sign-site.ts';
import { openSignatureCache } from './trust/signature-cache.ts';
import { SNAPSHOT_KEY } from './trust/snapshot.ts';

export interface BuildOptions {
  /** The manifest store. */
  releasesDir: string;
  /** Where the site is published (a symlink to the current build). */
  site: string;
  /** Sign checksum files and the snapshot; unsigned without. */
  signing?: SigningSettings | undefined;
  /**
   * Read only the manifest files that changed since the last build of this site, and render only
   * the units they touch (default true): its load cache and render memo are kept beside the site.
   */
  incremental?: boolean | undefined;
  /** Check the route table against CloudFront's KeyValueStore limits (default true); the sidecar, whose remote deploy checks them itself, does not. */
  checkCloudFront?: boolean | undefined;
  /** How the new build's files are written (local-dir.ts): past the first few thousand, by a thread of their own. */
  writing?: FileWriterOptions | undefined;
  /** The most paths the route table has for routes.json to be written beside its shards (local-dir.ts). */
  wholeTableMaxPaths?: number | undefined;
}

export interface BuildReport {
  products: number;
  releases: number;
  files: number;
  /** Manifest files the load asked for and how many it read; the others came from the load cache. */
  load: LoadStats;
  /** The render's units, and how many were rendered rather than taken from the build memory or the render memo; undefined for a build without either. */
  units?: RenderStats;
  publish: LocalPublishResult;
  signing: SigningReport;
  /** Why this site could not be deployed to CloudFront as it is; a local site serves regardless. */
  /** Undefined when the site fits, or was not checked. */
  cloudFrontProblem: string | undefined;
  /** Where package-manager files point when mirror.json names no base_url (the embedded default's address); undefined otherwise. */
  packageOriginDefault: string | undefined;
  /** Milliseconds per step. */
  timings: Record<string, number>;
}

/**
 * What a long-lived builder (the sidecar's build thread) keeps from one build to the next: the load
 * cache as last saved, and the rendered units, so a rebuild loads and renders only what changed.
 */
export interface BuildMemory {
  load: LoadCacheMemory;
  render: RecordMemo;
  /**
   * One build or deploy at a time loads and renders with the memory: a build until it has
   * published (its memo's files are then in its build), a deploy until it has signed.
   */
  turn: LimitFunction;
}

export function createBuildMemory(): BuildMemory {
  return { load: {}, render: createRecordMemo(), turn: pLimit(1) };
}

/** Before a render with a memory's memo that takes kept files from `build` (the one the site serves). */
async function renderFrom(memo: RecordMemo, build: string | undefined): Promise<void> {
  if (build === undefined || memo.holds(build)) return memo.from(build);
  const manifest = await keptManifest(build);
  memo.from(build, (key) => manifest?.files[key]?.sha256);
}

export async function build(options: BuildOptions, memory?: BuildMemory): Promise<BuildReport> {
  const { step, timings } = stepTimer();
  const incremental = options.incremental !== false;
  const cacheFile = incremental ? loadCacheFile(options.site) : undefined;
  // The publish is under way from the start: each rendered file is written into the new build
  // folder as it comes, and without a memory only its record is kept, so a build's memory does
  // not grow with the rendered site. Nor with its route table, which without a memory, and
  // unless signing adds to it, is spilled into the new build folder as it renders.
  const spills = !memory && !signs(options.signing);
  return withLocalPublish({ site: options.site, writing: options.writing, wholeTableMaxPaths: options.wholeTableMaxPaths }, async (under) => {
    // Without a memory, the units rendered last time come from the render memo beside the site.
    const saved = !memory && incremental ? openRenderMemoFile(renderMemoFile(options.site), { from: under.current, to: under.build }, { writer: under.writer }) : undefined;
    try {
      if (!memory) return await buildUnder(under, saved);
      return await memory.turn(async () => {
        await renderFrom(memory.render, under.current);
        const report = await buildUnder(under, undefined);
        memory.render.publishedIn(path.resolve(under.build));
        return report;
      });
    } finally {
      saved?.discard();
    }
  });

  async function buildUnder(under: LocalPublish, saved: RenderMemoFile | undefined): Promise<BuildReport> {
    // A spilled table's KeyValueStore entries, a part's as it renders (or as the render memo kept them), for the check.
    const kvsParts: KvsPart[] | undefined = spills && options.checkCloudFront !== false ? [] : undefined;
    const { summary, site: rendered, cache, units } = await renderStore(options.releasesDir, step, {
      cacheFile,
      memory,
      memo: memory?.render ?? saved,
      saveCache: true,
      keep: (file: BuiltFile) => {
        under.put(file);
        return recordOf(file);
      },
      paths: spills ? spillSink(under.paths, kvsParts) : undefined,
    });
    // 5. Sign checksum files and the snapshot, against the snapshot the site serves now; a body
    //    the build did not keep is read back from the new build folder.
    const { site, report: signing } = await step('sign', async () => (isSpilled(rendered) ? { site: rendered, report: UNSIGNED } : sign(rendered, options.signing, { snapshot: await localSnapshot(options.site) }, under.read)));
    // 6. Check the route table against CloudFront's KeyValueStore limits, which deploy enforces.
    const cloudFrontProblem = options.checkCloudFront === false ? undefined : await step('check', () => (isSpilled(site) ? kvsProblemOfParts(site.routes, kvsParts!, () => under.spilledParts()) : kvsProblem(site.routes, [site.routes.paths])));
    // 7. Publish: write what is left (signing's files, the route table, the manifest) and swap the build in atomically.
    const publish = await step('publish', () => under.finish(site, { partsKept: memory !== undefined, shards: saved }));
    saved?.save();
    return { ...summary, files: site.files.length, load: cache.stats, ...(units ? { units } : {}), publish, signing, cloudFrontProblem, timings };
  }
}

const UNSIGNED: SigningReport = { keys: 0, signaturesMade: 0, signaturesReused: 0 };

/** Whether signing adds to the site: it has keys to sign with or to publish. */
function signs(signing: SigningSettings | undefined): boolean {
  return signing !== undefined && signing.keyring.active.length + signing.keyring.retired.length > 0;
}

/**
 * Loads and renders a store in memory and writes nothing but the load cache: run once by a fresh
 * build thread, so the first real build neither pays for compiling the loader, the templates and
 * the renderer nor, given the site it will build (with its memory), renders every unit again, nor
 * checks the served build's hashes or joins every route shard afresh.
 * Without a site, or when the store does not load, the bundled sample store is rendered instead.
 */
export async function rehearse(target?: { releasesDir: string; site: string; memory: BuildMemory }): Promise<void> {
  const { step } = stepTimer();
  if (target) {
    // Its units are in no build yet: the build the site serves holds them if it has their files unchanged.
    target.memory.render.from(undefined);
    const rendered = await renderStore(target.releasesDir, step, { cacheFile: loadCacheFile(target.site), memory: target.memory, memo: target.memory.render, saveCache: true }).catch(() => undefined);
    if (rendered) {
      const current = await currentBuild(target.site);
      const manifest = current === undefined ? undefined : await keptManifest(current);
      if (manifest) target.memory.render.adopt(current!, (key) => manifest.files[key]?.sha256);
      // The shards as the next build's parts fill them, hashed: that build writes only those a change fills otherwise.
      routeShards(rendered.site.routes, rendered.site.routeParts);
      return;
    }
  }
  const { site } = await renderStore(SAMPLE_STORE, step, {});
  kvsProblem(site.routes, [site.routes.paths]);
}

/** What the target serves now: its snapshot file and the highest snapshot version it recorded. */
type PreviousSnapshot = { snapshot?: string | undefined; version?: number | undefined };

async function sign<F extends BuiltFile>(site: RenderedSite<F>, signing: SigningSettings | undefined, previous: PreviousSnapshot, read?: (key: string) => Uint8Array): Promise<{ site: RenderedSite<F | SiteFile>; report: SigningReport }> {
  if (!signing) return { site, report: UNSIGNED };
  const cache = await openSignatureCache(signing.cacheFile);
  const signed = await signSite(site, { keyring: signing.keyring, cache, previous, now: signing.now?.() ?? new Date(), expirySeconds: signing.expirySeconds, resign: signing.resign, read });
  await cache.save();
  return signed;
}

/** The snapshot file a local site serves now, if any. */
export async function localSnapshot(site: string): Promise<string | undefined> {
  const build = await currentBuild(site);
  if (!build) return undefined;
  return readFile(path.join(build, PUBLIC_DIR, SNAPSHOT_KEY), 'utf8').catch(() => undefined);
}

/** Why the table, its paths given a part at a time, would not fit CloudFront's KeyValueStore; undefined when it fits. */
function kvsProblem(rules: RouteRules, parts: Iterable<Record<string, PathTarget>>): string | undefined {
  return limitProblem(() => checkKvsLimits(kvsEntryStream(rules, parts)));
}

/** The same from each part's entries as made when it rendered; from the parts themselves when two collide. */
function kvsProblemOfParts(rules: RouteRules, kvsParts: KvsPart[], parts: () => Iterable<Record<string, PathTarget>>): string | undefined {
  try {
    return limitProblem(() => checkKvsLimits(kvsEntriesOfParts(rules, kvsParts)));
  } catch (error) {
    if (error instanceof KvsReplayError) return kvsProblem(rules, parts());
    throw error;
  }
}

function limitProblem(check: () => void): string | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    if (error instanceof KvsLimitError) return error.message;
    throw error;
  }
}

/** A render's paths into the build's route spill, with each part's KeyValueStore entries kept in `kvsParts`. */
function spillSink(spill: LocalPublish['paths'], kvsParts: KvsPart[] | undefined): PathsSink {
  return {
    add(part) {
      spill.add(part);
      kvsParts?.push(kvsPart(part));
    },
    addKept({ lines, kvs }) {
      spill.addLines(lines);
      kvsParts?.push(kvs);
    },
  };
}

/** The deploy's options, with the manifest store to render in place of a rendered site. */
export interface DeployPipelineOptions extends Omit<DeployOptions, 'site'> {
  releasesDir: string;
  signing?: SigningSettings | undefined;
}

/** Kept with the deploy state: the snapshot last uploaded, so versions only grow whoever deploys. */
const SNAPSHOT_RECORD = 'snapshot.json';

/**
 * With `kept` (the sidecar's build thread: its memory and the local site whose load cache it
 * shares), the deploy loads and renders only what changed since that memory's last build.
 */
export async function deploy(options: DeployPipelineOptions, kept?: { memory: BuildMemory; site: string }): Promise<{ deploy: DeployReport; signing: SigningReport; timings: Record<string, number> }> {
  const { step, timings } = stepTimer();
  // With `kept`, in the memory's turn; the units its memo gives back are the local site's, whose
  // bodies are read from the build that site serves, kept as it is until the deploy is done.
  let unpin = () => {};
  try {
    const { site, report: signing, read } = kept ? await kept.memory.turn(async () => prepare(kept.memory, await currentBuild(kept.site))) : await prepare(undefined, undefined);
    // 6. Deploy: diff against what the target holds, upload in the safe order (the snapshot last),
    //    then the distribution's routes, function and invalidation, delete last.
    const report = await step('deploy', () => deployToTarget({ ...options, site, read }));
    const snapshot = site.files.find((file) => file.key === SNAPSHOT_KEY);
    if (!options.dryRun && signing.snapshot?.resigned && snapshot) {
      await step('record', () => options.target.writeRecord(SNAPSHOT_RECORD, { version: signing.snapshot!.version, snapshot: String(snapshot.body) } satisfies PreviousSnapshot));
    }
    return { deploy: report, signing, timings };
  } finally {
    unpin();
  }

  async function prepare(memory: BuildMemory | undefined, from: string | undefined) {
    if (from !== undefined) unpin = pinBuild(from);
    if (memory) await renderFrom(memory.render, from);
    const { site: rendered, units } = await renderStore(options.releasesDir, step, { cacheFile: kept && loadCacheFile(kept.site), memory, memo: memory?.render });
    if (from !== undefined && units?.rendered === 0) memory!.render.publishedIn(from);
    const read = from === undefined ? undefined : (key: string) => readFileSync(path.join(from, PUBLIC_DIR, key));
    // 5. Sign, against the snapshot the target recorded last.
    const signs = (options.signing?.keyring.active.length ?? 0) > 0;
    const signed = await step('sign', async () => sign(rendered, options.signing, signs ? ((await options.target.readRecord<PreviousSnapshot>(SNAPSHOT_RECORD)) ?? {}) : {}, read));
    return { ...signed, read };
  }
}

type Step = <T>(name: string, run: () => Promise<T> | T) => Promise<T>;

interface RenderStoreOptions {
  /** The load cache to read, and with `saveCache` to write once the store has loaded. */
  cacheFile?: string | undefined;
  saveCache?: boolean;
  /** The load cache's memory, kept by a long-lived builder. */
  memory?: BuildMemory | undefined;
  /** The units rendered last time, given back while their inputs are unchanged; every unit is rendered without. */
  memo?: KeptRenderMemo<BuiltFile> | undefined;
  /** What the site holds of each rendered file (render's `keep`); the file itself by default. */
  keep?: (file: BuiltFile) => BuiltFile;
  /** Where the route table's paths go as they render (render's `paths`); kept in the site without. */
  paths?: PathsSink | undefined;
}

/**
 * Loads and renders the store. The catalog is not returned, only its summary, so that past the
 * render a build holds the site, not the store: a one-off build's catalog is let go of here.
 */
async function renderStore(releasesDir: string, step: Step, options: Omit<RenderStoreOptions, 'keep' | 'paths'>): Promise<Rendered<BuiltFile>>;
async function renderStore(releasesDir: string, step: Step, options: RenderStoreOptions & { keep: (file: BuiltFile) => BuiltFile; paths: RenderStoreOptions['paths'] }): Promise<Rendered<BuiltFile, RenderedSite<BuiltFile> | SpilledSite<BuiltFile>>>;
async function renderStore(releasesDir: string, step: Step, { cacheFile, saveCache = false, memory, memo, keep = (file) => file, paths }: RenderStoreOptions): Promise<Rendered<BuiltFile, RenderedSite<BuiltFile> | SpilledSite<BuiltFile>>> {
  // 1. Read and validate every release file, or with a cache file only those that changed since
  //    it was written (an unusable cache is an empty one); every problem is reported at once.
  const { catalog, cache } = await step('load', async () => {
    const cache = cacheFile ? await openLoadCache(cacheFile, releasesDir, LOADER_FINGERPRINT, memory?.load) : noLoadCache();
    return { catalog: await loadCatalog(releasesDir, { cache }), cache };
  });
  // 2. Keep what this load read for the next one: only a store that loaded without a problem.
  if (saveCache) await step('cache', () => cache.save());
  // 3. Read the HTML templates the renderer compiles.
  const templates: Templates = await step('templates', () => loadTemplates());
  // 4. Render indexes, pages, checksum files and the route table (pure), each file handed to
  //    `keep` as it comes; with a memo, only the units whose inputs changed since its last build.
  let units: RenderStats | undefined;
  const site = await step('render', () => {
    try {
      return paths ? render(catalog, templates, memo ?? NO_MEMO, keep, paths) : render(catalog, templates, memo ?? NO_MEMO, keep);
    } finally {
      units = memo?.finish();
    }
  });
  return { summary: summaryOf(catalog), site, cache, units };
}

interface Rendered<F extends BuiltFile, S = RenderedSite<F>> {
  summary: StoreSummary;
  site: S;
  cache: LoadCache;
  units: RenderStats | undefined;
}

/** What a build reports of the store it rendered. */
interface StoreSummary {
  products: number;
  releases: number;
  /** Where package-manager files point when mirror.json names no base_url (the embedded default's address); undefined otherwise. */
  packageOriginDefault: string | undefined;
}

function summaryOf(catalog: Catalog): StoreSummary {
  const packaged = catalog.products.some((product) => product.packages.outputs.length > 0);
  return {
    products: catalog.products.length,
    releases: catalog.products.reduce((sum, product) => sum + product.releases.length, 0),
    packageOriginDefault: packaged && !catalog.site.baseUrl ? packageOrigin(catalog.site) : undefined,
  };
}

/** Runs named steps, timing each and prefixing its errors with its name. */
function stepTimer(): { step: Step; timings: Record<string, number> } {
  const timings: Record<string, number> = {};
  const step: Step = async (name, run) => {
    const started = performance.now();
    try {
      return await run();
    } catch (error) {
      if (error instanceof Error) error.message = `${name}: ${error.message}`;
      throw error;
    } finally {
      timings[name] = Math.round(performance.now() - started);
    }
  };
  return { step, timings };
}
