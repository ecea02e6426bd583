// Reads the Handlebars templates that render/ compiles, and the stylesheet the pages share.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { packagePath } from '../package-root.ts';
import type { Templates } from '../render/html.ts';

export const TEMPLATES_DIR = packagePath('templates');

export async function loadTemplates(dir = TEMPLATES_DIR): Promise<Templates> {
  const templates: Templates = {};
  for (const name of (await readdir(dir)).sort()) {
    if (name.endsWith('.hbs')) templates[name.slice(0, -'.hbs'.length)] = await readFile(path.join(dir, name), 'utf8');
    else if (name.endsWith('.css')) templates[name] = await readFile(path.join(dir, name), 'utf8');
  }
  return templates;
}
