// The sample store's registry packages (seed 003): version files in `releases/registry/` and their
// tarballs in the blob store, written with the sidecar's own writer. Deterministic: fixed dates,
// tar entries with fixed times and modes, gzip without a file name or time.
import { TarArchive } from 'archiver';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { stringify } from 'yaml';
import { tarballBlobKey, type AgentManifest, type RegistryAuthor } from '../generator/model/registry.ts';
import { writeRegistryVersion } from '../generator/registry-add.ts';
import type { BlobStore } from '../generator/stores/blob-store.ts';
import { hashFile } from '../generator/stores/hash.ts';

const AUTHORS: Record<string, RegistryAuthor> = {
  agentx: author('agentx', 'agentx', 190_001),
  alice: author('alice', 'Alice Moreau', 190_002),
  'devtools-co': author('devtools-co', 'DevTools Co.', 190_003),
};

interface SampleVersion {
  version: string;
  publishedAt: string;
  /** When set, the version was unpublished then. */
  unpublishedAt?: string;
}

interface SamplePackage {
  scope: keyof typeof AUTHORS;
  agent: Omit<AgentManifest, 'version'>;
  readme: string;
  versions: SampleVersion[];
}

const PACKAGES: SamplePackage[] = [
  {
    scope: 'agentx',
    agent: {
      name: 'gmail-agent',
      description: 'AI email assistant: triages, summarizes and drafts replies in Gmail.',
      category: 'productivity',
      tags: ['email', 'gmail', 'productivity'],
      license: 'MIT',
      repository: 'https://github.com/agentx-dev/gmail-agent',
      permissions: { filesystem: false, network: true, execute_commands: false },
      mcp_servers: ['gmail', 'calendar'],
      examples: [{ prompt: 'summarize unread emails from today' }, { prompt: 'draft a reply to John about the deadline' }],
    },
    readme: [
      '# Gmail Agent',
      '',
      'Triage your inbox from the command line. The agent reads mail through the **Gmail** MCP server and never sends anything without asking.',
      '',
      '## Setup',
      '',
      '```sh',
      'agentx install @agentx/gmail-agent',
      'agentx run @agentx/gmail-agent "summarize unread emails from today"',
      '```',
      '',
      '## What it can do',
      '',
      '| Task | Needs |',
      '| :--- | ---: |',
      '| Summaries | read access |',
      '| Drafts | compose access |',
      '',
      'See the [Gmail API scopes](https://developers.google.com/gmail/api/auth/scopes) for details.',
      '',
    ].join('\n'),
    versions: [
      { version: '1.1.0', publishedAt: '2026-01-20T10:00:00.000Z' },
      { version: '1.2.0', publishedAt: '2026-02-01T09:30:00.000Z' },
    ],
  },
  {
    scope: 'agentx',
    agent: {
      name: 'slack-digest',
      description: 'Posts a morning digest of the Slack channels you follow.',
      category: 'communication',
      tags: ['slack', 'digest'],
      license: 'Apache-2.0',
      repository: 'https://github.com/agentx-dev/slack-digest',
      permissions: { filesystem: false, network: true, execute_commands: false },
      mcp_servers: ['slack'],
      examples: [{ prompt: 'what did #releases discuss yesterday?' }],
    },
    readme: '# Slack Digest\n\nOne message a morning with what happened in your channels.\n\n- threads you were mentioned in\n- decisions, with links\n- open questions\n',
    versions: [{ version: '0.3.0', publishedAt: '2026-01-28T08:00:00.000Z' }],
  },
  {
    scope: 'alice',
    agent: {
      name: 'paper-digest',
      description: 'Finds new papers on arXiv for your topics and summarizes them.',
      category: 'research',
      tags: ['arxiv', 'papers'],
      license: 'MIT',
      repository: null,
      permissions: { filesystem: true, network: true, execute_commands: false },
      mcp_servers: [],
      examples: [{ prompt: 'new papers on retrieval-augmented generation this week' }],
    },
    readme: '# Paper Digest\n\nA weekly reading list from arXiv, one paragraph per paper.\n\n> Summaries are a starting point: read the paper before citing it.\n',
    versions: [
      { version: '0.1.0', publishedAt: '2026-01-10T12:00:00.000Z' },
      { version: '0.2.0', publishedAt: '2026-02-05T12:00:00.000Z', unpublishedAt: '2026-02-06T08:15:00.000Z' },
    ],
  },
  {
    scope: 'alice',
    agent: {
      name: 'csv-insights',
      description: 'Answers questions about CSV files with charts and plain-language summaries.',
      category: 'data',
      tags: ['csv', 'analytics', 'charts'],
      license: 'BSD-3-Clause',
      repository: 'https://github.com/alice/csv-insights',
      permissions: { filesystem: true, network: false, execute_commands: false },
      mcp_servers: ['filesystem'],
      examples: [{ prompt: 'which region grew fastest in sales.csv?' }],
    },
    // The HTML below is what READMEs carry: the badge stays, the alignment, comment and style go.
    readme: [
      '<p align="center"><img src="https://img.shields.io/badge/license-BSD--3--Clause-blue" alt="license: BSD-3-Clause"></p>',
      '<!-- badges above are generated -->',
      '<style>h1 { color: hotpink; }</style>',
      '',
      '# CSV Insights',
      '',
      'Point it at a file and ask in plain words:',
      '',
      '1. it reads the header and a sample of rows;',
      '2. it writes the query it will run, for you to check;',
      '3. it answers, with a chart when one helps.',
      '',
      'Nothing leaves your machine: the agent has no network permission.',
      '',
    ].join('\n'),
    versions: [{ version: '2.0.0', publishedAt: '2026-02-12T16:45:00.000Z' }],
  },
  {
    scope: 'devtools-co',
    agent: {
      name: 'pr-reviewer',
      description: 'Reviews pull requests: runs the tests, reads the diff, comments with suggestions.',
      category: 'devtools',
      tags: ['github', 'code-review', 'ci'],
      license: 'MIT',
      repository: 'https://github.com/devtools-co/pr-reviewer',
      permissions: { filesystem: true, network: true, execute_commands: true },
      mcp_servers: ['github', 'git'],
      examples: [{ prompt: 'review PR 42 and suggest smaller commits' }, { prompt: 'why does the CI fail on this branch?' }],
    },
    readme: [
      '# PR Reviewer',
      '',
      'Runs your test command in a checkout of the pull request, then comments on the diff.',
      '',
      '## Configuration',
      '',
      '```yaml',
      'test: npm test',
      'max_comments: 10',
      '```',
      '',
      'Needs `execute_commands` to run the tests; it runs nothing else.',
      '',
    ].join('\n'),
    versions: [
      { version: '1.0.0', publishedAt: '2026-01-05T09:00:00.000Z' },
      { version: '1.1.0', publishedAt: '2026-02-15T09:00:00.000Z' },
    ],
  },
  {
    scope: 'devtools-co',
    agent: {
      name: 'secret-scanner',
      description: 'Scans a repository and its history for leaked credentials.',
      category: 'security',
      tags: ['secrets', 'audit'],
      license: null,
      repository: 'https://github.com/devtools-co/secret-scanner',
      permissions: { filesystem: true, network: false, execute_commands: true },
      mcp_servers: ['git'],
      examples: [{ prompt: 'scan this repository, including old commits' }],
    },
    readme: '# Secret Scanner\n\nFinds API keys, tokens and private keys in files and in `git log -p`.\n',
    versions: [{ version: '0.9.0', publishedAt: '2026-02-20T14:00:00.000Z' }],
  },
];

