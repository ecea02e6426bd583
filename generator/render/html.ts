// HTML listings for browsers, from the Handlebars templates in templates/ (passed in as text).
import Handlebars from 'handlebars';
import { CACHE_SHORT, HTML_TYPE, type SiteFile } from './site-file.ts';

/** Template sources by name (file name without `.hbs`); `layout` wraps every page; `site.css` is their stylesheet. */
export type Templates = Record<string, string>;

export interface PageRenderer {
  page(key: string, template: string, context: Record<string, unknown>): SiteFile;
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
      const body = compile('layout')({ siteTitle, title: context.title ?? siteTitle, breadcrumbs: context.breadcrumbs ?? [], content });
      return { key, body, contentType: HTML_TYPE, cacheControl: CACHE_SHORT, kind: 'page' };
    },
  };
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
