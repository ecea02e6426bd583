// Reads of the registry: agent lists (filters, sorts, full-text matches, trending periods),
// details, versions, users and categories, in the contract's response shapes.
import { sql, type Kysely } from 'kysely';
import semver from 'semver';
import { AGENT_CATEGORIES, fullName } from '../../generator/model/registry.ts';
import type { Tables } from '../store/schema.ts';
import type { FullText } from './search.ts';

export type Sort = 'downloads' | 'stars' | 'newest' | 'relevance' | 'trending';

export interface ListQuery {
  q?: string | undefined;
  category?: string | undefined;
  /** Only this user's agents. */
  owner?: number | undefined;
  sort: Sort;
  /** `trending`: downloads counted from this UTC day on (`YYYY-MM-DD`). */
  since?: string | undefined;
  page: number;
  limit: number;
}

export interface AgentList {
  agents: AgentSummary[];
  total: number;
  page: number;
  limit: number;
}

export interface AgentSummary {
  scope: string;
  name: string;
  full_name: string;
  description: string;
  category: string;
  tags: string[];
  latest_version: string;
  download_count: number;
  star_count: number;
  is_verified: boolean;
  author: { username: string; avatar_url: string };
  updated_at: string;
}

/** The contract's timestamps carry no milliseconds. */
export function isoSeconds(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}

