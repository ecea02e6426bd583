// Every HTML page the sample store renders (binary, agent-releases and registry listings) is valid
// HTML under html-validate's recommended rules, has one h1, and a breadcrumb trail whose every
// level is a link the route table answers with a page.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { HtmlValidate } from 'html-validate';
import { loadCatalog } from '../generator/load/index.ts';
import { loadTemplates } from '../generator/load/templates.ts';
import { render, type RenderedSite } from '../generator/render/index.ts';
import { resolve, tableSource, type RouteSource } from '../generator/render/resolve.ts';
import { SAMPLE_RELEASES } from './helpers/sample-site.ts';

const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

const validator = new HtmlValidate({
  extends: ['html-validate:recommended'],
  rules: {
    // HTML allows any id without whitespace. A release's section is `#v1.12.2`: the binary layout's
    // version redirects (and the edge's packed release entries) point at that anchor.
    'valid-id': ['error', { relaxed: true }],
    // Style only: `<img>` and `<img />` are both valid. The README sanitizer (sanitize-html) always
    // writes the second, the templates the first.
    'void-style': 'off',
  },
});

interface Crumb {
  href: string;
  label: string;
  current: boolean;
}

describe('HTML pages of the sample store', () => {
  let site: RenderedSite;
  let routes: RouteSource;
  let pages: Map<string, string>;
  before(async () => {
    site = render(await loadCatalog(SAMPLE_RELEASES), await loadTemplates());
    routes = tableSource(site.routes);
    pages = new Map(site.files.filter((file) => file.key.endsWith('.html')).map((file) => [file.key, String(file.body)]));
  });

  /** The site key a browser gets for a link on a page, or a description of what it got instead. */
  function browse(href: string): string {
    const [path = '', query = ''] = href.split('?');
    const answer = resolve(routes, { path, query, accept: BROWSER });
    return answer.type === 'file' ? answer.key : `a ${answer.type} answer`;
  }

  test('every layout has pages, the agent-releases product included', () => {
    for (const key of ['index.html', 'binary/releases/index.html', 'binary/releases/agent-as-code/1/12/index.html', 'v2/agent-releases/index.html', 'v2/agent-releases/1.8.3.html', 'agents/index.html', 'agents/@agentx/gmail-agent/index.html']) {
      assert.ok(pages.has(key), `${key} is rendered`);
    }
  });

  test('each page is valid HTML under the recommended rules', async () => {
    const problems: string[] = [];
    for (const [key, body] of pages) {
      const report = await validator.validateString(body, key);
      for (const result of report.results) {
        for (const message of result.messages) problems.push(`${key}:${message.line}:${message.column} ${message.ruleId}: ${message.message}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  test('each page has exactly one h1', () => {
    for (const [key, body] of pages) assert.equal(body.match(/<h1[\s>]/g)?.length ?? 0, 1, key);
  });

  test('every page but the home page has breadcrumbs: home first, each level a link a browser gets a page from, the last this page', () => {
    for (const [key, body] of pages) {
      const crumbs = breadcrumbs(body);
      if (key === 'index.html') {
        assert.equal(crumbs, undefined, 'the home page is its own trail');
        continue;
      }
      assert.ok(crumbs, `${key} has breadcrumbs`);
      assert.ok(crumbs.length >= 2, `${key}: home and at least the page itself`);
      assert.deepEqual(crumbs[0], { href: '/', label: 'Release Mirror', current: false }, key);
      assert.deepEqual(crumbs.map((crumb) => crumb.current), crumbs.map((_, index) => index === crumbs.length - 1), `${key}: only the last level is the current page`);
      for (const crumb of crumbs) {
        assert.ok(crumb.label.trim() !== '', `${key}: ${crumb.href} has a label`);
        const got = browse(crumb.href);
        assert.ok(pages.has(got), `${key}: breadcrumb ${crumb.href} gives ${got}, not a page`);
      }
      assert.equal(browse(crumbs.at(-1)!.href), key, `${key}: the last breadcrumb is the page itself`);
    }
  });

  test('a breadcrumb trail is an ordered list of links and nothing else: no separator in the text', () => {
    const body = pages.get('binary/releases/agent-as-code/1/12/index.html')!;
    const nav = /<nav class="crumbs" aria-label="Breadcrumb">([\s\S]*?)<\/nav>/.exec(body)?.[1];
    assert.ok(nav);
    assert.match(nav, /^\s*<ol>[\s\S]*<\/ol>\s*$/);
    assert.equal(nav.replace(/<a\b[^>]*>[^<]*<\/a>/g, '').replace(/<[^>]+>/g, '').trim(), '');
    assert.deepEqual(breadcrumbs(body)!.map((crumb) => crumb.label), ['Release Mirror', 'releases', 'agent-as-code', '1.12']);
  });

  test('a browser gets a page, and an API client JSON, from every listing: binary indexes and every agent-releases answer', () => {
    const listings: string[] = Object.entries(site.routes.paths).flatMap(([path, target]) => (target.type === 'file' && target.key.endsWith('index.json') ? [path] : []));
    for (const endpoint of site.routes.endpoints) {
      if (endpoint.answer === 'file') listings.push(...Object.keys(endpoint.entries));
    }
    assert.ok(listings.includes('/v2/agent-releases?page=1&limit=20'));
    assert.ok(listings.includes('/v2/agent-releases/latest?channel=stable'));
    assert.ok(listings.includes('/v2/agent-releases/1.8.3'));
    for (const listing of listings) {
      assert.ok(pages.has(browse(listing)), `${listing} gives a browser ${browse(listing)}`);
      const [path = '', query = ''] = listing.split('?');
      const json = resolve(routes, { path, query, accept: 'application/json' });
      assert.ok(json.type === 'file' && json.key.endsWith('.json'), `${listing} gives an API client JSON`);
    }
    assert.equal(browse('/v2/agent-releases/latest'), 'v2/agent-releases/1.8.3.html', 'the newest stable release');
  });

  test('every page is served by some route', () => {
    const served = new Set<string>();
    for (const target of Object.values(site.routes.paths)) {
      if (target.type !== 'file') continue;
      served.add(target.key);
      if (target.html !== undefined) served.add(target.html);
    }
    for (const endpoint of site.routes.endpoints) for (const html of Object.values(endpoint.html ?? {})) served.add(html);
    assert.deepEqual([...pages.keys()].filter((key) => !served.has(key)), []);
  });
});

/** The links of a page's breadcrumb trail, in order; undefined without one. */
function breadcrumbs(body: string): Crumb[] | undefined {
  const nav = /<nav class="crumbs"[^>]*>([\s\S]*?)<\/nav>/.exec(body)?.[1];
  if (nav === undefined) return undefined;
  return [...nav.matchAll(/<a href="([^"]*)"( aria-current="page")?>([^<]*)<\/a>/g)].map((match) => ({ href: decode(match[1]!), label: decode(match[3]!), current: match[2] !== undefined }));
}

/** The entities Handlebars escapes with. */
function decode(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#x27|#x60|#x3D);/g, (_, name: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#x27': "'", '#x60': '`', '#x3D': '=' })[name]!);
}
