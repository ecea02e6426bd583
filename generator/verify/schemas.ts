// The parts of each index the verifier reads, as the README's API section describes them.
// Fields it does not read are left out, so they may change without failing a verify.
import { z } from 'zod';

export const rootIndex = z.object({
  products: z.array(z.object({ name: z.string(), layout: z.string(), url: z.string() })),
});

export const versionsIndex = z.object({
  versions: z.array(z.string()),
  count: z.int(),
});

export const minorListing = z.object({
  major: z.int(),
  minor: z.int(),
  files: z.array(
    z.object({
      filename: z.string(),
      version: z.string(),
      size: z.int().nonnegative(),
      download_url: z.string(),
    }),
  ),
  count: z.int(),
});
export type ListedFile = z.infer<typeof minorListing>['files'][number];

const agentArtifact = z.object({
  filename: z.string(),
  content_type: z.string(),
  size_bytes: z.int().nonnegative().nullable(),
  sha256: z.string().nullable(),
  download_url: z.string(),
});
export type AgentArtifact = z.infer<typeof agentArtifact>;

export const agentRelease = z.object({
  channel: z.enum(['stable', 'latest']),
  version: z.string(),
  published_at: z.string().nullable(),
  notes_url: z.string().nullable(),
  artifacts: z.object({
    windows: agentArtifact.nullable(),
    macos: z.object({ arm64: agentArtifact.nullable(), x86_64: agentArtifact.nullable() }),
  }),
});
export type AgentRelease = z.infer<typeof agentRelease>;

export const agentReleasePage = z.object({
  data: z.array(agentRelease),
  pagination: z.object({
    page: z.int(),
    total_items: z.int().nonnegative(),
    next: z.string().nullable(),
  }),
});
export type AgentReleasePage = z.infer<typeof agentReleasePage>;
