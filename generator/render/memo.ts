// Incremental rendering. The site is rendered in units (a binary product's own listing, one minor's
// listing with its checksum files, the agent product, a package manager's files, the registry),
// each a pure function of inputs named by a fingerprint. A memo kept from one render to the next
// gives a unit's previous output back while its fingerprint is unchanged, so a rebuild renders only
// the units a change touches, and hashes only their files. Without a memo every unit is rendered:
// the result is the same site either way (test/incremental-render.test.ts). The sidecar's build
// thread keeps its memo in memory; `mirror build` keeps one in a file (publish/render-memo-file.ts).
import { createHash } from 'node:crypto';
import { recordOf, type BuiltFile, type SiteFile, type WrittenFile } from './site-file.ts';

/**
 * A memo gives back units whose files are `File`: a memo that keeps units keeps only their records
 * (in memory, or in a file), whose bodies are in the build they were published in.
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

/**
 * A memo for a long-lived builder (the sidecar's build thread), kept in memory. Like the memo
 * `mirror build` keeps in a file, it holds each unit's files as their records (key, hash, size,
 * headers), not their bodies: those are in the build the render was published in, which the next
 * build links them from. So it gives a unit back only for a render that takes files from a build
 * holding them: the build it was published in, or any other whose files have the same hashes (a
 * build another process published, or the one served when the builder started).
 */
export interface RecordMemo extends KeptRenderMemo<BuiltFile> {
  /**
   * Call before a render whose kept files are taken from `build` (the build the site serves, or
   * none). Unless the memo's files were all published in that build, `hashOf` tells what it holds
   * (undefined: nothing), and a unit is given back only while each of its files is there unchanged.
   */
  from(build: string | undefined, hashOf?: (key: string) => string | undefined): void;
  /** Whether the memo's files were all published in `build`: then `from(build)` needs no hashes. */
  holds(build: string): boolean;
  /** Call once the last render's files are all in `build`: it published them there, or gave back every unit from there. */
  publishedIn(build: string): void;
  /**
   * After a render that published nothing (a rehearsal): when `build` has every file of the memo
   * with the same hash (`hashOf`), it is as if published there, and a render from that build needs
   * no hashes. Returns whether it was.
   */
  adopt(build: string, hashOf: (key: string) => string | undefined): boolean;
}

export function createRecordMemo(): RecordMemo {
  type Unit = { fingerprint: string; output: { files: WrittenFile[] } };
  let units = new Map<string, Unit>();
  let next = new Map<string, Unit>();
  let rendered = 0;
  // The build every file of `units` is in; undefined from a render's start until it is published.
  let published: string | undefined;
  // Whether a unit's files are in the build the render takes kept files from.
  let there: (unit: Unit) => boolean = () => false;
  return {
    from(build, hashOf) {
      const trusted = build !== undefined && build === published;
      there = trusted ? () => true : hashOf ? (unit) => heldIn(unit, hashOf) : () => false;
      published = undefined;
    },
    holds: (build) => build === published,
    publishedIn(build) {
      published = build;
    },
    adopt(build, hashOf) {
      const held = [...units.values()].every((unit) => heldIn(unit, hashOf));
      if (held) published = build;
      return held;
    },
    unit(name, fingerprintOf, make) {
      const kept = units.get(name);
      const fingerprint = fingerprintOf();
      if (kept && kept.fingerprint === fingerprint && there(kept)) {
        next.set(name, kept);
        return kept.output as Kept<ReturnType<typeof make>, WrittenFile>;
      }
      rendered++;
      const output = make();
      next.set(name, { fingerprint, output: { ...output, files: output.files.map(recordOf) } });
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

/** Whether a build whose files have the hashes `hashOf` gives has every file of the unit unchanged. */
function heldIn(unit: { output: { files: WrittenFile[] } }, hashOf: (key: string) => string | undefined): boolean {
  return unit.output.files.every((file) => hashOf(file.key) === file.sha256);
}

/** One fingerprint for several. */
export function combine(parts: readonly string[]): string {
  return hashOf(parts.join('\n'));
}

function hashOf(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}
