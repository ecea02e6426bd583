// Publish target: a local directory. Each build is a folder of the site's files; a symlink swap
// makes a whole build visible at once, and a half-written build is never served. Three builds are
// kept: the current one, the one before (requests that began on it finish), and the one before
// that, which the next build renames, brings up to date in place (writing only the files that
// differ, each by a rename, and removing those the site no longer has) and swaps in. So a publish
// costs what changed, not the size of the site. A build being brought up to date has no site.json
// until it is complete; one without is never reused, and a fresh folder is made instead, its
// unchanged files hard-linked from the current build. A build puts each file as it is rendered
// (withLocalPublish), so the rendered site need never be held whole in memory.
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { copyFile, link, lstat, mkdir, readFile, readdir, readlink, rename, rm, rmdir, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { isSpilled, type RenderedSite, type SpilledSite } from '../render/index.ts';
import type { PathTarget, RouteTable } from '../render/route-table.ts';
import { measured, sizeOf, type BuiltFile, type SiteFile, type SiteFileKind } from '../render/site-file.ts';
import { sha256Hex } from '../stores/hash.ts';
import { fileLocks } from '../stores/locks-file.ts';
import { openFileWriter, textAppender, type FileWriter, type FileWriterOptions } from './file-writer.ts';
import { BATCH_SHARDS, ROUTE_SHARDS_DIR, ROUTE_SHARD_INDEX, WHOLE_TABLE_MAX_PATHS, pathCount, routeShards, routeShardsOnce, routeTablePieces, shardName, type RouteShardIndex, type ShardMemory } from './route-shards.ts';
import { FILE_SHARDS_DIR, fileShardCount, fileShardMembers } from './file-shards.ts';
import { openRouteSpill, type RouteSpill } from './route-spill.ts';

/** A site file's facts: what serving needs for headers, and what the next build diffs against. */
export interface FileFacts {
  sha256: string;
  size: number;
  contentType: string;
  cacheControl: string;
  kind: SiteFileKind;
}

/** Per-file facts kept beside each build. */
export interface SiteManifest {
  files: Record<string, FileFacts>;
  /** The route table's shard files (ROUTE_SHARDS_DIR) by name: their SHA-256, so the next build rewrites only those that differ. */
  shards?: Record<string, string>;
  /** The same for the shards of `files` (FILE_SHARDS_DIR, file-shards.ts), which nginx and the sidecar read a shard at a time. */
  fileShards?: Record<string, string>;
}

export interface LocalPublishResult {
  /** The build folder the site path now points at. */
  build: string;
  /** Site files written anew; with `unchanged`, every site file once. The build's own routes.json, site.json and their shards are counted in neither. */
  written: number;
  /** Site files unchanged since the build the new one started from. */
  unchanged: number;
  /** Site files the build brought up to date no longer has, removed from it. */
  deleted: number;
  /** Older builds removed. */
  removed: number;
}

export const PUBLIC_DIR = 'public';
export const MANIFEST_FILE = 'site.json';
export const ROUTES_FILE = 'routes.json';
const BUILDS_KEPT = 3;
const WRITE_CONCURRENCY = 32;

export interface LocalDirTargetOptions {
  /** The path clients of the site use; becomes a symlink to the current build. */
  site: string;
  /** How the files put are written: past the first few thousand, by a thread of their own (file-writer.ts). */
  writing?: FileWriterOptions | undefined;
  /** The most paths a route table has for routes.json to be written beside its shards (default WHOLE_TABLE_MAX_PATHS). */
  wholeTableMaxPaths?: number | undefined;
}

/** Two publishes of one site (two `mirror build`s, say) take turns: each changes builds the other may be reusing. */
export async function publishToLocalDir(options: LocalDirTargetOptions, rendered: RenderedSite): Promise<LocalPublishResult> {
  return withLocalPublish(options, (publish) => publish.finish(rendered));
}

/**
 * A publish under way, whose files are written as the site renders: `put` writes each rendered file
 * into the new build at once, so a build need not hold the rendered site in memory; `finish` writes
 * what was not put (signing's files), the route table and the manifest, and swaps the build in.
 */
export interface LocalPublish {
  /**
   * Writes the file into the new build unless it is already there; sets its `sha256` and `size`.
   * A record without a body (a file the render memo of the `current` build gave back) is linked
   * from that build. Synchronous: render calls it.
   */
  put(file: BuiltFile): void;
  /** The build folder the site served when this publish began; undefined before the first build. */
  readonly current: string | undefined;
  /** The new build folder. */
  readonly build: string;
  /** What writes the new build's files; a file the build writes beside them (its render memo) may go through it too. */
  readonly writer: FileWriter;
  /** The body of a file put, as written into the new build. */
  read(key: string): Buffer;
  /** Spills the route table's paths into the new build, a part at a time, in order, for a render that does not keep them (route-spill.ts). Synchronous: render calls it. */
  paths: Pick<RouteSpill, 'add' | 'addLines'>;
  /** The parts given to `paths`, read back one at a time. */
  spilledParts(): Iterable<Record<string, PathTarget>>;
  /**
   * `site.files` may be what put was given or records of it (`BuiltFile`); the files not put are
   * written now. The route table is written from the spill for a SpilledSite. With `partsKept`,
   * the table's parts come back in later builds (a render memo keeps them), and their
   * serialization is kept for those; without, it is written in pieces. With `shards`, a spilled
   * table's shards that hold what they held in the `current` build are linked from there instead of
   * made again, and the new build's are remembered.
   */
  finish(site: RenderedSite<BuiltFile> | SpilledSite<BuiltFile>, options?: { partsKept?: boolean; shards?: ShardMemory | undefined }): Promise<LocalPublishResult>;
}

/** Runs `publish` with a publish of the site under way, holding the site's publish lock throughout. */
export async function withLocalPublish<T>({ site, writing, wholeTableMaxPaths = WHOLE_TABLE_MAX_PATHS }: LocalDirTargetOptions, publish: (under: LocalPublish) => Promise<T>): Promise<T> {
  return fileLocks({ dir: `${site}.lock` }).withLock('publish', async () => {
    const under = await openPublish(site, writing, wholeTableMaxPaths);
    try {
      return await publish(under);
    } finally {
      await under.close();
    }
  });
}

async function openPublish(site: string, writing: FileWriterOptions | undefined, wholeTableMaxPaths: number): Promise<LocalPublish & { close(): Promise<void> }> {
  const buildsDir = `${site}.builds`;
  const current = await currentBuild(site);
  const reusable = current ? await oldestComplete(buildsDir, current) : undefined;
  // The build to bring up to date, and what it holds now; or a fresh folder, linked from the current build.
  const base = reusable ?? (current ? { build: current, manifest: await keptManifest(current) } : undefined);
  // Always a new name: whatever keeps a build by its path (a server's snapshot of it, an nginx
  // config) never mistakes the reused folder for the build it was.
  const build = newBuildFolder(buildsDir);
  if (reusable) {
    await rename(reusable.build, build);
    await unlink(path.join(build, MANIFEST_FILE));
  } else {
    await mkdir(build, { recursive: true });
  }
  const put = new Set<string>();
  const made = new Set<string>();
  const writer = openFileWriter(writing);
  const spill = openRouteSpill(path.join(build, `${ROUTES_FILE}.spill`), { writer });
  let written = 0;
  let unchanged = 0;
  let unlinkedCounted = 0;
  /** Waits for the files put so far; those the base had lost, so written rather than linked, move to `written`. */
  const drain = () => {
    const { unlinked } = writer.drain();
    unchanged -= unlinked - unlinkedCounted;
    written += unlinked - unlinkedCounted;
    unlinkedCounted = unlinked;
  };
  return {
    put(file) {
      if (put.has(file.key)) throw new Error(`Two site files with the key ${file.key}`);
      put.add(file.key);
      const { sha256 } = file.body === undefined ? file : measured(file);
      // In a build brought up to date, an unchanged file is already there: only the others are touched.
      if (reusable?.manifest.files[file.key]?.sha256 === sha256) {
        unchanged++;
        return;
      }
      const target = path.join(build, PUBLIC_DIR, file.key);
      const directory = path.dirname(target);
      if (!made.has(directory)) {
        writer.make({ kind: 'folder', path: directory });
        made.add(directory);
      }
      // Nothing serves a fresh folder: written in place. A reused one may still have a slow reader.
      const replacing = reusable !== undefined;
      if (file.body === undefined) {
        if (current === undefined) throw new Error(`The site file ${file.key} has no body, and there is no current build to take it from`);
        const failure = `The site file ${file.key} was not rendered again (the render memo had it), but the current build lost it`;
        writer.make({ kind: 'link', source: path.join(current, PUBLIC_DIR, file.key), target, replacing, failure });
        if (reusable) written++;
        else unchanged++;
      } else if (!reusable && base?.manifest?.files[file.key]?.sha256 === sha256) {
        // Linked from the base, or written where the base lost it: counted once the writer says which.
        writer.make({ kind: 'link', source: path.join(base.build, PUBLIC_DIR, file.key), target, replacing, otherwise: file.body });
        unchanged++;
      } else {
        writer.make({ kind: 'write', target, body: file.body, replacing });
        written++;
      }
    },
    current,
    build,
    writer,
    close: () => writer.close(),
    read(key) {
      if (!put.has(key)) throw new Error(`The site file ${key} was not put`);
      drain();
      return readFileSync(path.join(build, PUBLIC_DIR, key));
    },
    paths: spill,
    spilledParts: () => spill.parts(),
    async finish(rendered, { partsKept = true, shards: shardMemory } = {}) {
      drain();
      const manifest: SiteManifest = { files: {}, shards: {} };
      const outputs: Output[] = [];
      for (const file of rendered.files) {
        if (!put.has(file.key)) {
          if (file.body === undefined) throw new Error(`The site file ${file.key} was neither put nor given a body`);
          outputs.push({ relative: path.join(PUBLIC_DIR, file.key), body: file.body, key: file.key, sha256: measured(file).sha256 });
        }
        // Every file is measured by now: by put, or just above.
        manifest.files[file.key] = { sha256: file.sha256!, size: sizeOf(file), contentType: file.contentType, cacheControl: file.cacheControl, kind: file.kind };
      }
      const shardBase = base && { ...base, reused: reusable !== undefined };
      const table = path.join(build, ROUTES_FILE);
      const whole = (isSpilled(rendered) ? spill.count() : pathCount(rendered.routeParts ?? [rendered.routes.paths])) <= wholeTableMaxPaths;
      // A reused folder's routes.json is from when the site was smaller, or is written anew below.
      if (!whole && reusable) await rm(table, { force: true });
      if (isSpilled(rendered)) {
        if (whole) writePiecesSync(writer, table, spill.table(rendered.routes));
        const previous = current === undefined ? undefined : shardMemory?.previous;
        const write = shardWriter(writer, build, ROUTE_SHARDS, manifest.shards!, shardBase, previous && { build: current!, hashes: previous.hashes });
        for (const [name, body] of spill.shards(rendered.routes, BATCH_SHARDS, previous)) write(name, body);
        spill.close();
      } else if (partsKept) {
        if (whole) writePiecesSync(writer, table, routeTablePieces(rendered.routes, rendered.routeParts));
        for (const [name, file] of routeShards(rendered.routes, rendered.routeParts)) {
          manifest.shards![name] = file.sha256;
          // Its text is read only where it is written: most shards are where they were, or linked.
          outputs.push({ relative: path.join(ROUTE_SHARDS_DIR, name), body: () => file.body, shard: name, sha256: file.sha256 });
        }
      } else {
        if (whole) writePiecesSync(writer, table, routeTablePieces(rendered.routes, rendered.routeParts, { once: true }));
        const write = shardWriter(writer, build, ROUTE_SHARDS, manifest.shards!, shardBase);
        for (const [name, body] of routeShardsOnce(rendered.routes, rendered.routeParts)) write(name, body);
      }
      writer.drain();
      shardMemory?.made(manifest.shards!);

      const pending = reusable ? outputs.filter((output) => !(unchangedSince(reusable.manifest, output) && ++unchanged)) : outputs;
      const directories = new Set(pending.map((output) => path.dirname(path.join(build, output.relative))));
      for (const directory of [...directories].sort()) await mkdir(directory, { recursive: true });
      // Asynchronous, a few at a time, so the disk works on several at once.
      const limit = pLimit(WRITE_CONCURRENCY);
      await Promise.all(
        pending.map((output) =>
          limit(async () => {
            const target = path.join(build, output.relative);
            if (base && !reusable && unchangedSince(base.manifest, output) && (await tryLink(path.join(base.build, output.relative), target))) {
              unchanged++;
              return;
            }
            // A manifest from before shards were hashed: they are compared by their bytes, which are small.
            const body = typeof output.body === 'function' ? output.body() : output.body;
            if (reusable && output.shard !== undefined && !reusable.manifest.shards && (await sameBytes(target, body))) return;
            await writeReplacing(target, body);
            if (output.key !== undefined) written++;
          }),
        ),
      );
      const deleted = reusable ? await deleteMissing(build, reusable.manifest, manifest) : 0;
      manifest.fileShards = {};
      if (reusable) await removeShardsPast(path.join(build, FILE_SHARDS_DIR), reusable.manifest.fileShards, fileShardCount(manifest.files));
      const fileShard = shardWriter(writer, build, FILE_SHARDS, manifest.fileShards, shardBase);
      writePiecesSync(writer, path.join(build, MANIFEST_FILE), manifestPieces(manifest, fileShard));
      await keepManifest(build, manifest);

      await swapSymlink(site, build);
      const removed = await pruneBuilds(buildsDir, build, current);
      return { build, written, unchanged, deleted, removed };
    },
  };
}

/** Where a kind of shard goes in a build folder, and where its hashes are in a manifest. */
interface ShardKind {
  dir: string;
  hashes(manifest: SiteManifest): Record<string, string> | undefined;
}
const ROUTE_SHARDS: ShardKind = { dir: ROUTE_SHARDS_DIR, hashes: (manifest) => manifest.shards };
const FILE_SHARDS: ShardKind = { dir: FILE_SHARDS_DIR, hashes: (manifest) => manifest.fileShards };

/**
 * Writes a kind of shard, one at a time, and records its hash in `hashes`. Only those that differ
 * from the build's `base` are written: in a build brought up to date (`reused`) the others are
 * there already; in a fresh folder they are linked from the base. A shard given without a body
 * holds what it held in the `previous` build: linked from there.
 */
function shardWriter(
  writer: FileWriter,
  build: string,
  kind: ShardKind,
  hashes: Record<string, string>,
  base: { build: string; manifest?: SiteManifest | undefined; reused: boolean } | undefined,
  previous?: { build: string; hashes: Record<string, string> },
): (name: string, body: string | undefined) => void {
  writer.make({ kind: 'folder', path: path.join(build, kind.dir) });
  const before = base?.manifest && kind.hashes(base.manifest);
  return (name, body) => {
    const sha256 = body === undefined ? previous!.hashes[name]! : sha256Hex(body);
    hashes[name] = sha256;
    const same = before?.[name] === sha256;
    if (same && base!.reused) return;
    const target = path.join(build, kind.dir, name);
    // Nothing serves a fresh folder: written in place. A reused one may still have a slow reader.
    const replacing = base?.reused === true;
    if (body === undefined) {
      const failure = `The shard ${kind.dir}/${name} was not made again (it is unchanged), but the current build lost it`;
      writer.make({ kind: 'link', source: path.join(previous!.build, kind.dir, name), target, replacing, failure });
    } else if (same) writer.make({ kind: 'link', source: path.join(base!.build, kind.dir, name), target, replacing: false, otherwise: body });
    else writer.make({ kind: 'write', target, body, replacing });
  };
}

/**
 * JSON.stringify(manifest) a member at a time: at 100,000 releases the manifest is 29 MB of JSON,
 * which written whole would be held twice more (the text and its bytes) at the end of the build.
 * The files are listed shard by shard (file-shards.ts), each shard given to `shard` as its JSON
 * object and its hash recorded in `fileShards`, which comes last.
 */
function* manifestPieces({ files, shards, fileShards }: SiteManifest, shard: (name: string, body: string) => void): Generator<string> {
  yield '{"files":{';
  let first = true;
  for (const [name, members] of fileShardMembers(files)) {
    shard(name, `{${members}}`);
    if (members === '') continue;
    yield first ? members : `,${members}`;
    first = false;
  }
  yield `}${shards === undefined ? '' : `,"shards":${JSON.stringify(shards)}`},"fileShards":${JSON.stringify(fileShards)}}`;
}

/** Writes a text file from pieces and a final newline, by a rename, without joining them but into APPEND_PIECE pieces; the writer writes them as they come. */
function writePiecesSync(writer: FileWriter, target: string, pieces: Iterable<string>): void {
  const temporary = `${target}.${randomUUID().slice(0, 8)}.tmp`;
  try {
    const fd = openSync(temporary, 'w');
    try {
      const out = textAppender(writer, () => fd);
      for (const piece of pieces) out.add(piece);
      out.add('\n');
      out.flush();
    } finally {
      try {
        writer.drain();
      } finally {
        closeSync(fd);
      }
    }
    renameSync(temporary, target);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

function newBuildFolder(buildsDir: string): string {
  return path.join(buildsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`);
}

/**
 * Copies of the current build, every file hard-linked, made until the site has the builds a
 * publish brings up to date in place (BUILDS_KEPT): without them, the first two publishes after a
 * site's first build each make a fresh folder and link every file of the site into it (120,000 at
 * 100,000 releases), where one brought up to date writes what changed. Each copy's site.json comes
 * last, dated before every other build's, so a publish takes the copies first and the build before
 * the current one stays as it is for the requests still reading it. Returns how many were made.
 */
export async function spareBuilds({ site }: Pick<LocalDirTargetOptions, 'site'>): Promise<number> {
  return fileLocks({ dir: `${site}.lock` }).withLock('publish', async () => {
    const current = await currentBuild(site);
    const manifest = current && (await keptManifest(current));
    if (!current || !manifest) return 0;
    const buildsDir = `${site}.builds`;
    const complete = await completeBuilds(buildsDir, current);
    const missing = BUILDS_KEPT - 1 - complete.length;
    if (missing <= 0) return 0;
    const oldest = Math.min((await lstat(path.join(current, MANIFEST_FILE))).mtimeMs, ...complete.map((build) => build.published));
    const spares = Array.from({ length: missing }, () => newBuildFolder(buildsDir));
    // The links are made in a thread of their own: the thread that asked is free meanwhile (the
    // sidecar's build thread renders its rehearsal), as links are the kernel's work.
    const writer = openFileWriter({ threadAfter: 0 });
    try {
      for (const spare of spares) writer.make({ kind: 'tree', source: current, target: spare, except: [MANIFEST_FILE] });
      await writer.settled();
    } finally {
      await writer.close();
    }
    for (const [made, spare] of spares.entries()) {
      const temporary = path.join(spare, `${MANIFEST_FILE}.tmp`);
      await copyFile(path.join(current, MANIFEST_FILE), temporary);
      const dated = new Date(oldest - (made + 1) * 1000);
      await utimes(temporary, dated, dated);
      await rename(temporary, path.join(spare, MANIFEST_FILE));
      await keepManifest(spare, manifest);
    }
    return missing;
  });
}

/** The build folder a site path points at, or undefined before the first build. */
export async function currentBuild(site: string): Promise<string | undefined> {
  try {
    const target = await readlink(site);
    return path.resolve(path.dirname(site), target);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EINVAL') throw new Error(`${site} is a directory mirror did not create; remove it or choose another --out`);
    throw error;
  }
}

/**
 * The manifests this process last wrote or read, by build folder, with the identity of their
 * site.json: the next publish reads one from disk only when another process replaced it. A few
 * builds' worth; the oldest go first.
 */
const manifests = new Map<string, { identity: string; manifest: SiteManifest }>();
const MANIFESTS_KEPT = BUILDS_KEPT + 1;

async function manifestIdentity(build: string): Promise<string | undefined> {
  const stat = await lstat(path.join(build, MANIFEST_FILE), { bigint: true }).catch(() => undefined);
  return stat && `${stat.dev} ${stat.ino} ${stat.size} ${stat.mtimeNs}`;
}

/** A build's manifest: the one kept in memory while its site.json is the file it came from; read otherwise. Undefined when it has none. */
export async function keptManifest(build: string): Promise<SiteManifest | undefined> {
  const identity = await manifestIdentity(build);
  if (identity === undefined) return undefined;
  const kept = manifests.get(build);
  if (kept?.identity === identity) return kept.manifest;
  const manifest = await readManifest(build).catch(() => undefined);
  // Kept only when the file read is the one whose identity was taken.
  if (manifest && (await manifestIdentity(build)) === identity) remember(build, identity, manifest);
  return manifest;
}

async function keepManifest(build: string, manifest: SiteManifest): Promise<void> {
  const identity = await manifestIdentity(build);
  if (identity !== undefined) remember(build, identity, manifest);
}

function remember(build: string, identity: string, manifest: SiteManifest): void {
  manifests.delete(build);
  manifests.set(build, { identity, manifest });
  for (const oldest of manifests.keys()) {
    if (manifests.size <= MANIFESTS_KEPT) break;
    manifests.delete(oldest);
  }
}

/** How many shards of file facts a build folder has (a power of two); undefined for a build made before it had them. */
export async function fileShardsIn(build: string): Promise<number | undefined> {
  const dir = path.join(build, FILE_SHARDS_DIR);
  const names = await readdir(dir).catch(() => undefined);
  if (names === undefined) return undefined;
  if (names.length === 0 || (names.length & (names.length - 1)) !== 0) throw new Error(`${dir} holds ${names.length} files, not a build's shards of file facts`);
  return names.length;
}

export async function readManifest(build: string): Promise<SiteManifest> {
  return JSON.parse(await readFile(path.join(build, MANIFEST_FILE), 'utf8')) as SiteManifest;
}

/** A build's whole route table: routes.json, or its shards joined where the table was too large for one file. */
export async function readRoutes(build: string): Promise<RouteTable> {
  try {
    return JSON.parse(await readFile(path.join(build, ROUTES_FILE), 'utf8')) as RouteTable;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const dir = path.join(build, ROUTE_SHARDS_DIR);
  const { shards, version, ...rules } = JSON.parse(await readFile(path.join(dir, ROUTE_SHARD_INDEX), 'utf8')) as RouteShardIndex;
  const paths: RouteTable['paths'] = {};
  for (let n = 0; n < shards; n++) Object.assign(paths, JSON.parse(await readFile(path.join(dir, shardName(n)), 'utf8')));
  return { version, paths, ...rules };
}

interface Output {
  relative: string;
  /** Or what makes it, when it is needed. */
  body: string | Uint8Array | (() => string);
  /** Site key of a public file, or name of a route shard, and its hash; the build's own routes.json and site.json have none. */
  key?: string;
  shard?: string;
  sha256?: string;
}

function unchangedSince(previous: SiteManifest | undefined, output: Output): boolean {
  if (output.key !== undefined) return previous?.files[output.key]?.sha256 === output.sha256;
  return output.shard !== undefined && previous?.shards?.[output.shard] === output.sha256;
}

/**
 * Builds this process still reads from (a remote deploy uploads bodies from the build its render
 * memo took them from), by resolved path, with how many readers: a publish neither brings one up to
 * date in place nor removes it.
 */
const pinned = new Map<string, number>();

/** Keeps `build` as it is until the function returned is called. */
export function pinBuild(build: string): () => void {
  const key = path.resolve(build);
  pinned.set(key, (pinned.get(key) ?? 0) + 1);
  let unpinned = false;
  return () => {
    if (unpinned) return;
    unpinned = true;
    const readers = pinned.get(key)! - 1;
    if (readers === 0) pinned.delete(key);
    else pinned.set(key, readers);
  };
}

/** The oldest build other than the current one and the one before it, with a manifest: it is complete and serves no one. */
async function oldestComplete(buildsDir: string, current: string): Promise<{ build: string; manifest: SiteManifest } | undefined> {
  const complete = await completeBuilds(buildsDir, current);
  if (complete.length < BUILDS_KEPT - 1) return undefined;
  const oldest = complete[0]!.build;
  const manifest = await keptManifest(oldest);
  return manifest && { build: oldest, manifest };
}

/** The complete builds other than the current one that no one pinned, oldest first: the one before the current build is the one swapped in last, whose manifest is the newest. */
async function completeBuilds(buildsDir: string, current: string): Promise<{ build: string; published: number }[]> {
  const others = (await readdir(buildsDir).catch(() => [] as string[]))
    .map((name) => path.join(buildsDir, name))
    .filter((build) => build !== current && !pinned.has(path.resolve(build)));
  const dated = await Promise.all(others.map(async (build) => ({ build, published: (await lstat(path.join(build, MANIFEST_FILE)).catch(() => undefined))?.mtimeMs })));
  return dated.filter((entry): entry is { build: string; published: number } => entry.published !== undefined).sort((a, b) => a.published - b.published);
}

/** Removes the shards a reused build had past the new build's `count`: a shard folder holds its build's shards alone (nginx counts them). */
async function removeShardsPast(dir: string, old: Record<string, string> | undefined, count: number): Promise<void> {
  for (const name of Object.keys(old ?? {})) if (Number.parseInt(name, 16) >= count) await rm(path.join(dir, name), { force: true });
}

/** Removes the public files the old manifest has and the new one does not, and the folders that leaves empty. */
async function deleteMissing(build: string, old: SiteManifest, current: SiteManifest): Promise<number> {
  const gone = Object.keys(old.files).filter((key) => !(key in current.files));
  const folders = new Set<string>();
  for (const key of gone) {
    await rm(path.join(build, PUBLIC_DIR, key), { force: true });
    for (let folder = path.dirname(key); folder !== '.'; folder = path.dirname(folder)) folders.add(folder);
  }
  // Deepest first; a folder that still holds something stays.
  for (const folder of [...folders].sort((a, b) => b.length - a.length)) await rmdir(path.join(build, PUBLIC_DIR, folder)).catch(() => undefined);
  return gone.length;
}

/** Writes a file by a rename, so a reader that opened the old one keeps reading it whole. */
async function writeReplacing(target: string, body: string | Uint8Array): Promise<void> {
  const temporary = `${target}.${randomUUID().slice(0, 8)}.tmp`;
  try {
    await writeFile(temporary, body);
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

async function sameBytes(file: string, body: string | Uint8Array): Promise<boolean> {
  const bytes = await readFile(file).catch(() => undefined);
  return bytes !== undefined && bytes.equals(typeof body === 'string' ? Buffer.from(body) : body);
}

async function swapSymlink(site: string, build: string): Promise<void> {
  await mkdir(path.dirname(site), { recursive: true });
  const temporary = `${site}.${randomUUID().slice(0, 8)}.swap`;
  await symlink(path.relative(path.dirname(site), build), temporary);
  await rename(temporary, site);
}

/**
 * Keeps the builds a later publish needs (the current one, the one before, and one complete build
 * to bring up to date) and those pinned: removes incomplete ones and the oldest beyond those.
 */
async function pruneBuilds(buildsDir: string, current: string, previous: string | undefined): Promise<number> {
  const names = (await readdir(buildsDir)).sort();
  const kept = new Set([current, previous]);
  const candidates: { build: string; published: number | undefined }[] = [];
  for (const name of names) {
    const build = path.join(buildsDir, name);
    if (!kept.has(build) && !pinned.has(path.resolve(build))) candidates.push({ build, published: (await lstat(path.join(build, MANIFEST_FILE)).catch(() => undefined))?.mtimeMs });
  }
  const complete = candidates.filter((entry) => entry.published !== undefined).sort((a, b) => b.published! - a.published!);
  const stale = [...candidates.filter((entry) => entry.published === undefined), ...complete.slice(Math.max(0, BUILDS_KEPT - kept.size))];
  for (const { build } of stale) await rm(build, { recursive: true, force: true });
  return stale.length;
}

/** Hard-links an unchanged file from the previous build; false when the previous build lost it. */
async function tryLink(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch {
    return false;
  }
}
