// Registry publishers (seed 003): each publishes new versions of a package of its own under
// `@soak`, on the live replicas in turn, as an agent CLI does (multipart/form-data: tarball,
// agent_yaml, readme). At the end every acknowledged version must be listed, described and
// downloadable, byte-exact, from every replica.
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Replica } from './cluster.ts';
import { fetchAnswer, jsonOf, type Answer, type Traffic } from './traffic.ts';

/** The registry user the soak publishes as; its token comes from `mirror registry token create`. */
export const SCOPE = 'soak';
/** Pause between one publisher's publishes: each rebuilds the site, as an upload does, and uploads are the soak's measure of stalls. */
const PUBLISH_PAUSE_MS = 500;

export interface Published {
  name: string;
  version: string;
  sha256: string;
}

export interface PublisherDeps {
  traffic: Traffic;
  replicas: Replica[];
  /** The `agentx_` token of the `soak` user. */
  token: string;
  running: () => boolean;
  /** Where acknowledged publishes are added. */
  published: Published[];
}

/** Publishes 1.0.0, 1.0.1, … of `@soak/<name>` until the soak stops; `offset` staggers the replicas among publishers. */
export async function registryPublisher(name: string, offset: number, deps: PublisherDeps): Promise<void> {
  for (let n = 0; deps.running(); n++) {
    const version = `1.0.${n}`;
    // Random bytes, gzipped: the registry checks a tarball's gzip header, not what it holds.
    const tarball = gzipSync(randomBytes(4 * 1024 + Math.floor(Math.random() * 60 * 1024)));
    const live = deps.replicas.filter((each) => each.alive);
    const target = live[(n + offset) % live.length] ?? deps.replicas[0]!;
    const answer = await deps.traffic.send(
      'publish',
      target,
      `PUT /api/v1/agents/@${SCOPE}/${name} ${version}`,
      () => fetchAnswer(`${target.url}/api/v1/agents/@${SCOPE}/${name}`, { method: 'PUT', headers: { Authorization: `Bearer ${deps.token}` }, body: publishForm(name, version, tarball) }),
      { outOfSpace },
    );
    if (!answer) continue;
    if (answer.status === 200 && (jsonOf(answer) as { version?: unknown } | undefined)?.version === version) deps.published.push({ name, version, sha256: sha256(tarball) });
    else deps.traffic.fail('publish', `publish @${SCOPE}/${name} ${version} to ${target.name}: ${answer.status} ${answer.body.toString().slice(0, 200)}`);
    await new Promise((resolve) => setTimeout(resolve, PUBLISH_PAUSE_MS));
  }
}

export interface PublishCheck {
  lost: number;
  wrongBytes: number;
  failures: string[];
}

/** Each acknowledged version, on each replica: in the version list, its descriptor's sha256, its tarball's bytes. */
export async function verifyPublished(published: Published[], replicas: Replica[]): Promise<PublishCheck> {
  const check: PublishCheck = { lost: 0, wrongBytes: 0, failures: [] };
  for (const each of replicas) {
    const listed = new Map<string, Set<string>>();
    for (const name of new Set(published.map((entry) => entry.name))) {
      const answer = await fetchAnswer(`${each.url}/api/v1/agents/@${SCOPE}/${name}/versions`);
      const versions = answer.status === 200 ? (jsonOf(answer) as { versions: { version: string }[] }).versions : [];
      listed.set(name, new Set(versions.map((entry) => entry.version)));
    }
    for (const { name, version, sha256: expected } of published) {
      const what = `@${SCOPE}/${name} ${version} on ${each.name}`;
      if (!listed.get(name)!.has(version)) {
        check.lost++;
        check.failures.push(`lost: ${what} is not in its version list`);
        continue;
      }
      const descriptor = await fetchAnswer(`${each.url}/api/v1/agents/@${SCOPE}/${name}/download/${version}`);
      const tarball = await fetchAnswer(`${each.url}/agents/@${SCOPE}/${name}/${version}.tar.gz`);
      if (descriptor.status !== 200 || tarball.status !== 200) {
        check.lost++;
        check.failures.push(`lost: ${what}: descriptor ${descriptor.status}, tarball ${tarball.status}`);
      } else if ((jsonOf(descriptor) as { sha256?: unknown }).sha256 !== expected || sha256(tarball.body) !== expected) {
        check.wrongBytes++;
        check.failures.push(`wrong bytes: ${what}`);
      }
    }
  }
  return check;
}

/** The 500 a publish gets while the disk is full: it names the cause. */
function outOfSpace(answer: Answer): boolean {
  const error = (jsonOf(answer) as { error?: unknown } | undefined)?.error;
  return answer.status === 500 && typeof error === 'string' && error.startsWith('Failed to publish ') && /disk space|ENOSPC/i.test(error);
}

function publishForm(name: string, version: string, tarball: Buffer): FormData {
  const form = new FormData();
  form.append('tarball', new Blob([new Uint8Array(tarball)], { type: 'application/gzip' }), `${name}-${version}.tar.gz`);
  form.append('agent_yaml', JSON.stringify({ name, version, description: `${name}, published by the soak`, category: 'productivity', tags: [] }));
  form.append('readme', `# ${name}\n\nVersion ${version}, published by the soak.\n`);
  return form;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
