// Path parameters of the registry's routes. Scopes are written `@name` (or `%40name`, the same
// after decoding); a scope or name outside the registry's alphabet names no agent.
import type { Context } from 'koa';
import semver from 'semver';
import { REGISTRY_NAME } from '../../generator/model/registry.ts';
import { RegistryError } from './errors.ts';

export interface AgentRef {
  /** Without the `@`. */
  scope: string;
  name: string;
}

/** The agent a path names, or a 404 `Agent not found` saying what was wrong with the path. */
export function agentRef(ctx: Context): AgentRef {
  const params = (ctx as Context & { params: Record<string, string | undefined> }).params;
  const scope = params.scope ?? '';
  const name = params.name ?? '';
  if (!scope.startsWith('@')) throw new RegistryError(404, 'Agent not found', [`the scope must start with @, got '${scope}'`]);
  if (!REGISTRY_NAME.test(scope.slice(1)) || !REGISTRY_NAME.test(name)) throw new RegistryError(404, 'Agent not found');
  return { scope: scope.slice(1), name };
}

/** A version parameter: semver, or a 404 `Version not found` that says it is not. */
export function versionParam(ctx: Context): string {
  const version = (ctx as Context & { params: Record<string, string | undefined> }).params.version ?? '';
  if (semver.valid(version) !== version) throw new RegistryError(404, 'Version not found', [`'${version}' is not valid semver`]);
  return version;
}

/** The address a link in a response starts with: MIRROR_PUBLIC_URL, or the origin the request came to. */
export function publicBase(ctx: Context, configured: string | undefined): string {
  return configured ?? `${ctx.protocol}://${ctx.host}`;
}
