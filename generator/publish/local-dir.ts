// Publish target: a local directory. Each build goes into a new folder next to the previous
// one; unchanged files are hard-linked from it, changed ones written, and a symlink swap makes the
// whole build visible at once. A half-written build is never served.
import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import type { RenderedSite } from '../render/index.ts';
import type { RouteTable } from '../render/route-table.ts';
import type { SiteFileKind } from '../render/site-file.ts';
import { sha256Hex } from '../stores/hash.ts';
import { ROUTE_SHARDS_DIR, routeShards } from './route-shards.ts';

/** Per-file facts kept beside each build: what serving needs for headers, and what the next build diffs against. */
export interface SiteManifest {
  files: Record<string, { sha256: string; size: number; contentType: string; cacheControl: string; kind: SiteFileKind }>;
}

export interface LocalPublishResult {
  /** The build folder the site path now points at. */
  build: string;
  /** Site files written anew; with `linked`, every site file once. The build's own routes.json, its shards and site.json are always written and counted in neither. */
  written: number;
  /** Site files unchanged since the previous build, hard-linked from it. */
  linked: number;
  /** Older builds removed. */
  removed: number;
}

export const PUBLIC_DIR = 'public';
export const MANIFEST_FILE = 'site.json';
export const ROUTES_FILE = 'routes.json';
const BUILDS_KEPT = 2;
const WRITE_CONCURRENCY = 32;

export interface LocalDirTargetOptions {
  /** The path clients of the site use; becomes a symlink to the current build. */
  site: string;
}

export async function publishToLocalDir({ site }: LocalDirTargetOptions, rendered: RenderedSite): Promise<LocalPublishResult> {
  const buildsDir = `${site}.builds`;
  const previous = await currentBuild(site);
  const previousManifest = previous ? await readManifest(previous).catch(() => undefined) : undefined;
  const build = path.join(buildsDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`);

  const manifest: SiteManifest = { files: {} };
  const outputs: Output[] = rendered.files.map((file) => {
    const sha256 = file.sha256 ?? sha256Hex(file.body);
    manifest.files[file.key] = { sha256, size: Buffer.byteLength(file.body), contentType: file.contentType, cacheControl: file.cacheControl, kind: file.kind };
    return { relative: path.join(PUBLIC_DIR, file.key), body: file.body, key: file.key, sha256 };
  });
  outputs.push({ relative: ROUTES_FILE, body: `${JSON.stringify(rendered.routes)}\n` });
  for (const [name, body] of routeShards(rendered.routes)) outputs.push({ relative: path.join(ROUTE_SHARDS_DIR, name), body });
  outputs.push({ relative: MANIFEST_FILE, body: `${JSON.stringify(manifest)}\n` });

  let written = 0;
  let linked = 0;
  const directories = new Set(outputs.map((output) => path.dirname(path.join(build, output.relative))));
  for (const directory of [...directories].sort()) await mkdir(directory, { recursive: true });
  // Asynchronous, a few at a time: the sidecar publishes in-process and must keep serving meanwhile.
  const limit = pLimit(WRITE_CONCURRENCY);
  await Promise.all(
    outputs.map((output) =>
      limit(async () => {
        const target = path.join(build, output.relative);
        if (previous && unchangedSince(previousManifest, output) && (await tryLink(path.join(previous, output.relative), target))) {
          linked++;
          return;
        }
        await writeFile(target, output.body);
        if (output.key !== undefined) written++;
      }),
    ),
  );

  await swapSymlink(site, build);
  const removed = await pruneBuilds(buildsDir, build);
  return { build, written, linked, removed };
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

export async function readManifest(build: string): Promise<SiteManifest> {
  return JSON.parse(await readFile(path.join(build, MANIFEST_FILE), 'utf8')) as SiteManifest;
}

export async function readRoutes(build: string): Promise<RouteTable> {
  return JSON.parse(await readFile(path.join(build, ROUTES_FILE), 'utf8')) as RouteTable;
}

interface Output {
  relative: string;
  body: string | Uint8Array;
  /** Site key and hash of a public file; the build's own routes.json and site.json have none and are always written. */
  key?: string;
  sha256?: string;
}

function unchangedSince(previous: SiteManifest | undefined, output: Output): boolean {
  return output.key !== undefined && previous?.files[output.key]?.sha256 === output.sha256;
}

async function swapSymlink(site: string, build: string): Promise<void> {
  await mkdir(path.dirname(site), { recursive: true });
  const temporary = `${site}.${randomUUID().slice(0, 8)}.swap`;
  await symlink(path.relative(path.dirname(site), build), temporary);
  await rename(temporary, site);
}

/** Keeps the newest builds so requests still streaming from the previous one can finish. */
async function pruneBuilds(buildsDir: string, current: string): Promise<number> {
  const names = (await readdir(buildsDir)).sort();
  const stale = names.filter((name) => path.join(buildsDir, name) !== current).slice(0, Math.max(0, names.length - BUILDS_KEPT));
  for (const name of stale) await rm(path.join(buildsDir, name), { recursive: true, force: true });
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

