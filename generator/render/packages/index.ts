// The package-manager files of every product that asks for them (product.json `packages.outputs`):
// an install script, a Homebrew formula and a Scoop manifest per product, and the apt and yum
// repositories shared by all products. Pure, like the rest of render.
import type { Catalog, Product } from '../../model/catalog.ts';
import { combine, type RenderMemo } from '../memo.ts';
import type { LayoutOutput } from '../binary.ts';
import type { BuiltFile } from '../site-file.ts';
import { renderAptRepository } from './apt.ts';
import { renderHomebrewFormula } from './homebrew.ts';
import { renderInstallScript } from './install-script.ts';
import { renderRpmRepositories } from './rpm.ts';
import { renderScoopManifest } from './scoop.ts';

/** Each product's files, and each repository, are a unit of the memo, named by `fingerprint` of the products they list. */
export function renderPackages<File extends BuiltFile>(catalog: Catalog, memo: RenderMemo<File>, fingerprint: (product: Product) => string): LayoutOutput<File> {
  const output: LayoutOutput<File> = { files: [], paths: {} };
  const add = (more: LayoutOutput<File>) => {
    output.files.push(...more.files);
    Object.assign(output.paths, more.paths);
  };
  for (const product of catalog.products) {
    const { outputs } = product.packages;
    if (outputs.length === 0) continue;
    const inputs = () => fingerprint(product);
    if (outputs.includes('install-script')) add(memo.unit(`install-script ${product.name}`, inputs, () => renderInstallScript(product, catalog.site)));
    if (outputs.includes('homebrew')) add(memo.unit(`homebrew ${product.name}`, inputs, () => renderHomebrewFormula(product, catalog.site)));
    if (outputs.includes('scoop')) add(memo.unit(`scoop ${product.name}`, inputs, () => renderScoopManifest(product, catalog.site)));
  }
  const repository = (output: 'apt' | 'rpm', make: (products: Product[]) => LayoutOutput) => {
    const products = catalog.products.filter((product) => product.packages.outputs.includes(output));
    add(memo.unit(output, () => combine(products.map(fingerprint)), () => make(products)));
  };
  repository('apt', (products) => renderAptRepository(products, catalog.site));
  repository('rpm', (products) => renderRpmRepositories(products, catalog.site));
  return output;
}
