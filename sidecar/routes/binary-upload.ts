// POST /binary/releases/<product>/<major>/<minor>/upload (seed 000): a JSON body with base64
// `file_data`, or the raw bytes (application/zip, application/octet-stream) with the fields as
// query parameters, streamed to the blob store in constant memory. The bytes are staged, checked,
// committed under their blob key with the release file (the generator's `addRelease`), then the
// site is rebuilt; only then does the client get its answer.
import type { Context, Middleware } from 'koa';
import { STATUS_CODES } from 'node:http';
import semver from 'semver';
import { LoadError, loadProductSettings } from '../../generator/load/index.ts';
import { canonicalArch, canonicalPlatform, ARCHES, PLATFORMS } from '../../generator/model/platforms.ts';
import { ReleaseConflictError, addRelease } from '../../generator/release-add.ts';
import { BlobConflictError, BlobTooLargeError, isOutOfSpace, type BlobStore, type StagedBlob } from '../../generator/stores/blob-store.ts';
import type { Locks } from '../../generator/stores/locks.ts';
import type { Principal } from '../auth/jwt.ts';
import type { Publisher } from '../publisher.ts';
import { drainBody } from '../refused-body.ts';
import { fileDataOf, UploadBodyError, type JsonUploadFields } from './upload-json-body.ts';

export interface BinaryUploadOptions {
  releasesDir: string;
  blobs: BlobStore;
  publisher: Publisher;
  /** Largest artifact accepted, in bytes (MAX_UPLOAD_BYTES); a JSON body may be a third larger for its base64. */
  maxBytes: number;
  /** Records each committed upload (the state database), after the release file is written. */
  record?: (upload: CommittedUpload) => Promise<void>;
  /** Where uploads of one version take turns; when absent, the host's lock files for the store, which `mirror release add` takes too. */
  releaseLocks?: Locks | undefined;
  now?: () => Date;
}

export interface CommittedUpload {
  product: string;
  version: string;
  platform: string;
  arch: string;
  filename: string;
  blobKey: string;
  size: number;
  sha256: string;
  contentType: string;
  uploadedBy: string;
  uploadedAt: string;
}

const PATH = /^\/binary\/releases\/([^/]+)\/(0|[1-9][0-9]*)\/(0|[1-9][0-9]*)\/upload$/;
const RAW_TYPES = ['application/zip', 'application/octet-stream'];
const FILENAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

/** Matches the upload path; everything else goes on down the chain. */
export function isUploadPath(path: string): boolean {
  return PATH.test(path);
}

