// Rendering registry packages: routes for active versions only, the agent and browse pages with a
// sanitized README, byte-identical output on every run, and the routes as every adapter reads them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadCatalog } from '../generator/load/index.ts';
import { loadTemplates } from '../generator/load/templates.ts';
import type { Catalog } from '../generator/model/catalog.ts';
import { kvsEntries } from '../generator/publish/cloudfront/kvs-entries.ts';
import { kvsSource } from '../generator/publish/cloudfront/kvs-format.ts';
import { deployObjects } from '../generator/publish/deploy-plan.ts';
import type { Templates } from '../generator/render/html.ts';
import { render, type RenderedSite } from '../generator/render/index.ts';
import { pageKey } from '../generator/render/registry.ts';
import { resolve, tableSource } from '../generator/render/resolve.ts';
import { CACHE_IMMUTABLE } from '../generator/render/site-file.ts';
import { HOSTILE_README, agentJson, versionJson, writeVersionFile, type VersionJson } from './helpers/registry-store.ts';
import { removeDir, tempDir, writeSmallStore } from './helpers/store.ts';

const MAIL = {
  '1.0.0': versionJson('alice', 'mail-agent', '1.0.0', { published_at: '2026-01-10T00:00:00.000Z' }),
  '1.1.0': versionJson('alice', 'mail-agent', '1.1.0', {
    published_at: '2026-01-20T00:00:00.000Z',
    readme: HOSTILE_README,
    agent: agentJson('mail-agent', '1.1.0', { repository: 'https://github.com/alice/mail-agent', mcp_servers: ['gmail'], examples: [{ prompt: 'summarize my inbox' }] }),
  }),
  '1.2.0': versionJson('alice', 'mail-agent', '1.2.0', { status: 'unpublished', unpublished_at: '2026-01-31T00:00:00.000Z' }),
};
const GONE = versionJson('bob', 'gone', '1.0.0', { status: 'unpublished', unpublished_at: '2026-01-31T00:00:00.000Z' });
const DATA = versionJson('carol', 'data-tool', '0.1.0', { agent: agentJson('data-tool', '0.1.0', { category: 'data' }) });

async function catalogOf(versions: VersionJson[]): Promise<Catalog> {
  const dir = await tempDir('mirror-registry-render-');
  try {
    await writeSmallStore(dir);
    for (const version of versions) await writeVersionFile(dir, version);
    return await loadCatalog(dir);
  } finally {
    await removeDir(dir);
  }
}

function registryPaths(site: RenderedSite): string[] {
  return Object.keys(site.routes.paths).filter((path) => path.startsWith('/agents')).sort();
}

function body(site: RenderedSite, key: string): string {
  const file = site.files.find((candidate) => candidate.key === key);
  assert.ok(file, `no site file ${key}`);
  return String(file.body);
}

