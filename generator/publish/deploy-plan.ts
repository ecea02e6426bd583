// What a remote target must receive, and in which order (DESIGN.md section 7): blobs and shared
// assets first, then site files from the deepest paths up, so an index is uploaded only after
// everything it refers to; deletions last. Pure: the remote state is passed in.
import type { RenderedSite } from '../render/index.ts';
import { CACHE_IMMUTABLE, sizeOf, type BuiltFile } from '../render/site-file.ts';
import { sha256Hex } from '../stores/hash.ts';
import { SNAPSHOT_KEY } from '../trust/snapshot.ts';

export interface DeployObject {
  key: string;
  sha256: string;
  size: number;
  contentType: string;
  cacheControl: string;
  contentDisposition?: string;
  source: { type: 'body'; body: string | Uint8Array } | { type: 'blob'; blob: string };
}

export interface RemoteObject {
  size: number;
  /** From the object's metadata; undefined when the object carries none. */
  sha256: string | undefined;
}

export interface PlannedPut {
  object: DeployObject;
  reason: 'new' | 'changed';
}

export interface PublishPlan {
  /** Uploads in order: each step completes before the next begins. */
  steps: { name: string; puts: PlannedPut[] }[];
  /** Keys no longer referenced, removed after every upload. */
  deletes: string[];
  unchanged: number;
}

/**
 * Every object the site needs on a remote target: rendered files, and artifact bytes under their
 * blob keys. A file the site holds only the record of is read with `read` when it is uploaded.
 */
export function deployObjects(site: RenderedSite<BuiltFile>, read?: (key: string) => Uint8Array): DeployObject[] {
  const objects: DeployObject[] = [];
  const blobs = new Set<string>();
  for (const target of Object.values(site.routes.paths)) {
    if (target.type !== 'blob' || blobs.has(target.blob)) continue;
    blobs.add(target.blob);
    objects.push({
      key: target.blob,
      sha256: target.sha256,
      size: target.size,
      contentType: target.contentType,
      cacheControl: CACHE_IMMUTABLE,
      contentDisposition: `attachment; filename="${target.filename}"`,
      source: { type: 'blob', blob: target.blob },
    });
  }
  for (const file of site.files) {
    const { key, body } = file;
    const source: DeployObject['source'] =
      body !== undefined
        ? { type: 'body', body }
        : {
            type: 'body',
            get body() {
              if (!read) throw new Error(`The site file ${key} has no body, and no build to read it from`);
              return read(key);
            },
          };
    objects.push({ key, sha256: file.sha256 ?? sha256Hex(body!), size: sizeOf(file), contentType: file.contentType, cacheControl: file.cacheControl, source });
  }
  return objects;
}

export class BlobOverwriteError extends Error {
  constructor(readonly key: string) {
    super(`The target holds other bytes under the artifact key \`${key}\`; published artifacts are never overwritten`);
    this.name = 'BlobOverwriteError';
  }
}

export function planPublish(objects: DeployObject[], remote: ReadonlyMap<string, RemoteObject>, options: { delete: boolean }): PublishPlan {
  const steps = new Map<string, PlannedPut[]>();
  let unchanged = 0;
  for (const object of objects) {
    const existing = remote.get(object.key);
    if (existing && existing.sha256 === object.sha256) {
      unchanged++;
      continue;
    }
    if (existing && object.source.type === 'blob' && existing.sha256 !== undefined) throw new BlobOverwriteError(object.key);
    const step = stepOf(object);
    const puts = steps.get(step) ?? [];
    puts.push({ object, reason: existing ? 'changed' : 'new' });
    steps.set(step, puts);
  }
  const wanted = new Set(objects.map((object) => object.key));
  const deletes = options.delete ? [...remote.keys()].filter((key) => !wanted.has(key)).sort() : [];
  const ordered = [...steps.entries()].sort(([a], [b]) => stepRank(a) - stepRank(b));
  return { steps: ordered.map(([name, puts]) => ({ name, puts: puts.sort((x, y) => (x.object.key < y.object.key ? -1 : 1)) })), deletes, unchanged };
}

/** The signed snapshot names every other file: it goes up after all of them. */
export const SNAPSHOT_STEP = 'snapshot';
/** The top of a package repository names its indexes by hash (apt's Release, yum's repomd.xml): after every other file. */
const REPOSITORY_TOP = /(^|\/)(InRelease|Release|Release\.gpg|repomd\.xml|repomd\.xml\.asc)$/;
const REPOSITORY_TOP_STEP = 'repository tops';

/** Blobs and assets, then one step per path depth, deepest first, then package repositories' tops, then the snapshot. */
function stepOf(object: DeployObject): string {
  if (object.source.type === 'blob') return 'artifacts';
  if (object.key === SNAPSHOT_KEY) return SNAPSHOT_STEP;
  if (REPOSITORY_TOP.test(object.key)) return REPOSITORY_TOP_STEP;
  if (object.key.startsWith('assets/')) return 'assets';
  return `depth ${object.key.split('/').length}`;
}

function stepRank(step: string): number {
  if (step === SNAPSHOT_STEP) return 1001;
  if (step === REPOSITORY_TOP_STEP) return 1000;
  if (step === 'artifacts') return -2;
  if (step === 'assets') return -1;
  return 1000 - Number(step.slice('depth '.length));
}
