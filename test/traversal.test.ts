// Paths that try to leave the site: every encoding of `..`, backslashes, NUL, encoded slashes.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, test } from 'node:test';
import { serveSampleForSuite } from './helpers/sample-site.ts';

const site = serveSampleForSuite();

/** Sends the path exactly as written: fetch() and curl would normalise the dots away. */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(site.url());
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method: 'GET' }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const ARTIFACT_DIR = '/binary/releases/agent-as-code/1/12';

describe('path traversal', () => {
  const refused = [
    `${ARTIFACT_DIR}/../../../../../../etc/passwd`,
    `${ARTIFACT_DIR}/%2e%2e/%2e%2e/%2e%2e/etc/passwd`,
    `${ARTIFACT_DIR}/%2E%2E%2F%2E%2E%2Fversions`,
    `${ARTIFACT_DIR}/..%2f..%2f..%2f..%2fetc%2fpasswd`,
    `${ARTIFACT_DIR}/..%5c..%5cetc%5cpasswd`,
    `${ARTIFACT_DIR}/..\\..\\etc\\passwd`,
    `${ARTIFACT_DIR}/agent_as_code_1.12.2_linux_amd64.zip%00.txt`,
    `${ARTIFACT_DIR}/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd`,
    `${ARTIFACT_DIR}/./agent_as_code_1.12.2_linux_amd64.zip`,
    '/downloads/agent/../../../../etc/passwd',
    '/v2/agent-releases/..%2F..%2Fetc/download?platform=windows',
  ];
  for (const path of refused) {
    test(`refuses ${path}`, async () => {
      const response = await rawGet(path);
      assert.equal(response.status, 400);
      const body = JSON.parse(response.body);
      const message = typeof body.error === 'string' ? body.message : body.error.message;
      assert.match(message, /Invalid path/);
      assert.doesNotMatch(response.body, /root:/);
    });
  }

  test('double encoding is not decoded twice: it is just an unknown path', async () => {
    const response = await rawGet(`${ARTIFACT_DIR}/%252e%252e/%252e%252e/etc/passwd`);
    assert.equal(response.status, 404);
    assert.deepEqual(JSON.parse(response.body), { error: 'Not Found', message: 'Binary not found' });
  });

  test('files outside the route table, such as the build manifest, are not reachable', async () => {
    for (const path of ['/site.json', '/routes.json', '/public/index.json', '/binary/releases/agent-as-code/versions.json']) {
      const response = await rawGet(path);
      assert.equal(response.status, 404, path);
    }
  });
});
