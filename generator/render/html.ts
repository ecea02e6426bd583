// HTML listings for browsers, from the Handlebars templates in templates/ (passed in as text).
import Handlebars from 'handlebars';
import { CACHE_SHORT, HTML_TYPE, type SiteFile } from './site-file.ts';

/** Template sources by name (file name without `.hbs`); `layout` wraps every page; `site.css` is their stylesheet. */
export type Templates = Record<string, string>;

/** One level of a page's breadcrumb trail. */
export interface Crumb {
  label: string;
  href: string;
}

/** What every page is given besides its template's own fields. */
export interface PageContext {
  /** The page's `<title>`. */
  title: string;
  /** The levels from below the home page down to this page itself; empty on the home page. */
  breadcrumbs: Crumb[];
  [field: string]: unknown;
}

export interface PageRenderer {
  page(key: string, template: string, context: PageContext): SiteFile;
}

export function createPageRenderer(templates: Templates, siteTitle: string): PageRenderer {
  const handlebars = Handlebars.create();
  handlebars.registerHelper('bytes', formatBytes);
  handlebars.registerHelper('date', (iso: string) => (typeof iso === 'string' ? iso.slice(0, 10) : ''));
  const compiled = new Map<string, Handlebars.TemplateDelegate>();
  const compile = (name: string) => {
    let template = compiled.get(name);
    if (!template) {
      const source = templates[name];
      if (source === undefined) throw new Error(`Template \`${name}.hbs\` is missing from templates/`);
      template = handlebars.compile(source, { strict: true });
      compiled.set(name, template);
    }
    return template;
  };
  return {
    page(key, template, context) {
      const content = compile(template)({ siteTitle, ...context });
      const body = compile('layout')({ siteTitle, title: context.title, breadcrumbs: trail(siteTitle, context.breadcrumbs), content });
      return { key, body, contentType: HTML_TYPE, cacheControl: CACHE_SHORT, kind: 'page' };
    },
  };
}

/** The whole trail, home first; the last level is the page itself (`aria-current`). */
function trail(siteTitle: string, levels: Crumb[]): (Crumb & { current: boolean })[] {
  if (levels.length === 0) return [];
  const all = [{ label: siteTitle, href: '/' }, ...levels];
  return all.map((crumb, index) => ({ ...crumb, current: index === all.length - 1 }));
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
