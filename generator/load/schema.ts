// Schemas of the manifest store's files. Field names follow the API contracts (snake_case).
import { z } from 'zod';
import semver from 'semver';
import { ARCHES, PLATFORMS, canonicalArch, canonicalPlatform } from '../model/platforms.ts';
import { CHANNELS } from '../model/catalog.ts';
import { debMetadata } from '../packages/deb.ts';
import { rpmMetadata } from '../packages/rpm.ts';

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const SLUG = /^[a-z0-9][a-z0-9-]*$/;

export const safeFilename = z
  .string()
  .regex(SAFE_NAME, 'must be a plain file name (letters, digits, `._+-`, not starting with a dot)')
  .max(255);

/** A blob store key: relative, `/`-separated, every segment a safe name (one pattern: a store holds hundreds of thousands). */
export const blobKey = z
  .string()
  .max(1024)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*(?:\/[A-Za-z0-9][A-Za-z0-9._+-]*)*$/, 'must be a relative key of plain names separated by `/` (no `..`, no leading `/`)');

export const semverString = z.string().refine((v) => semver.valid(v) === v, {
  message: 'must be a semantic version such as 1.12.2 or 1.13.0-beta.1',
});

const platform = z.string().transform((name, ctx) => {
  const canonical = canonicalPlatform(name);
  if (!canonical) ctx.addIssue({ code: 'custom', message: `unknown platform \`${name}\`; expected one of ${PLATFORMS.join(', ')}` });
  return canonical ?? 'linux';
});

const arch = z.string().transform((name, ctx) => {
  const canonical = canonicalArch(name);
  if (!canonical) ctx.addIssue({ code: 'custom', message: `unknown architecture \`${name}\`; expected one of ${ARCHES.join(', ')}` });
  return canonical ?? 'amd64';
});

export const siteFile = z.strictObject({
  title: z.string().min(1).default('Releases'),
  base_url: z
    .string()
    .refine((url) => url === '' || /^https?:\/\/[^/]+$/.test(url), { message: 'must be empty or an origin like https://releases.example.com (no path, no trailing slash)' })
    .default(''),
});

/** Which package-manager files a product gets, and what they need to know. */
export const PACKAGE_OUTPUTS = ['install-script', 'homebrew', 'scoop', 'apt', 'rpm'] as const;

const packagesSettings = z.strictObject({
  outputs: z
    .array(z.enum(PACKAGE_OUTPUTS))
    .refine((outputs) => new Set(outputs).size === outputs.length, { message: 'lists an output twice' })
    .default([]),
  /** The package's name in every package manager (Homebrew formula, Scoop manifest, apt and rpm). */
  name: z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/, 'must be lower-case letters, digits and `+.-`, as Debian, rpm and Homebrew accept').optional(),
  /** The executable inside each archive, and the command it installs as. */
  binary: safeFilename.optional(),
  /** The executable inside Windows archives; `<binary>.exe` by default. */
  windows_binary: safeFilename.optional(),
  /** An SPDX license expression, e.g. Apache-2.0. */
  license: z.string().min(1).optional(),
  apt: z
    .strictObject({
      component: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lower-case letters, digits and dashes').default('main'),
    })
    .default({ component: 'main' }),
  rpm: z
    .strictObject({
      /** The repository's id in a .repo file. */
      repository: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits and `._-`').optional(),
    })
    .default({}),
});

export const productFile = z.strictObject({
  name: z.string().regex(SLUG, 'must be lower-case letters, digits and dashes'),
  title: z.string().min(1),
  description: z.string().default(''),
  homepage: z.url().nullable().default(null),
  layout: z.enum(['binary', 'agent']),
  file_prefix: z.string().regex(/^[a-z0-9][a-z0-9_]*$/, 'must be lower-case letters, digits and underscores').optional(),
  packages: packagesSettings.optional(),
}).superRefine((product, ctx) => {
  // Package managers install binaries: the desktop agent's installers have their own channel.
  if (product.layout !== 'binary' && (product.packages?.outputs.length ?? 0) > 0) {
    ctx.addIssue({ code: 'custom', path: ['packages', 'outputs'], message: 'package-manager outputs are for binary-layout products' });
  }
});

export const artifactEntry = z.strictObject({
  platform,
  arch,
  filename: safeFilename,
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'not a 64-character lower-case hex string'),
  content_type: z.string().regex(/^[a-z]+\/[A-Za-z0-9.+-]+$/, 'not a MIME type').optional(),
  blob: blobKey,
  /** A .deb's control fields, which `mirror release add` reads from the package. */
  deb: debMetadata.optional(),
  /** An .rpm's header fields, which `mirror release add` reads from the package. */
  rpm: rpmMetadata.optional(),
});

export const releaseFile = z.strictObject({
  version: semverString,
  published_at: z.iso.datetime({ offset: true }),
  channels: z
    .array(z.enum(CHANNELS))
    .min(1, 'list at least one channel, or leave the field out for the defaults')
    .refine((channels) => new Set(channels).size === channels.length, { message: 'lists a channel twice' })
    .optional(),
  notes_url: z.url().nullable().default(null),
  status: z.enum(['active', 'yanked']).default('active'),
  artifacts: z.array(artifactEntry).min(1, 'a release needs at least one artifact'),
});

export type SiteFileInput = z.input<typeof siteFile>;
export type ProductFileInput = z.input<typeof productFile>;
export type ReleaseFileInput = z.input<typeof releaseFile>;
export type ReleaseFileData = z.output<typeof releaseFile>;
