// A synthetic manifest store for the benchmarks: one binary product with many releases of six
// artifacts each, in the format of releases/agent-as-code/*.json. Deterministic. By default no
// blobs (a build reads only the release files); with `blobsDir`, each artifact's bytes (about
// 100 bytes) are also written to `<blobsDir>/<blob key>`, and the release file states their size
// and SHA-256, as `mirror release add` would.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const PRODUCT = 'bench-cli';
const FILE_PREFIX = 'bench_cli';
const TARGETS = ['linux/amd64', 'linux/arm64', 'darwin/amd64', 'darwin/arm64', 'windows/amd64', 'windows/386'];
const FIRST_PUBLISHED = Date.parse('2020-01-01T00:00:00Z');
const HOUR = 3_600_000;

export interface StoreShape {
  majors: number;
  minors: number;
  patches: number;
}

/** 10 majors × 100 minors × 10 patches = 10,000 releases, 60,000 artifacts. */
export const DEFAULT_SHAPE: StoreShape = { majors: 10, minors: 100, patches: 10 };

export interface StoreOptions {
  /** A blob store root (`$MIRROR_DATA_DIR/blobs`) to write every artifact's bytes into. */
  blobsDir?: string;
}

/** Bytes of an artifact when blobs are written. */
export const BLOB_SIZE = 100;

/** Writes the store into `dir` and returns the number of releases. */
export async function writeSyntheticStore(dir: string, shape: StoreShape = DEFAULT_SHAPE, options: StoreOptions = {}): Promise<number> {
  await mkdir(path.join(dir, PRODUCT), { recursive: true });
  await writeJson(path.join(dir, 'mirror.json'), { title: 'Bench', base_url: '' });
  await writeJson(path.join(dir, PRODUCT, 'product.json'), {
    name: PRODUCT,
    title: 'Bench CLI',
    description: '',
    homepage: null,
    layout: 'binary',
    file_prefix: FILE_PREFIX,
  });
  let index = 0;
  for (let major = 0; major < shape.majors; major++) {
    for (let minor = 0; minor < shape.minors; minor++) {
      for (let patch = 0; patch < shape.patches; patch++) await writeRelease(dir, `${major}.${minor}.${patch}`, index++, options);
    }
  }
  return index;
}

/**
 * Writes `<dir>/bench-cli/<version>.json`; `index` orders publication times (one hour apart).
 * With `blobsDir`, writes the artifacts' bytes first, as `release add` does.
 */
export async function writeRelease(dir: string, version: string, index: number, options: StoreOptions = {}): Promise<void> {
  const [major, minor, patch] = version.split('.');
  const artifacts = [];
  for (const target of TARGETS) {
    const [platform, arch] = target.split('/');
    const filename = `${FILE_PREFIX}_${version}_${platform}_${arch}.zip`;
    const blob = `releases/${major}/${minor}/${patch}/${filename}`;
    let size: number;
    let sha256: string;
    if (options.blobsDir) {
      const bytes = blobBytes(filename);
      const file = path.join(options.blobsDir, blob);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, bytes);
      size = bytes.length;
      sha256 = createHash('sha256').update(bytes).digest('hex');
    } else {
      sha256 = createHash('sha256').update(filename).digest('hex');
      size = 1_000_000 + parseInt(sha256.slice(0, 5), 16);
    }
    artifacts.push({ platform, arch, filename, size, sha256, content_type: 'application/zip', blob });
  }
  await writeJson(path.join(dir, PRODUCT, `${version}.json`), {
    version,
    published_at: new Date(FIRST_PUBLISHED + index * HOUR).toISOString().replace('.000Z', 'Z'),
    notes_url: `https://github.com/example/bench-cli/releases/tag/v${version}`,
    status: 'active',
    artifacts,
  });
}

/** The file name, a newline, and `.` padding up to BLOB_SIZE bytes. */
function blobBytes(filename: string): Buffer {
  const head = `${filename}\n`;
  return Buffer.from(head.padEnd(Math.max(BLOB_SIZE, head.length + 1) - 1, '.') + '\n');
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}
