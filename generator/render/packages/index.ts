// The package-manager files of every product that asks for them (product.json `packages.outputs`):
// an install script, a Homebrew formula and a Scoop manifest per product, and the apt and yum
// repositories shared by all products. Pure, like the rest of render.
import type { Catalog } from '../../model/catalog.ts';
import type { LayoutOutput } from '../binary.ts';
import { renderAptRepository } from './apt.ts';
import { renderHomebrewFormula } from './homebrew.ts';
import { renderInstallScript } from './install-script.ts';
import { renderRpmRepositories } from './rpm.ts';
import { renderScoopManifest } from './scoop.ts';

export function renderPackages(catalog: Catalog): LayoutOutput {
  const output: LayoutOutput = { files: [], paths: {} };
  const add = (more: LayoutOutput) => {
    output.files.push(...more.files);
    Object.assign(output.paths, more.paths);
  };
  for (const product of catalog.products) {
    const { outputs } = product.packages;
    if (outputs.includes('install-script')) add(renderInstallScript(product, catalog.site));
    if (outputs.includes('homebrew')) add(renderHomebrewFormula(product, catalog.site));
    if (outputs.includes('scoop')) add(renderScoopManifest(product, catalog.site));
  }
  add(renderAptRepository(catalog.products.filter((product) => product.packages.outputs.includes('apt')), catalog.site));
  add(renderRpmRepositories(catalog.products.filter((product) => product.packages.outputs.includes('rpm')), catalog.site));
  return output;
}
