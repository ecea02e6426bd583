// A synthetic manifest store for the benchmarks: binary products with many releases of six
// artifacts each, in the format of releases/agent-as-code/*.json. By default one product; a shape
// with `products` has that many, each with the shape's releases, so a store of N releases can be one
// product's or many products' (the sites differ: per-product pages and indexes). Deterministic. By
// default no blobs (a build reads only the release files); with `blobsDir`, each artifact's bytes
// (about 100 bytes) are also written to `<blobsDir>/<blob key>`, and the release file states their
// size and SHA-256, as `mirror release add` would.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const PRODUCT = 'bench-cli';
const TARGETS = ['linux/amd64', 'linux/arm64', 'darwin/amd64', 'darwin/arm64', 'windows/amd64', 'windows/386'];
const FIRST_PUBLISHED = Date.parse('2020-01-01T00:00:00Z');
const HOUR = 3_600_000;

export interface StoreShape {
  majors: number;
  minors: number;
  patches: number;
  /** Products sharing the store, each with majors × minors × patches releases (default 1: PRODUCT alone). */
  products?: number;
}

/** 10 majors × 100 minors × 10 patches = 10,000 releases, 60,000 artifacts. */
export const DEFAULT_SHAPE: StoreShape = { majors: 10, minors: 100, patches: 10 };

export interface StoreOptions {
  /** A blob store root (`$MIRROR_DATA_DIR/blobs`) to write every artifact's bytes into. */
  blobsDir?: string;
}

export interface ReleaseOptions extends StoreOptions {
  /** One of the shape's productNames (default PRODUCT). */
  product?: string;
}

/** The shape's products: PRODUCT alone, or `bench-cli-01`, `bench-cli-02` … (zero-padded, so they sort in order). */
export function productNames(shape: StoreShape): string[] {
  const products = shape.products ?? 1;
  if (products === 1) return [PRODUCT];
  const digits = String(products).length;
  return Array.from({ length: products }, (_, i) => `${PRODUCT}-${String(i + 1).padStart(digits, '0')}`);
}

/** Releases in a store of `shape`, all products together. */
export function releaseCount(shape: StoreShape): number {
  return shape.majors * shape.minors * shape.patches * (shape.products ?? 1);
}

/**
 * A shape of `releases` releases over `products` products: ten patches a minor and up to 100 minors
 * a major, as DEFAULT_SHAPE has (whose 10,000 releases this gives for one product), then more majors.
 */
export function shapeOf(releases: number, products = 1): StoreShape {
  const each = releases / products;
  const patches = 10;
  const minors = Math.min(100, each / patches);
  const majors = each / patches / minors;
  const shape = { majors, minors, patches, products };
  if (![majors, minors].every(Number.isInteger) || releaseCount(shape) !== releases) throw new Error(`${releases} releases do not split into ${products} products of whole minors of ${patches} patches`);
  return shape;
}

/** `1 product` or `50 products × 200 releases`, for the rows. */
export function describeShape(shape: StoreShape): string {
  const products = shape.products ?? 1;
  return products === 1 ? '1 product' : `${products} products × ${(releaseCount(shape) / products).toLocaleString('en')} releases`;
}

/** Bytes of an artifact when blobs are written. */
export const BLOB_SIZE = 100;

/**
 * Writes the store into `dir` and returns the number of releases. With several products, their
 * releases take turns in publication order, so every product has old and new ones.
 */
export async function writeSyntheticStore(dir: string, shape: StoreShape = DEFAULT_SHAPE, options: StoreOptions = {}): Promise<number> {
  const products = productNames(shape);
  await mkdir(dir, { recursive: true });
  await writeJson(path.join(dir, 'mirror.json'), { title: 'Bench', base_url: '' });
  for (const product of products) await writeProduct(dir, product);
  let index = 0;
  for (let major = 0; major < shape.majors; major++) {
    for (let minor = 0; minor < shape.minors; minor++) {
      for (let patch = 0; patch < shape.patches; patch++) {
        for (const product of products) await writeRelease(dir, `${major}.${minor}.${patch}`, index++, { ...options, product });
      }
    }
  }
  return index;
}

async function writeProduct(dir: string, product: string): Promise<void> {
  await mkdir(path.join(dir, product), { recursive: true });
  await writeJson(path.join(dir, product, 'product.json'), {
    name: product,
    title: product === PRODUCT ? 'Bench CLI' : `Bench CLI ${product.slice(PRODUCT.length + 1)}`,
    description: '',
    homepage: null,
    layout: 'binary',
    file_prefix: filePrefix(product),
  });
}

/** `bench_cli`, `bench_cli_01`: the product name as artifact file names start. */
export function filePrefix(product: string): string {
  return product.replaceAll('-', '_');
}

/**
 * Writes `<dir>/<product>/<version>.json` (product: PRODUCT unless given); `index` orders publication
 * times (one hour apart). With `blobsDir`, writes the artifacts' bytes first, as `release add` does.
 */
export async function writeRelease(dir: string, version: string, index: number, options: ReleaseOptions = {}): Promise<void> {
  const product = options.product ?? PRODUCT;
  const [major, minor, patch] = version.split('.');
  const artifacts = [];
  for (const target of TARGETS) {
    const [platform, arch] = target.split('/');
    const filename = `${filePrefix(product)}_${version}_${platform}_${arch}.zip`;
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
  await writeJson(path.join(dir, product, `${version}.json`), {
    version,
    published_at: new Date(FIRST_PUBLISHED + index * HOUR).toISOString().replace('.000Z', 'Z'),
    notes_url: `https://github.com/example/${product}/releases/tag/v${version}`,
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
