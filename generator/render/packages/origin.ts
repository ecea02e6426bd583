// Package managers need absolute URLs. They point at mirror.json's `base_url`; without one, at the
// embedded default's own address (`npm start`, http://127.0.0.1:8080), so the sample works out of
// the box. A real deployment sets `base_url`.
import type { SiteSettings } from '../../model/catalog.ts';

export const LOCAL_ORIGIN = 'http://127.0.0.1:8080';

export function packageOrigin(site: SiteSettings): string {
  return site.baseUrl || LOCAL_ORIGIN;
}