export function binaryUpload(options: BinaryUploadOptions): Middleware {
  const now = options.now ?? (() => new Date());
  return async function binaryUploadHandler(ctx) {
    try {
      await upload(ctx);
      // A refusal may come before the whole body did: read the rest and drop it, so the client reads
      // the answer; past the limits, the connection closes.
      if (ctx.status >= 400 && !(await drainBody(ctx.req))) ctx.set('Connection', 'close');
    } catch (error) {
      // The contract's 500 shape; what went wrong goes to the log, not to the client, except a
      // full disk, which the client can do something about: wait, and retry. The disk's health
      // logs a full disk once (disk-health.ts), not once per refused upload.
      if (!isOutOfSpace(error)) ctx.app.emit('error', error, ctx);
      fail(ctx, 500, isOutOfSpace(error) ? 'Failed to upload binary: the server is out of disk space; nothing was stored, retry once space is freed' : 'Failed to upload binary: the server could not store the file');
      if (!(await drainBody(ctx.req))) ctx.set('Connection', 'close');
    }
  };

  async function upload(ctx: Context): Promise<void> {
    const [, product, major, minor] = PATH.exec(ctx.path)!;
    const principal = ctx.state.principal as Principal;
    const settings = await loadProductSettings(options.releasesDir, product!);
    const target = settings?.layout === 'binary' ? settings : undefined;
    if (!target) return fail(ctx, 404, `Unknown binary product \`${product}\``);

    const received = await receive(ctx, options);
    if ('status' in received) return fail(ctx, received.status, received.message);
    const { fields, staged } = received;
    try {
      const checked = checkFields(fields, Number(major), Number(minor), target.filePrefix, staged);
      if (typeof checked === 'string') return fail(ctx, 400, checked);
      const uploadedAt = now().toISOString().replace(/\.\d{3}Z$/, 'Z');
      let result;
      try {
        result = await addRelease({
          releasesDir: options.releasesDir,
          blobs: options.blobs,
          product: target.name,
          version: checked.version,
          files: [{ path: staged.file, filename: checked.filename, platform: checked.platform, arch: checked.arch, digest: staged.digest }],
          publishedAt: uploadedAt,
          locks: options.releaseLocks,
        });
      } catch (error) {
        if (error instanceof ReleaseConflictError || error instanceof BlobConflictError) return fail(ctx, 409, error.message);
        if (error instanceof LoadError && error.problems.every((problem) => problem.file.endsWith(`${checked.version}.json`))) return fail(ctx, 400, error.problems.map((problem) => problem.message).join('; '));
        throw error;
      }
      const artifact = result.artifacts.find((entry) => entry.filename === checked.filename)!;
      const upload: CommittedUpload = {
        product: target.name,
        version: checked.version,
        platform: checked.platform,
        arch: checked.arch,
        filename: checked.filename,
        blobKey: artifact.blob,
        size: artifact.size,
        sha256: artifact.sha256,
        contentType: artifact.content_type ?? 'application/zip',
        uploadedBy: principal.sub,
        uploadedAt,
      };
      // Committed: the file is published whatever happens next, so a failure from here on must not
      // tell the client it was not stored (a retry would only get 409).
      await options.record?.(upload).catch((error: unknown) => ctx.app.emit('error', error, ctx));
      try {
        await options.publisher.publish();
      } catch (error) {
        ctx.app.emit('error', error, ctx);
        return fail(ctx, 500, `Failed to upload binary: ${checked.filename} is stored, but the site could not be rebuilt; it will be listed by the next rebuild`);
      }
      const parsed = semver.parse(checked.version)!;
      ctx.status = 201;
      ctx.body = {
        success: true,
        message: 'Binary uploaded successfully',
        release: {
          version: checked.version,
          major: parsed.major,
          minor: parsed.minor,
          patch: parsed.patch,
          platform: checked.platform,
          architecture: checked.arch,
          filename: checked.filename,
          s3_key: upload.blobKey,
          file_size: upload.size,
          content_type: upload.contentType,
          uploaded_at: uploadedAt,
          checksum: upload.sha256,
          download_url: `/binary/releases/${target.name}/${parsed.major}/${parsed.minor}/${checked.filename}`,
        },
      };
    } finally {
      await staged.discard();
    }
  }
}

type Fields = Record<string, string | undefined>;
type Received = { fields: Fields; staged: StagedBlob } | { status: number; message: string };

