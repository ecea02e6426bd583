// Query parameters of the list endpoints, checked all at once: a bad value is a 400 naming the
// parameter and what was received.
import type { Context } from 'koa';
import { AGENT_CATEGORIES } from '../../generator/model/registry.ts';
import { RegistryError } from './errors.ts';

const CATEGORY_SLUGS: string[] = AGENT_CATEGORIES.map((category) => category.slug);
export const PERIOD_DAYS = { day: 1, week: 7, month: 30 } as const;

export interface ListParams {
  q: string | undefined;
  category: string | undefined;
  sort: 'downloads' | 'stars' | 'newest';
  period: keyof typeof PERIOD_DAYS;
  page: number;
  limit: number;
}

/** Reads the parameters the endpoint accepts (others are ignored, as HTTP caches expect). */
export function listParams(ctx: Context, accepted: (keyof ListParams)[]): ListParams {
  const problems: string[] = [];
  const read = (name: keyof ListParams): string | undefined => {
    if (!accepted.includes(name)) return undefined;
    const value = ctx.query[name];
    if (Array.isArray(value)) {
      problems.push(`Expected \`${name}\` once, got it ${value.length} times`);
      return undefined;
    }
    return value;
  };
  const integer = (name: 'page' | 'limit', fallback: number, max: number): number => {
    const value = read(name);
    if (value === undefined) return fallback;
    if (!/^[0-9]{1,9}$/.test(value) || Number(value) < 1 || Number(value) > max) {
      problems.push(`Expected \`${name}\` to be an integer from 1 to ${max}, got \`${value}\``);
      return fallback;
    }
    return Number(value);
  };
  const oneOf = <T extends string>(name: keyof ListParams, values: readonly T[], fallback: T | undefined): T | undefined => {
    const value = read(name);
    if (value === undefined) return fallback;
    if (!(values as readonly string[]).includes(value)) {
      problems.push(`Expected \`${name}\` to be one of ${values.join(', ')}, got \`${value}\``);
      return fallback;
    }
    return value as T;
  };
  const q = read('q');
  const params: ListParams = {
    q: q === undefined || q.trim() === '' ? undefined : q.slice(0, 200),
    category: oneOf('category', CATEGORY_SLUGS, undefined),
    sort: oneOf('sort', ['downloads', 'stars', 'newest'] as const, 'downloads')!,
    period: oneOf('period', Object.keys(PERIOD_DAYS) as (keyof typeof PERIOD_DAYS)[], 'week')!,
    page: integer('page', 1, 100_000),
    limit: integer('limit', 20, 100),
  };
  if (problems.length > 0) throw new RegistryError(400, 'Invalid query parameters', problems);
  return params;
}
