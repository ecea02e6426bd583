// A Homebrew formula per product (`brew install <origin>/homebrew/Formula/<name>.rb`): the latest
// stable release's archive per os and cpu, which Homebrew picks with on_macos/on_linux and
// on_intel/on_arm blocks. Rendered as text: Homebrew has no formula format but Ruby.
import { resolveChannel, type Artifact, type Product, type Release, type SiteSettings } from '../../model/catalog.ts';
import type { Arch, Platform } from '../../model/platforms.ts';
import { BINARY_ROOT, artifactPath, type LayoutOutput } from '../binary.ts';
import { CACHE_SHORT, TEXT_TYPE } from '../site-file.ts';
import { packageOrigin } from './origin.ts';

export const HOMEBREW_ROOT = 'homebrew/Formula';

/** Homebrew's own systems: 32-bit builds have no block to go in. */
const SYSTEMS: { block: string; platform: Platform }[] = [
  { block: 'on_macos', platform: 'darwin' },
  { block: 'on_linux', platform: 'linux' },
];
const CPUS: { block: string; arch: Arch }[] = [
  { block: 'on_intel', arch: 'amd64' },
  { block: 'on_arm', arch: 'arm64' },
];

/** Homebrew's audit rejects a longer `desc`. */
const DESC_LIMIT = 80;

export function renderHomebrewFormula(product: Product, site: SiteSettings): LayoutOutput {
  if (product.layout !== 'binary') {
    throw new Error(`Expected a binary-layout product for a Homebrew formula, got \`${product.name}\` (${product.layout})`);
  }
  // The newest stable release with a macOS or Linux archive (a Windows-only release leaves the formula
  // as it was); without one, there is nothing to install yet.
  const release = resolveChannel(product, 'stable', (candidate) => SYSTEMS.some(({ platform }) => CPUS.some(({ arch }) => archiveFor(candidate, platform, arch))));
  if (!release) return { files: [], paths: {} };
  const origin = packageOrigin(site);
  const systems = SYSTEMS.map(({ block, platform }) => ({
    block,
    cpus: CPUS.flatMap(({ block, arch }) => {
      const archive = archiveFor(release, platform, arch);
      return archive ? [{ block, url: downloadUrl(origin, product, release, archive), sha256: archive.sha256 }] : [];
    }),
  })).filter((system) => system.cpus.length > 0);
  if (systems.length === 0) return { files: [], paths: {} };

  const { name, binary, license } = product.packages;
  const lines = [
    `class ${formulaClassName(name)} < Formula`,
    `  desc ${rubyString(homebrewDesc(product.description || product.title, [name, product.name, product.title]))}`,
    `  homepage ${rubyString(product.homepage ?? `${origin}/${BINARY_ROOT}/${product.name}/`)}`,
    `  version ${rubyString(release.version)}`,
    ...(license ? [`  license ${rubyString(license)}`] : []),
    ...systems.flatMap(({ block, cpus }) => [
      '',
      `  ${block} do`,
      ...cpus.flatMap((cpu, index) => [
        ...(index > 0 ? [''] : []),
        `    ${cpu.block} do`,
        `      url ${rubyString(cpu.url)}`,
        `      sha256 ${rubyString(cpu.sha256)}`,
        '    end',
      ]),
      '  end',
    ]),
    '',
    '  def install',
    `    bin.install ${rubyString(binary)}`,
    '  end',
    '',
    '  test do',
    `    assert_match version.to_s, shell_output("#{bin}/${rubyInterpolated(binary)} --version")`,
    '  end',
    'end',
  ];
  const key = `${HOMEBREW_ROOT}/${name}.rb`;
  return {
    files: [{ key, body: `${lines.join('\n')}\n`, contentType: TEXT_TYPE, cacheControl: CACHE_SHORT, kind: 'index' }],
    paths: { [`/${key}`]: { type: 'file', key } },
  };
}

/** Homebrew's `Formulary.class_s`: `agent-as-code` → `AgentAsCode`, `foo+bar` → `Fooxbar`, `php@8` → `PhpAT8`. */
export function formulaClassName(name: string): string {
  const capitalized = name.charAt(0).toUpperCase() + name.slice(1).toLowerCase();
  return capitalized
    .replace(/[-_.\s]([a-zA-Z0-9])/g, (_, letter: string) => letter.toUpperCase())
    .replaceAll('+', 'x')
    .replace(/(.)@(\d)/, '$1AT$2');
}

/**
 * A `desc` Homebrew's audit accepts: no leading article or product name, no trailing period,
 * a capital first letter, at most 80 characters. "The tool CLI: does things." → "Does things".
 */
export function homebrewDesc(description: string, names: string[]): string {
  const whole = description.trim().replace(/\.+$/, '');
  let desc = whole;
  const article = /^(?:a|an|the)\s+/i;
  const name = new RegExp(`^(?:${names.map(escapeRegExp).join('|')})\\b[\\s:,-]*`, 'i');
  const withoutArticle = desc.replace(article, '');
  if (name.test(withoutArticle)) {
    const colon = withoutArticle.indexOf(': ');
    desc = colon >= 0 ? withoutArticle.slice(colon + 2) : withoutArticle.replace(name, '');
  }
  desc = desc.replace(article, '');
  if (desc.length > DESC_LIMIT) {
    const space = desc.lastIndexOf(' ', DESC_LIMIT);
    desc = desc.slice(0, space > 0 ? space : DESC_LIMIT).replace(/[\s,;:-]+$/, '');
  }
  // A description that is only the name keeps it: an empty `desc` is worse than a named one.
  if (!desc) desc = whole;
  return desc.charAt(0).toUpperCase() + desc.slice(1);
}

function archiveFor(release: Release, platform: Platform, arch: Arch): Artifact | undefined {
  return release.artifacts.find((artifact) => artifact.format === 'archive' && artifact.platform === platform && artifact.arch === arch);
}

function downloadUrl(origin: string, product: Product, release: Release, artifact: Artifact): string {
  return `${origin}${artifactPath(product, release, artifact)}`;
}

/** A double-quoted Ruby string literal: JSON's escapes are Ruby's too, and `#` must not start an interpolation. */
function rubyString(value: string): string {
  return JSON.stringify(value).replaceAll('#', '\\#');
}

/** Text inside an existing double-quoted Ruby string. */
function rubyInterpolated(value: string): string {
  return rubyString(value).slice(1, -1);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