/** Writes every sample version's tarball and file; returns the version files written. */
export async function writeSampleRegistry({ releasesDir, blobs, work }: { releasesDir: string; blobs: BlobStore; work: string }): Promise<string[]> {
  const written: string[] = [];
  for (const pkg of PACKAGES) {
    for (const sample of pkg.versions) {
      const { name, ...fields } = pkg.agent;
      const agent: AgentManifest = { name, version: sample.version, ...fields };
      const tarball = path.join(work, `${pkg.scope}-${name}-${sample.version}.tar.gz`);
      await writeTarball(tarball, sample.publishedAt, agent, pkg.readme);
      const digest = await hashFile(tarball);
      const blob = tarballBlobKey(pkg.scope, name, sample.version, digest.sha256);
      await blobs.putFile(blob, tarball, digest);
      written.push(
        await writeRegistryVersion(releasesDir, {
          scope: pkg.scope,
          name,
          version: sample.version,
          published_at: sample.publishedAt,
          ...(sample.unpublishedAt ? { status: 'unpublished' as const, unpublished_at: sample.unpublishedAt } : {}),
          tarball: { blob, ...digest },
          author: AUTHORS[pkg.scope]!,
          agent: { ...agent },
          readme: pkg.readme,
        }),
      );
    }
  }
  return written;
}

/** `agent.yaml` and `README.md`, as `agentx publish` packs them. */
async function writeTarball(file: string, date: string, agent: AgentManifest, readme: string): Promise<void> {
  const tar = new TarArchive({ gzip: true, gzipOptions: { level: 9 } });
  const out = createWriteStream(file);
  tar.pipe(out);
  tar.append(stringify(agent), { name: 'agent.yaml', date: new Date(date), mode: 0o644 });
  tar.append(readme, { name: 'README.md', date: new Date(date), mode: 0o644 });
  await tar.finalize();
  await finished(out);
}

function author(username: string, displayName: string, githubId: number): RegistryAuthor {
  return { username, display_name: displayName, avatar_url: `https://avatars.githubusercontent.com/u/${githubId}`, github_id: githubId };
}
