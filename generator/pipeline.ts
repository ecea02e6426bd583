// The build and the deploy, step by step: load → render → publish. Each step gets what it needs
// and returns what it makes; a failing step's error names the step.
import { loadCatalog } from './load/index.ts';
import { loadTemplates } from './load/templates.ts';
import type { Catalog } from './model/catalog.ts';
import { deploy as deployToTarget, type DeployOptions, type DeployReport } from './publish/deploy.ts';
import { publishToLocalDir, type LocalPublishResult } from './publish/local-dir.ts';
import { KvsLimitError, checkKvsLimits, kvsEntries } from './publish/cloudfront/kvs-entries.ts';
import { render, type RenderedSite } from './render/index.ts';
import type { Templates } from './render/html.ts';

export interface BuildOptions {
  /** The manifest store. */
  releasesDir: string;
  /** Where the site is published (a symlink to the current build). */
  site: string;
}

export interface BuildReport {
  products: number;
  releases: number;
  files: number;
  publish: LocalPublishResult;
  /** Why this site could not be deployed to CloudFront as it is; a local site serves regardless. */
  cloudFrontProblem: string | undefined;
  /** Milliseconds per step. */
  timings: Record<string, number>;
}

export async function build(options: BuildOptions): Promise<BuildReport> {
  const { step, timings } = stepTimer();
  const { catalog, site } = await renderStore(options.releasesDir, step);
  // 4. Publish: write what changed into a new build folder and swap it in atomically.
  const publish = await step('publish', () => publishToLocalDir({ site: options.site }, site));
  // 5. Check the route table against CloudFront's KeyValueStore limits, which deploy enforces.
  const cloudFrontProblem = await step('check', () => kvsProblem(site));
  return { ...counts(catalog, site), publish, cloudFrontProblem, timings };
}

function kvsProblem(site: RenderedSite): string | undefined {
  try {
    checkKvsLimits(kvsEntries(site.routes));
    return undefined;
  } catch (error) {
    if (error instanceof KvsLimitError) return error.message;
    throw error;
  }
}

/** The deploy's options, with the manifest store to render in place of a rendered site. */
export interface DeployPipelineOptions extends Omit<DeployOptions, 'site'> {
  releasesDir: string;
}

export async function deploy(options: DeployPipelineOptions): Promise<{ deploy: DeployReport; timings: Record<string, number> }> {
  const { step, timings } = stepTimer();
  const { site } = await renderStore(options.releasesDir, step);
  // 4. Deploy: diff against what the target holds, upload in the safe order, then the
  //    distribution's routes, function and invalidation, delete last.
  const report = await step('deploy', () => deployToTarget({ ...options, site }));
  return { deploy: report, timings };
}

type Step = <T>(name: string, run: () => Promise<T> | T) => Promise<T>;

async function renderStore(releasesDir: string, step: Step): Promise<{ catalog: Catalog; site: RenderedSite }> {
  // 1. Read and validate every release file; every problem is reported at once.
  const catalog: Catalog = await step('load', () => loadCatalog(releasesDir));
  // 2. Read the HTML templates the renderer compiles.
  const templates: Templates = await step('templates', () => loadTemplates());
  // 3. Render indexes, pages, checksum files and the route table (pure).
  const site: RenderedSite = await step('render', () => render(catalog, templates));
  return { catalog, site };
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

function counts(catalog: Catalog, site: RenderedSite) {
  return {
    products: catalog.products.length,
    releases: catalog.products.reduce((sum, product) => sum + product.releases.length, 0),
    files: site.files.length,
  };
}
