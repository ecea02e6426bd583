// The build, step by step: load → render → publish. Each step gets what it needs and returns what
// it makes; a failing step's error names the step.
import { loadCatalog } from './load/index.ts';
import { loadTemplates } from './load/templates.ts';
import type { Catalog } from './model/catalog.ts';
import { publishToLocalDir, type LocalPublishResult } from './publish/local-dir.ts';
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
  /** Milliseconds per step. */
  timings: Record<string, number>;
}

export async function build(options: BuildOptions): Promise<BuildReport> {
  const timings: Record<string, number> = {};
  const step = async <T>(name: string, run: () => Promise<T> | T): Promise<T> => {
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

  // 1. Read and validate every release file; every problem is reported at once.
  const catalog: Catalog = await step('load', () => loadCatalog(options.releasesDir));
  // 2. Read the HTML templates the renderer compiles.
  const templates: Templates = await step('templates', () => loadTemplates());
  // 3. Render indexes, pages, checksum files and the route table (pure).
  const site: RenderedSite = await step('render', () => render(catalog, templates));
  // 4. Publish: write what changed into a new build folder and swap it in atomically.
  const publish = await step('publish', () => publishToLocalDir({ site: options.site }, site));

  return {
    products: catalog.products.length,
    releases: catalog.products.reduce((sum, product) => sum + product.releases.length, 0),
    files: site.files.length,
    publish,
    timings,
  };
}
