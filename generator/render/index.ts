// Catalog → site files and the route table. Pure: no file system, network or clock.
import { resolveChannel, type Catalog, type Product } from '../model/catalog.ts';
import { AGENT_ROOT, DOWNLOADS_ROOT, renderAgentProduct } from './agent.ts';
import { BINARY_CRUMB, BINARY_ROOT, binaryProductUnits, settingsFingerprint, type KeptPaths, type LayoutOutput } from './binary.ts';
import { createPageRenderer, type Templates } from './html.ts';
import { fingerprintOf } from '../model/fingerprint.ts';
import { NO_MEMO, combine, type RenderMemo } from './memo.ts';
import { renderPackages } from './packages/index.ts';
import { renderRegistry } from './registry.ts';
import type { Endpoint, PathTarget, RouteRules, RouteTable } from './route-table.ts';
import { CACHE_SHORT, jsonFile, type BuiltFile, type SiteFile } from './site-file.ts';

export interface RenderedSite<F extends BuiltFile = SiteFile> {
  /** Sorted by key. */
  files: F[];
  routes: RouteTable;
  /**
   * The route table's paths as rendered, unit by unit: `routes.paths` is these in order. A unit a
   * memo gave back is the same object as last time, so publish serializes only the new ones.
   */
  routeParts?: Record<string, PathTarget>[];
}

/** A rendered site whose route paths went, unit by unit, to the render's `paths` (a build's route spill) instead of into its table. */
export interface SpilledSite<F extends BuiltFile = SiteFile> {
  files: F[];
  routes: RouteRules & { paths?: never };
}

/** Where a render that does not keep its route paths hands them, a unit at a time, in order (a build's route spill). */
export interface PathsSink {
  add(part: Record<string, PathTarget>): void;
  /** A unit's paths as a render memo kept them (`LayoutOutput.kept`). */
  addKept(kept: KeptPaths): void;
}

export function isSpilled<F extends BuiltFile>(site: RenderedSite<F> | SpilledSite<F>): site is SpilledSite<F> {
  return !('paths' in site.routes);
}

/**
 * With a memo kept from the previous render, only the units whose inputs changed are rendered
 * again (memo.ts); the site is the same as without. Each file passes through `keep` as it is
 * rendered, and the site holds what that returns: a build that writes files out as they come
 * (LocalPublish.put) keeps only their records, so it never holds the whole site's bodies. With
 * `paths`, each unit's route paths are handed to it in order and not kept either.
 */
