// Incremental rendering. The site is rendered in units (a binary product's own listing, one minor's
// listing with its checksum files, the agent product, a package manager's files, the registry),
// each a pure function of inputs named by a fingerprint. A memo kept from one render to the next
// gives a unit's previous output back while its fingerprint is unchanged, so a rebuild renders only
// the units a change touches, and hashes only their files. Without a memo every unit is rendered:
// the result is the same site either way (test/incremental-render.test.ts). The sidecar's build
// thread keeps its memo in memory; `mirror build` keeps one in a file (publish/render-memo-file.ts).
import { createHash } from 'node:crypto';
import { measured, type BuiltFile, type SiteFile } from './site-file.ts';

/**
 * A memo gives back units whose files are `File`: with their bodies (a memo in memory), or only
 * their records (a memo kept in a file, whose bodies are in the build it describes).
 */
export interface RenderMemo<File extends BuiltFile = SiteFile> {
  /** `make()`, or what it returned last time for the same name and fingerprint (asked for only by a memo that keeps units). */
  unit<T extends { files: SiteFile[] }>(name: string, fingerprint: () => string, make: () => T): Kept<T, File>;
}

/** A unit as a memo gives it back. */
export type Kept<T extends { files: SiteFile[] }, File extends BuiltFile> = Omit<T, 'files'> & { files: File[] };

/** Renders every unit; what a one-off build uses. */
export const NO_MEMO: RenderMemo = { unit: (_name, _fingerprint, make) => make() };

export interface RenderStats {
  /** Units asked for in the last render. */
  units: number;
  /** Of those, the units rendered; the others came from the memo. */
  rendered: number;
}

export interface KeptRenderMemo<File extends BuiltFile = SiteFile> extends RenderMemo<File> {
  /** Call once a render has finished: forgets the units it did not ask for, and counts. */
  finish(): RenderStats;
}

/** A memo for a long-lived builder (the sidecar's build thread). Each unit's files get their SHA-256 once, when rendered. */
export function createRenderMemo(): KeptRenderMemo {
  let units = new Map<string, { fingerprint: string; output: { files: SiteFile[] } }>();
  let next = new Map<string, { fingerprint: string; output: { files: SiteFile[] } }>();
  let rendered = 0;
  return {
    unit(name, fingerprintOf, make) {
      const kept = units.get(name);
      const fingerprint = fingerprintOf();
      if (kept && kept.fingerprint === fingerprint) {
        next.set(name, kept);
        return kept.output as ReturnType<typeof make>;
      }
      rendered++;
      const output = make();
      output.files.forEach(measured);
      next.set(name, { fingerprint, output });
      return output;
    },
    finish() {
      const stats = { units: next.size, rendered };
      units = next;
      next = new Map();
      rendered = 0;
      return stats;
    },
  };
}

/** One fingerprint for several. */
export function combine(parts: readonly string[]): string {
  return hashOf(parts.join('\n'));
}

function hashOf(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}
