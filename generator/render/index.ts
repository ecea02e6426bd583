// Catalog → site files and the route table. Pure: no file system, network or clock.
import { resolveChannel, type Catalog } from '../model/catalog.ts';
import { AGENT_ROOT, DOWNLOADS_ROOT, renderAgentProduct } from './agent.ts';
import { BINARY_CRUMB, BINARY_ROOT, renderBinaryProduct } from './binary.ts';
import { createPageRenderer, type Templates } from './html.ts';
import { renderPackages } from './packages/index.ts';
import { renderRegistry } from './registry.ts';
import type { Endpoint, PathTarget, RouteTable } from './route-table.ts';
import { CACHE_SHORT, jsonFile, type SiteFile } from './site-file.ts';

export interface RenderedSite {
  /** Sorted by key. */
  files: SiteFile[];
  routes: RouteTable;
}

export function render(catalog: Catalog, templates: Templates): RenderedSite {
  const pages = createPageRenderer(templates, catalog.site.title);
  const files: SiteFile[] = [];
  const paths: Record<string, PathTarget> = {};
  const endpoints: Endpoint[] = [];
  const addPaths = (more: Record<string, PathTarget>) => {
    for (const [path, target] of Object.entries(more)) {
      if (paths[path]) throw new Error(`Two routes for ${path}`);
      paths[path] = target;
    }
  };

  const binaryProducts = catalog.products.filter((product) => product.layout === 'binary');
  for (const product of catalog.products) {
    if (product.layout === 'binary') {
      const output = renderBinaryProduct(product, pages);
      files.push(...output.files);
      addPaths(output.paths);
    } else {
      const output = renderAgentProduct(product, catalog.site.baseUrl, pages);
      files.push(...output.files);
      addPaths(output.paths);
      endpoints.push(...output.endpoints);
    }
  }
  const packages = renderPackages(catalog);
  files.push(...packages.files);
  addPaths(packages.paths);
  const registry = renderRegistry(catalog.registry, pages, catalog.site.baseUrl);
  files.push(...registry.files);
  addPaths(registry.paths);

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
  files.push({ key: 'assets/site.css', body: stylesheet, contentType: 'text/css; charset=utf-8', cacheControl: CACHE_SHORT, kind: 'page' });
  addPaths({ '/assets/site.css': { type: 'file', key: 'assets/site.css' } });
  files.push(jsonFile('index.json', { products: productLinks }));
  files.push(pages.page('index.html', 'index', { title: catalog.site.title, breadcrumbs: [], products: productLinks }));
  addPaths({ '/': { type: 'file', key: 'index.json', html: 'index.html' } });
  if (binaryProducts.length > 0) {
    const binaryLinks = productLinks.filter((product) => product.layout === 'binary');
    files.push(jsonFile(`${BINARY_ROOT}/index.json`, { success: true, products: binaryLinks.map(({ name, url, latest }) => ({ name, url, latest })), count: binaryLinks.length }));
    files.push(pages.page(`${BINARY_ROOT}/index.html`, 'index', { title: 'Binary releases', breadcrumbs: [BINARY_CRUMB], products: binaryLinks }));
    addPaths({ [`/${BINARY_ROOT}/`]: { type: 'file', key: `${BINARY_ROOT}/index.json`, html: `${BINARY_ROOT}/index.html` } });
  }

  files.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (let i = 1; i < files.length; i++) {
    if (files[i]!.key === files[i - 1]!.key) throw new Error(`Two site files with the key ${files[i]!.key}`);
  }
  return {
    files,
    routes: {
      version: 1,
      paths: sortKeys(paths),
      endpoints,
      fallbacks: [
        { prefix: `/${BINARY_ROOT}/`, shape: 'flat', message: 'Binary not found' },
        { prefix: `/${AGENT_ROOT}`, shape: 'nested', message: 'Not found' },
        { prefix: `/${DOWNLOADS_ROOT}/`, shape: 'flat', message: 'Artifact not found' },
      ],
      errorCacheControl: CACHE_SHORT,
    },
  };
}

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
