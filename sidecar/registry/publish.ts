// PUT /agents/:scope/:name (multipart/form-data: tarball, agent_yaml, readme). The order keeps
// every step undoable until the last: receive and stage the tarball; validate everything, every
// problem at once; reserve the version number (one winner among concurrent publishes); commit the
// tarball to the blob store and write the version file; rebuild the site so the tarball is served;
// only then list the version. A failure before the listing frees the number; a crash leaves an
// unlisted reservation that expires.
import { open } from 'node:fs/promises';
import type { Middleware } from 'koa';
import { parseAgentManifest } from '../../generator/load/registry-schema.ts';
import { agentPagePath, fullName, tarballBlobKey, type AgentManifest } from '../../generator/model/registry.ts';
import { writeRegistryVersion } from '../../generator/registry-add.ts';
import { isOutOfSpace, type BlobStore, type StagedBlob } from '../../generator/stores/blob-store.ts';
import type { Publisher } from '../publisher.ts';
import { drainBody } from '../refused-body.ts';
import { RegistryError, validationFailed } from './errors.ts';
import { receivePublishForm, tarballTooLarge, type PublishFormLimits } from './multipart.ts';
import type { RegistryPackages } from './packages.ts';
import { agentRef, publicBase } from './params.ts';
import { currentUser } from './tokens.ts';

export interface PublishOptions {
  packages: RegistryPackages;
  blobs: BlobStore;
  releasesDir: string;
  publisher: Publisher;
  limits: PublishFormLimits;
  publicUrl: string | undefined;
  now?: () => Date;
}

export function publishAgent(options: PublishOptions): Middleware {
  const now = options.now ?? (() => new Date());
  return async function publishAgentHandler(ctx) {
    const { scope, name } = agentRef(ctx);
    const user = currentUser(ctx);
    if (scope !== user.username) throw new RegistryError(403, `You can only publish under @${user.username} scope`);
    const type = (ctx.get('Content-Type').split(';')[0] ?? '').trim().toLowerCase();
    if (type !== 'multipart/form-data') throw new RegistryError(415, `Expected Content-Type multipart/form-data, got '${type || 'none'}'`);
    const { limits } = options;
    const declared = Number(ctx.get('Content-Length') || NaN);
    if (declared > limits.tarballBytes + limits.agentYamlBytes + limits.readmeBytes + 64 * 1024) {
      ctx.set('Connection', 'close');
      throw tarballTooLarge(limits.tarballBytes);
    }
    let form;
    try {
      form = await receivePublishForm(ctx.req, options.blobs, limits);
    } catch (error) {
      // The rest of a refused body is read and dropped, so the client reads the answer; past the limits, the connection closes.
      if (!(await drainBody(ctx.req))) ctx.set('Connection', 'close');
      if (isOutOfSpace(error)) {
        // Logged once by the disk's health (disk-health.ts), not per refused publish.
        throw new RegistryError(500, `Failed to publish ${fullName(scope, name)}: the server is out of disk space; nothing was stored, try again once space is freed`);
      }
      throw error;
    }
    try {
      const { manifest, fields } = await checkForm(form, name);
      const tarball = form.tarball!;
      const blob = tarballBlobKey(scope, name, manifest.version, tarball.digest.sha256);
      const input = { scope, name, version: manifest.version, ownerId: user.id, tarball: { blob, ...tarball.digest }, manifest, readme: form.readme! };
      const reservation = await options.packages.reserve(input, now());
      if (!reservation) throw new RegistryError(409, `Version ${manifest.version} already exists. Bump the version number.`);
      try {
        await options.blobs.putFile(blob, tarball.file, tarball.digest);
        await writeRegistryVersion(options.releasesDir, {
          scope,
          name,
          version: manifest.version,
          published_at: reservation.reservedAt,
          tarball: input.tarball,
          author: { username: user.username, display_name: user.display_name, avatar_url: user.avatar_url, github_id: user.github_id },
          // Fields this registry does not read are kept for the agent's runtime.
          agent: { ...fields, ...manifest },
          readme: input.readme,
        });
        await options.publisher.publish();
        if (!(await options.packages.activate(reservation, now()))) throw new Error(`The reservation of ${fullName(scope, name)} ${manifest.version} expired before it was listed`);
      } catch (error) {
        await options.packages.cancel(reservation).catch((cancelError: unknown) => ctx.app.emit('error', cancelError, ctx));
        if (!isOutOfSpace(error)) ctx.app.emit('error', error, ctx);
        throw new RegistryError(500, `Failed to publish ${fullName(scope, name)} ${manifest.version}: ${isOutOfSpace(error) ? 'the server is out of disk space' : 'the server could not store it'}; nothing was listed, try again`);
      }
      ctx.body = { success: true, version: manifest.version, full_name: fullName(scope, name), url: `${publicBase(ctx, options.publicUrl)}${agentPagePath(scope, name)}` };
    } finally {
      await form.tarball?.discard();
    }
  };
}

/** The manifest (and every field the publisher sent) when the form is valid; otherwise a 400 listing every problem. */
async function checkForm(form: Awaited<ReturnType<typeof receivePublishForm>>, name: string): Promise<{ manifest: AgentManifest; fields: Record<string, unknown> }> {
  const problems = [...form.problems];
  if (form.tarball === undefined && !problems.some((problem) => problem.startsWith('tarball:'))) problems.push("missing required field 'tarball'");
  else if (form.tarball) problems.push(...(await tarballProblems(form.tarball)));
  if (form.readme === undefined && !problems.some((problem) => problem.startsWith('readme:'))) problems.push("missing required field 'readme'");
  let manifest: AgentManifest | undefined;
  let data: unknown;
  if (form.agentYaml === undefined) {
    if (!problems.some((problem) => problem.startsWith('agent_yaml:'))) problems.push("missing required field 'agent_yaml'");
  } else {
    try {
      data = JSON.parse(form.agentYaml);
    } catch (error) {
      problems.push(`agent.yaml: not valid JSON (${(error as Error).message})`);
    }
    if (data !== undefined) {
      const parsed = parseAgentManifest(data);
      problems.push(...parsed.problems);
      manifest = parsed.manifest;
      const declared = (data as { name?: unknown } | null)?.name;
      if (typeof declared === 'string' && declared !== name) problems.push(`agent.yaml: name '${declared}' does not match the package name '${name}' in the URL`);
    }
  }
  if (problems.length > 0 || !manifest) throw validationFailed(problems);
  // A manifest was parsed, so the data was an object.
  return { manifest, fields: data as Record<string, unknown> };
}

/** A tarball must hold something, and be gzip (its first bytes are gzip's magic number). */
async function tarballProblems(tarball: StagedBlob): Promise<string[]> {
  if (tarball.digest.size === 0) return ['tarball: the file is empty'];
  const file = await open(tarball.file);
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(3), 0, 3, 0);
    return bytesRead === 3 && buffer[0] === 0x1f && buffer[1] === 0x8b && buffer[2] === 0x08 ? [] : ['tarball: not a gzip file; expected a .tar.gz'];
  } finally {
    await file.close();
  }
}
