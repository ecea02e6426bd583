// Full-text search over agents' scope and name, tags, description and README: SQLite FTS5 with
// the Porter stemmer, or PostgreSQL's English text search with GIN indexes. Both rank the name
// above tags and tags above the description; a match in the README alone is found but ranks after
// those (then by downloads). Both stem (`emails` finds `email`); the last query term also matches
// as a prefix, for search as you type. This file is where the two differ.
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { StateDb } from '../store/db.ts';
import type { Tables } from '../store/schema.ts';

export interface SearchDocument {
  /** The scope and the name, so `@alice/mail-agent` finds the agent by both. */
  name: string;
  description: string;
  tags: string[];
  readme: string;
}

/**
 * How a query finds and ranks agents in a list whose agents table is aliased `a`: either a table
 * of matches joined as `m` (FTS5 ranks in its own table) or a condition on `a` itself (a tsvector
 * column, which its GIN index answers without a second pass over the wide agents table).
 */
export interface FullTextMatch {
  joined?: RawBuilder<{ agent_id: number; score: number }>;
  where?: RawBuilder<boolean>;
  /** Higher is more relevant. */
  score: RawBuilder<number>;
}

export interface FullText {
  /** Puts the agent's document in the index, or takes it out (`undefined`: nothing of it is listed). */
  index(db: Kysely<Tables>, agentId: number, document: SearchDocument | undefined): Promise<void>;
  /** How to find the agents matching `query`; undefined when the query has no words. */
  matches(query: string): FullTextMatch | undefined;
}

/** Query words: letters and digits, at most 10 of them. */
export function queryTerms(query: string): string[] {
  return (query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []).slice(0, 10);
}

export function fullTextFor(state: Pick<StateDb, 'dialect'>): FullText {
  return state.dialect === 'postgres' ? postgresFullText : sqliteFullText;
}

const sqliteFullText: FullText = {
  async index(db, agentId, document) {
    await sql`delete from registry_search where rowid = ${agentId}`.execute(db);
    if (!document) return;
    await sql`insert into registry_search (rowid, name, description, tags, readme) values (${agentId}, ${document.name}, ${document.description}, ${document.tags.join(' ')}, ${document.readme})`.execute(db);
  },
  matches(query) {
    const terms = queryTerms(query);
    if (terms.length === 0) return undefined;
    // Quoted, so no word is read as FTS5 syntax; the last one as a prefix.
    const match = terms.map((term, i) => `"${term}"${i === terms.length - 1 ? ' *' : ''}`).join(' ');
    // bm25 is lower for better matches; the weights follow the columns: name, description, tags, readme.
    // The README weighs nothing: it finds, it does not rank.
    return {
      joined: sql<{ agent_id: number; score: number }>`(select rowid as agent_id, -bm25(registry_search, 10.0, 2.0, 5.0, 0.0) as score from registry_search where registry_search match ${match})`,
      score: sql<number>`m.score`,
    };
  },
};

const postgresFullText: FullText = {
  async index(db, agentId, document) {
    if (!document) {
      await sql`update registry_agents set search_vector = null, search_head = null where id = ${agentId}`.execute(db);
      return;
    }
    await sql`update registry_agents set search_head =
        setweight(to_tsvector('english', ${document.name}), 'A')
        || setweight(to_tsvector('english', ${document.tags.join(' ')}), 'B')
        || setweight(to_tsvector('english', ${document.description}), 'C')
      where id = ${agentId}`.execute(db);
    await sql`update registry_agents set search_vector = search_head || to_tsvector('english', ${document.readme}) where id = ${agentId}`.execute(db);
  },
  matches(query) {
    const terms = queryTerms(query);
    if (terms.length === 0) return undefined;
    const tsquery = terms.map((term, i) => `'${term}'${i === terms.length - 1 ? ':*' : ''}`).join(' & ');
    // Ranked by the small vector: ts_rank over the whole one reads every matching README (5× slower at 10,000 agents).
    return {
      where: sql<boolean>`a.search_vector @@ to_tsquery('english', ${tsquery})`,
      score: sql<number>`ts_rank('{0.1, 0.2, 0.4, 1.0}', a.search_head, to_tsquery('english', ${tsquery}))`,
    };
  },
};