describe('rendering the registry', () => {
  let templates: Templates;
  let catalog: Catalog;
  let site: RenderedSite;
  before(async () => {
    templates = await loadTemplates();
    catalog = await catalogOf([...Object.values(MAIL), GONE, DATA]);
    site = render(catalog, templates);
  });

  test('routes: each active version\'s tarball, each listed agent\'s page and the browse page; nothing for unpublished versions', () => {
    assert.deepEqual(registryPaths(site), [
      '/agents/',
      '/agents/@alice/mail-agent',
      '/agents/@alice/mail-agent/1.0.0.tar.gz',
      '/agents/@alice/mail-agent/1.1.0.tar.gz',
      '/agents/@carol/data-tool',
      '/agents/@carol/data-tool/0.1.0.tar.gz',
    ]);
    assert.deepEqual(site.routes.paths['/agents/'], { type: 'file', key: 'agents/index.html' });
    assert.deepEqual(site.routes.paths['/agents/@alice/mail-agent'], { type: 'file', key: 'agents/@alice/mail-agent/index.html' });
    const tarball = MAIL['1.1.0'].tarball as { blob: string; sha256: string; size: number };
    assert.deepEqual(site.routes.paths['/agents/@alice/mail-agent/1.1.0.tar.gz'], { type: 'blob', blob: tarball.blob, filename: 'mail-agent-1.1.0.tar.gz', contentType: 'application/gzip', size: tarball.size, sha256: tarball.sha256 });
    assert.deepEqual(
      site.files.filter((file) => file.key.startsWith('agents/')).map((file) => [file.key, file.contentType, file.kind]),
      [
        ['agents/@alice/mail-agent/index.html', 'text/html; charset=utf-8', 'page'],
        ['agents/@carol/data-tool/index.html', 'text/html; charset=utf-8', 'page'],
        ['agents/index.html', 'text/html; charset=utf-8', 'page'],
      ],
    );
  });

  test('the agent page shows the latest active version, its install commands and the active versions newest first', () => {
    const page = body(site, pageKey({ scope: 'alice', name: 'mail-agent' }));
    assert.match(page, /<title>@alice\/mail-agent<\/title>/);
    assert.match(page, /<h1>@alice\/mail-agent <span class="tag">1\.1\.0<\/span><\/h1>/);
    assert.match(page, /<p>The mail-agent agent<\/p>/);
    assert.match(page, /<a href="\/agents\/#productivity">Productivity<\/a>/);
    assert.match(page, /<dt>License<\/dt><dd>MIT<\/dd>/);
    assert.match(page, /<a href="https:\/\/github\.com\/alice\/mail-agent">/);
    assert.match(page, /<a href="https:\/\/github\.com\/alice">ALICE<\/a>/);
    assert.match(page, /<code>gmail<\/code>/);
    assert.match(page, /<li>summarize my inbox<\/li>/);
    assert.match(page, /<li>Network: <strong>yes<\/strong><\/li>/);
    assert.match(page, /<pre><code>agentx install @alice\/mail-agent<\/code><\/pre>/);
    const sha = (MAIL['1.1.0'].tarball as { sha256: string }).sha256;
    assert.ok(page.includes(`curl -fsSL -o mail-agent-1.1.0.tar.gz &quot;https://releases.example.com/agents/@alice/mail-agent/1.1.0.tar.gz&quot;\necho &quot;${sha}  mail-agent-1.1.0.tar.gz&quot; | sha256sum -c`));
    const rows = [...page.matchAll(/<a href="(\/agents\/@alice\/mail-agent\/[^"]+\.tar\.gz)">/g)].map((match) => match[1]);
    assert.deepEqual(rows, ['/agents/@alice/mail-agent/1.1.0.tar.gz', '/agents/@alice/mail-agent/1.0.0.tar.gz']);
    assert.ok(!page.includes('1.2.0'), 'the unpublished version is not shown');
  });

  test('the README is rendered from Markdown and sanitized: no script, handler, javascript: link, frame or style survives', () => {
    const page = body(site, pageKey({ scope: 'alice', name: 'mail-agent' }));
    const readme = page.slice(page.indexOf('<article class="readme">'), page.indexOf('</article>'));
    assert.match(readme, /<h2>Evil Agent<\/h2>/, 'the README\'s headings sit below the page\'s h1');
    assert.match(readme, /<td><a href="https:\/\/example\.com\/docs" rel="nofollow noopener noreferrer">docs<\/a><\/td>/);
    assert.match(readme, /<a rel="nofollow noopener noreferrer">click<\/a>/, 'a refused link keeps its text');
    assert.match(readme, /<p>cover<\/p>/);
    for (const banned of ['<script', 'javascript:', 'onerror', 'onclick', '<iframe', 'style=', '__pwned']) {
      assert.ok(!page.toLowerCase().includes(banned), `the page contains ${banned}`);
    }
    assert.ok(!readme.includes('<img'), 'an image from a relative address is dropped');
  });

  test('the browse page lists listed agents under their category, in the categories\' order', () => {
    const page = body(site, 'agents/index.html');
    assert.match(page, /2 agents\./);
    const headings = [...page.matchAll(/<h2 id="([a-z]+)">([^<]+)<\/h2>/g)].map((match) => [match[1], match[2]]);
    assert.deepEqual(headings, [['productivity', 'Productivity'], ['data', 'Data &amp; Analytics']]);
    assert.match(page, /<a href="\/agents\/@alice\/mail-agent">@alice\/mail-agent<\/a> <span class="tag">1\.1\.0<\/span> <span class="muted">— The mail-agent agent<\/span>/);
    assert.ok(!page.includes('@bob/gone'));
  });

  test('the same catalog renders to the same bytes, and so does the same store loaded again', async () => {
    assert.deepEqual(render(catalog, templates), site);
    const again = render(await catalogOf([DATA, GONE, ...Object.values(MAIL)]), templates);
    assert.deepEqual(again, site);
  });

  test('no package with an active version: no registry route and no browse page', async () => {
    const empty = render(await catalogOf([GONE]), templates);
    assert.deepEqual(registryPaths(empty), []);
    assert.deepEqual(empty.files.filter((file) => file.key.startsWith('agents/')), []);
  });
});