export function render(catalog: Catalog, templates: Templates, memo?: RenderMemo): RenderedSite;
export function render(catalog: Catalog, templates: Templates, memo: RenderMemo<BuiltFile>): RenderedSite<BuiltFile>;
export function render<F extends BuiltFile>(catalog: Catalog, templates: Templates, memo: RenderMemo<BuiltFile>, keep: (file: BuiltFile) => F): RenderedSite<F>;
export function render<F extends BuiltFile>(catalog: Catalog, templates: Templates, memo: RenderMemo<BuiltFile>, keep: (file: BuiltFile) => F, paths: PathsSink): SpilledSite<F>;
export function render(
  catalog: Catalog,
  templates: Templates,
  memo: RenderMemo<BuiltFile> = NO_MEMO,
  keep: (file: BuiltFile) => BuiltFile = (file) => file,
  paths?: PathsSink,
): RenderedSite<BuiltFile> | SpilledSite<BuiltFile> {
  const pages = createPageRenderer(templates, catalog.site.title);
  // What every unit depends on: the templates and the site's settings.
  let contextFingerprint: string | undefined;
  const context = () => (contextFingerprint ??= combine([JSON.stringify(templates), JSON.stringify(catalog.site)]));
  const files: BuiltFile[] = [];
  const add = (file: BuiltFile) => {
    files.push(keep(file));
  };
  // In the order of the units: products by name, a product's listing before its minors in release
  // order, then package files, the registry and the site's own pages. The same store always gives
  // the same order, so the same route table, byte for byte.
  const parts: Record<string, PathTarget>[] = [];
  const endpoints: Endpoint[] = [];
  const addPaths = (more: Record<string, PathTarget>) => (paths ? paths.add(more) : parts.push(more));
  const addUnit = (unit: LayoutOutput<BuiltFile>) => {
    for (const file of unit.files) add(file);
    if (paths && unit.kept) paths.addKept(unit.kept);
    else addPaths(unit.paths);
  };

  const binaryProducts = catalog.products.filter((product) => product.layout === 'binary');
  for (const product of catalog.products) {
    if (product.layout === 'binary') {
      for (const unit of binaryProductUnits(product, pages, memo, context)) addUnit(unit);
    } else {
      const output = memo.unit(`agent ${product.name}`, () => productFingerprint(product, context()), () => renderAgentProduct(product, catalog.site.baseUrl, pages));
      addUnit(output);
      endpoints.push(...output.endpoints);
    }
  }
  const packages = renderPackages(catalog, memo, (product) => productFingerprint(product, context()));
  addUnit(packages);
  const registry = memo.unit('registry', () => combine([context(), JSON.stringify(catalog.registry)]), () => renderRegistry(catalog.registry, pages, catalog.site.baseUrl));
  addUnit(registry);

  const productLinks = catalog.products.map((product) => ({
    name: product.name,
    title: product.title,
    description: product.description,
    layout: product.layout,
    url: product.layout === 'binary' ? `/${BINARY_ROOT}/${product.name}/` : `/${AGENT_ROOT}`,
    latest: (resolveChannel(product, 'stable') ?? resolveChannel(product, 'latest'))?.version ?? null,
  }));
  const stylesheet = templates['site.css'];
  if (stylesheet === undefined) throw new Error('The stylesheet `site.css` is missing from templates/');
  add({ key: 'assets/site.css', body: stylesheet, contentType: 'text/css; charset=utf-8', cacheControl: CACHE_SHORT, kind: 'page' });
  addPaths({ '/assets/site.css': { type: 'file', key: 'assets/site.css' } });
  add(jsonFile('index.json', { products: productLinks }));
  add(pages.page('index.html', 'index', { title: catalog.site.title, breadcrumbs: [], products: productLinks }));
  addPaths({ '/': { type: 'file', key: 'index.json', html: 'index.html' } });
  if (binaryProducts.length > 0) {
    const binaryLinks = productLinks.filter((product) => product.layout === 'binary');
    add(jsonFile(`${BINARY_ROOT}/index.json`, { success: true, products: binaryLinks.map(({ name, url, latest }) => ({ name, url, latest })), count: binaryLinks.length }));
    add(pages.page(`${BINARY_ROOT}/index.html`, 'index', { title: 'Binary releases', breadcrumbs: [BINARY_CRUMB], products: binaryLinks }));
    addPaths({ [`/${BINARY_ROOT}/`]: { type: 'file', key: `${BINARY_ROOT}/index.json`, html: `${BINARY_ROOT}/index.html` } });
  }

  files.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (let i = 1; i < files.length; i++) {
    if (files[i]!.key === files[i - 1]!.key) throw new Error(`Two site files with the key ${files[i]!.key}`);
  }
  const fallbacks: RouteRules['fallbacks'] = [
    { prefix: `/${BINARY_ROOT}/`, shape: 'flat', message: 'Binary not found' },
    { prefix: `/${AGENT_ROOT}`, shape: 'nested', message: 'Not found' },
    { prefix: `/${DOWNLOADS_ROOT}/`, shape: 'flat', message: 'Artifact not found' },
  ];
  if (paths) return { files, routes: { version: 1, endpoints, fallbacks, errorCacheControl: CACHE_SHORT } };
  return { files, routeParts: parts, routes: { version: 1, paths: mergePaths(parts), endpoints, fallbacks, errorCacheControl: CACHE_SHORT } };
}

/** A product with every release, in the render's context. */
function productFingerprint(product: Product, context: string): string {
  return combine([settingsFingerprint(product, context), ...product.releases.map(fingerprintOf)]);
}

/** The units' paths as one table; a path two units claim is a build error. */
export function mergePaths(parts: Record<string, PathTarget>[]): Record<string, PathTarget> {
  const paths: Record<string, PathTarget> = {};
  for (const part of parts) {
    for (const path in part) {
      if (path in paths) throw new Error(`Two routes for ${path}`);
      paths[path] = part[path]!;
    }
  }
  return paths;
}
