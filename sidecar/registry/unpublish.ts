// DELETE /agents/:scope/:name/:version: the owner takes a version out of every list at once, then
// the site stops serving its tarball. The number stays taken: a later publish of it gets 409.
import type { Middleware } from 'koa';
import { fullName } from '../../generator/model/registry.ts';
import { markRegistryVersionUnpublished } from '../../generator/registry-add.ts';
import type { Publisher } from '../publisher.ts';
import { RegistryError } from './errors.ts';
import type { RegistryPackages } from './packages.ts';
import { agentRef, versionParam } from './params.ts';
import type { RegistryQueries } from './queries.ts';
import { currentUser } from './tokens.ts';

export interface UnpublishOptions {
  queries: RegistryQueries;
  packages: RegistryPackages;
  releasesDir: string;
  publisher: Publisher;
  now?: () => Date;
}

export function unpublishVersion(options: UnpublishOptions): Middleware {
  const now = options.now ?? (() => new Date());
  return async function unpublishVersionHandler(ctx) {
    const { scope, name } = agentRef(ctx);
    const user = currentUser(ctx);
    const version = versionParam(ctx);
    const agent = await options.queries.agent(scope, name);
    if (!agent) throw new RegistryError(404, 'Agent not found');
    if (agent.owner_id !== user.id) throw new RegistryError(403, `Only @${agent.username} can unpublish versions of ${fullName(scope, name)}`);
    const at = now();
    if (!(await options.packages.unpublish(agent.id, version, at))) throw new RegistryError(404, 'Version not found');
    // Listed nowhere from here on; the version file and the site follow.
    await markRegistryVersionUnpublished(options.releasesDir, scope, name, version, at.toISOString());
    await options.publisher.publish();
    ctx.body = { success: true, message: `Version ${version} unpublished` };
  };
}
