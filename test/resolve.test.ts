// The pure request resolver: content negotiation and path decoding, which every adapter mirrors.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodePath, prefersHtml } from '../generator/render/resolve.ts';

describe('prefersHtml', () => {
  const cases: [string | undefined, boolean][] = [
    [undefined, false],
    ['*/*', false],
    ['application/json', false],
    ['text/html', true],
    ['text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8', true],
    ['application/json, text/html;q=0.9', false],
    ['text/html;q=0.5, application/json;q=0.4', true],
    ['text/html;q=0', false],
    ['text/html;q=0.8, */*', false],
  ];
  for (const [accept, expected] of cases) {
    test(`${accept ?? '(no Accept)'} → ${expected ? 'HTML' : 'JSON'}`, () => assert.equal(prefersHtml(accept), expected));
  }
});

describe('decodePath', () => {
  test('decodes percent-encoding of ordinary characters', () => {
    assert.equal(decodePath('/binary/releases/a%2Db/1/12/'), '/binary/releases/a-b/1/12/');
  });
  for (const raw of ['/a/../b', '/a/%2e%2e/b', '/a/.%2E/b', '/a/./b', '/a%2fb', '/a%5cb', '/a\\b', '/a%00b', '/%c0%ae', '/%', 'relative']) {
    test(`refuses ${raw}`, () => assert.equal(decodePath(raw), undefined));
  }
});