export function registryQueries(db: Kysely<Tables>, fullText: FullText) {
  /** Listed agents: those with an active version, their owner joined. */
  function listed() {
    return db.selectFrom('registry_agents as a').innerJoin('registry_users as u', 'u.id', 'a.owner_id').where('a.latest_version', 'is not', null);
  }

  async function list(query: ListQuery): Promise<AgentList> {
    const match = query.q === undefined ? undefined : fullText.matches(query.q);
    if (query.q !== undefined && match === undefined) return { agents: [], total: 0, page: query.page, limit: query.limit };
    const base = listed()
      .$if(match?.joined !== undefined, (builder) => builder.innerJoin(match!.joined!.as('m'), 'm.agent_id', 'a.id'))
      .$if(match?.where !== undefined, (builder) => builder.where(match!.where!))
      .$if(query.category !== undefined, (builder) => builder.where('a.category', '=', query.category!))
      .$if(query.owner !== undefined, (builder) => builder.where('a.owner_id', '=', query.owner!));
    const counted = await base.select((eb) => eb.fn.countAll<number>().as('total')).executeTakeFirstOrThrow();
    const period = sql<{ agent_id: number; downloads: number }>`(select agent_id, sum(count) as downloads from registry_downloads_daily where day >= ${query.since ?? ''} group by agent_id)`;
    const exact = query.q?.trim().toLowerCase() ?? '';
    let rows = base
      // `p.downloads`, the period's, is read by the trending sort only.
      .$if(query.sort === 'trending', (builder) => builder.leftJoin(period.as('p'), 'p.agent_id', 'a.id'))
      .select(['a.scope', 'a.name', 'a.description', 'a.category', 'a.tags', 'a.latest_version', 'a.download_count', 'a.star_count', 'a.is_verified', 'a.updated_at', 'u.username', 'u.avatar_url']);
    switch (query.sort) {
      case 'relevance':
        if (match) {
          rows = rows
            .orderBy(sql`case when a.name = ${exact} or ${sql.lit('@')} || a.scope || ${sql.lit('/')} || a.name = ${exact} then 0 else 1 end`)
            .orderBy(match.score, 'desc');
        }
        rows = rows.orderBy('a.download_count', 'desc');
        break;
      case 'stars':
        rows = rows.orderBy('a.star_count', 'desc').orderBy('a.download_count', 'desc');
        break;
      case 'newest':
        rows = rows.orderBy('a.created_at', 'desc');
        break;
      case 'trending':
        rows = rows.orderBy(sql`coalesce(p.downloads, 0)`, 'desc').orderBy('a.download_count', 'desc');
        break;
      case 'downloads':
        rows = rows.orderBy('a.download_count', 'desc');
        break;
    }
    const found = await rows
      .orderBy('a.scope')
      .orderBy('a.name')
      .limit(query.limit)
      .offset((query.page - 1) * query.limit)
      .execute();
    return {
      agents: found.map((row) => ({
        scope: `@${row.scope}`,
        name: row.name,
        full_name: fullName(row.scope, row.name),
        description: row.description,
        category: row.category,
        tags: JSON.parse(row.tags) as string[],
        latest_version: row.latest_version!,
        download_count: Number(row.download_count),
        star_count: row.star_count,
        is_verified: row.is_verified === 1,
        author: { username: row.username, avatar_url: row.avatar_url },
        updated_at: isoSeconds(row.updated_at),
      })),
      total: Number(counted.total),
      page: query.page,
      limit: query.limit,
    };
  }

  /** The agent by scope and name (listed or not), with its owner. */
  function agent(scope: string, name: string) {
    return db
      .selectFrom('registry_agents as a')
      .innerJoin('registry_users as u', 'u.id', 'a.owner_id')
      .selectAll('a')
      .select(['u.username', 'u.display_name', 'u.avatar_url'])
      .where('a.scope', '=', scope)
      .where('a.name', '=', name)
      .executeTakeFirst();
  }

  async function details(scope: string, name: string) {
    const row = await agent(scope, name);
    if (!row || row.latest_version === null) return undefined;
    return {
      scope: `@${row.scope}`,
      name: row.name,
      full_name: fullName(row.scope, row.name),
      description: row.description,
      readme: row.readme,
      category: row.category,
      tags: JSON.parse(row.tags) as string[],
      license: row.license,
      repository: row.repository,
      latest_version: row.latest_version,
      download_count: Number(row.download_count),
      star_count: row.star_count,
      is_verified: row.is_verified === 1,
      is_featured: row.is_featured === 1,
      author: { username: row.username, display_name: row.display_name, avatar_url: row.avatar_url },
      permissions: JSON.parse(row.permissions) as Record<string, boolean>,
      mcp_servers: JSON.parse(row.mcp_servers) as string[],
      examples: JSON.parse(row.examples) as { prompt: string }[],
      created_at: isoSeconds(row.created_at),
      updated_at: isoSeconds(row.updated_at),
    };
  }

  /** Active versions, newest first by semver; undefined when the agent is not listed. */
  async function versions(scope: string, name: string) {
    const row = await agent(scope, name);
    if (!row || row.latest_version === null) return undefined;
    const found = await db
      .selectFrom('registry_versions')
      .select(['version', 'size', 'download_count', 'published_at'])
      .where('agent_id', '=', row.id)
      .where('state', '=', 'active')
      .execute();
    return found
      .sort((a, b) => semver.rcompare(a.version, b.version))
      .map((version) => ({ version: version.version, tarball_size: Number(version.size), download_count: Number(version.download_count), published_at: isoSeconds(version.published_at!) }));
  }

  async function user(username: string) {
    const row = await db.selectFrom('registry_users').selectAll().where('username', '=', username).executeTakeFirst();
    if (!row) return undefined;
    const totals = await listed()
      .where('a.owner_id', '=', row.id)
      .select((eb) => [eb.fn.countAll<number>().as('agents'), eb.fn.coalesce(eb.fn.sum<number>('a.download_count'), sql<number>`0`).as('downloads')])
      .executeTakeFirstOrThrow();
    return {
      id: row.id,
      profile: {
        username: row.username,
        display_name: row.display_name,
        avatar_url: row.avatar_url,
        bio: row.bio,
        website: row.website,
        agent_count: Number(totals.agents),
        total_downloads: Number(totals.downloads),
        created_at: isoSeconds(row.created_at),
      },
    };
  }

  async function categories() {
    const counts = await listed().select(['a.category', (eb) => eb.fn.countAll<number>().as('count')]).groupBy('a.category').execute();
    const byCategory = new Map(counts.map((row) => [row.category, Number(row.count)]));
    return AGENT_CATEGORIES.map((category) => ({ slug: category.slug, name: category.name, count: byCategory.get(category.slug) ?? 0 }));
  }

  return { list, agent, details, versions, user, categories };
}

export type RegistryQueries = ReturnType<typeof registryQueries>;