describe('registry routes in every adapter', () => {
  let site: RenderedSite;
  let dir: string;
  before(async () => {
    dir = await tempDir('mirror-registry-adapters-');
    site = render(await catalogOf([...Object.values(MAIL), DATA]), await loadTemplates());
  });
  after(() => removeDir(dir));

  test('the KeyValueStore holds a tarball as its blob key and a page as its site key; `@` needs no escaping', () => {
    const entries = kvsEntries(site.routes);
    const tarball = MAIL['1.1.0'].tarball as { blob: string };
    assert.equal(entries.get('/agents/@alice/mail-agent/1.1.0.tar.gz'), `o${tarball.blob}`);
    assert.equal(entries.get('/agents/@alice/mail-agent'), 'oagents/@alice/mail-agent/index.html');
    assert.equal(entries.get('/agents/'), 'oagents/index.html');
    const fromStore = kvsSource((key) => entries.get(key) ?? null);
    const fromTable = tableSource(site.routes);
    for (const [path, expected] of [
      ['/agents/@alice/mail-agent', { type: 'file', key: 'agents/@alice/mail-agent/index.html', negotiated: false }],
      ['/agents/%40alice/mail-agent', { type: 'file', key: 'agents/@alice/mail-agent/index.html', negotiated: false }],
      ['/agents', { type: 'redirect', status: 301, location: '/agents/', cacheControl: 'public, max-age=60' }],
      ['/agents/@alice/mail-agent/1.2.0.tar.gz', { type: 'error', status: 404, body: { error: 'Not Found', message: 'Not found' }, cacheControl: 'public, max-age=60' }],
    ] as const) {
      assert.deepEqual(resolve(fromTable, { path, query: '' }), expected, path);
    }
    for (const path of ['/agents/@alice/mail-agent', '/agents/%40alice/mail-agent', '/agents', '/agents/@alice/mail-agent/1.1.0.tar.gz', '/agents/@alice/mail-agent/1.2.0.tar.gz']) {
      const edge = resolve(fromStore, { path, query: '' });
      const table = resolve(fromTable, { path, query: '' });
      // At the edge a blob is an object of the bucket under its blob key.
      assert.deepEqual(edge, table.type === 'blob' ? { type: 'file', key: table.target.blob, negotiated: false } : table, path);
    }
  });

  test('a deploy uploads each active tarball under its blob key as an immutable download, and no unpublished one', () => {
    const objects = deployObjects(site);
    const tarball = MAIL['1.1.0'].tarball as { blob: string; sha256: string; size: number };
    assert.deepEqual(objects.find((object) => object.key === tarball.blob), {
      key: tarball.blob,
      sha256: tarball.sha256,
      size: tarball.size,
      contentType: 'application/gzip',
      cacheControl: CACHE_IMMUTABLE,
      contentDisposition: 'attachment; filename="mail-agent-1.1.0.tar.gz"',
      source: { type: 'blob', blob: tarball.blob },
    });
    assert.ok(!objects.some((object) => object.key === (MAIL['1.2.0'].tarball as { blob: string }).blob));
    assert.ok(objects.some((object) => object.key === 'agents/@alice/mail-agent/index.html'));
  });
});