/** The fields and the staged bytes, from either kind of body; a status and message when the body is refused. */
async function receive(ctx: Context, options: BinaryUploadOptions): Promise<Received> {
  const type = (ctx.get('Content-Type').split(';')[0] ?? '').trim().toLowerCase();
  const declared = Number(ctx.get('Content-Length') || NaN);
  if (type === 'application/json') {
    const limit = Math.ceil(options.maxBytes / 3) * 4 + 64 * 1024;
    if (declared > limit) return tooLarge(options.maxBytes);
    const fields: JsonUploadFields = { values: {}, fileData: false };
    let staged: StagedBlob;
    try {
      staged = await options.blobs.stage(fileDataOf(ctx.req, fields, limit), { maxBytes: options.maxBytes });
    } catch (error) {
      if (error instanceof UploadBodyError) return error.status === 413 ? tooLarge(options.maxBytes) : { status: error.status, message: error.message };
      if (error instanceof BlobTooLargeError) return tooLarge(options.maxBytes);
      throw error;
    }
    const missing = ['version', 'platform', 'architecture', 'file_data'].filter((name) => (name === 'file_data' ? !fields.fileData || staged.digest.size === 0 : !fields.values[name]));
    if (missing.length > 0) {
      await staged.discard();
      return { status: 400, message: `Missing required fields: ${missing.join(', ')}` };
    }
    return { fields: fields.values, staged };
  }
  if (RAW_TYPES.includes(type)) {
    const fields: Fields = {};
    for (const name of ['version', 'platform', 'architecture', 'filename', 'checksum']) {
      const value = ctx.query[name];
      if (Array.isArray(value)) return { status: 400, message: `Query parameter \`${name}\` is given more than once` };
      fields[name] = value || undefined;
    }
    const missing = ['version', 'platform', 'architecture'].filter((name) => !fields[name]);
    if (missing.length > 0) return { status: 400, message: `Missing required fields: ${missing.join(', ')}` };
    if (declared > options.maxBytes) return tooLarge(options.maxBytes);
    try {
      // Not destroyed on the way out: a refused body is drained so the client reads the answer.
      return { fields, staged: await options.blobs.stage(ctx.req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>, { maxBytes: options.maxBytes }) };
    } catch (error) {
      if (error instanceof BlobTooLargeError) return tooLarge(options.maxBytes);
      throw error;
    }
  }
  return { status: 415, message: `Expected Content-Type application/json, application/zip or application/octet-stream, got \`${type || 'none'}\`` };
}

interface CheckedFields {
  version: string;
  platform: (typeof PLATFORMS)[number];
  arch: (typeof ARCHES)[number];
  filename: string;
}

/** The upload's facts, or what is wrong with them. */
function checkFields(fields: Fields, major: number, minor: number, filePrefix: string, staged: StagedBlob): CheckedFields | string {
  const version = fields.version!;
  if (semver.valid(version) !== version) return `Invalid version \`${version}\`: expected a semantic version such as 1.12.2`;
  const parsed = semver.parse(version)!;
  if (parsed.major !== major || parsed.minor !== minor) return `Version ${version} does not belong under ${major}/${minor}/; upload it to ${parsed.major}/${parsed.minor}/`;
  const platform = canonicalPlatform(fields.platform!);
  if (!platform) return `Unknown platform \`${fields.platform}\`; expected one of ${PLATFORMS.join(', ')}`;
  const arch = canonicalArch(fields.architecture!);
  if (!arch) return `Unknown architecture \`${fields.architecture}\`; expected one of ${ARCHES.join(', ')}`;
  const stem = `${filePrefix}_${version}_${platform}_${arch}`;
  const filename = fields.filename ?? `${stem}.zip`;
  if (!FILENAME.test(filename) || filename.includes('..')) return `Invalid filename \`${filename}\`: expected a plain file name such as ${stem}.zip`;
  if (!filename.startsWith(`${stem}.`)) return `Filename \`${filename}\` does not match version ${version}, platform ${platform} and architecture ${arch}: expected ${stem}.<extension>`;
  if (fields.checksum !== undefined) {
    const checksum = fields.checksum.toLowerCase().replace(/^sha256:/, '');
    if (!/^[0-9a-f]{64}$/.test(checksum)) return 'Invalid checksum: expected 64 hexadecimal digits (sha256), optionally prefixed with `sha256:`';
    if (checksum !== staged.digest.sha256) return `Checksum mismatch: expected ${checksum}, got ${staged.digest.sha256}`;
  }
  if (staged.digest.size === 0) return 'The file is empty';
  return { version, platform, arch, filename };
}

function tooLarge(maxBytes: number): { status: number; message: string } {
  return { status: 413, message: `The file is larger than the limit of ${maxBytes} bytes (MAX_UPLOAD_BYTES)` };
}

function fail(ctx: Context, status: number, message: string): void {
  ctx.status = status;
  ctx.body = { error: STATUS_CODES[status] ?? 'Error', message };
}

