// uploads_total over real HTTP: every upload counted once, whichever part of the sidecar answered it
// (the rate limit in front, the token check, the upload route), refusals with their reason.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createMetrics } from '../sidecar/metrics.ts';
import { perIp, rateLimit } from '../sidecar/middleware/rate-limit.ts';
import { startUploadSite, type UploadSite } from './helpers/upload-site.ts';

const UPLOAD = '/binary/releases/agent-as-code/1/15/upload';
const ALLOWED = 6;

const metrics = createMetrics();
// Every request counts against one small budget, so the last upload meets the limiter, not the route.
const limiter = rateLimit({ rules: [perIp({ points: ALLOWED, durationSeconds: 60 })] });
let site: UploadSite;
before(async () => {
  site = await startUploadSite({ maxBytes: 8 * 1024, extra: { operations: [metrics.middleware(), limiter] } });
});
after(async () => {
  await site.close();
  await limiter.close();
});

async function upload(body: unknown, token: string | null): Promise<number> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  const response = await fetch(site.url + UPLOAD, { method: 'POST', headers, body: JSON.stringify(body) });
  await response.arrayBuffer();
  return response.status;
}

/** The uploads_total samples, once the count has caught up with `expected` uploads (they are counted when the connection closes). */
async function counted(expected: number): Promise<Record<string, number>> {
  for (let attempt = 0; ; attempt++) {
    const { values } = await metrics.uploads.get();
    const samples = Object.fromEntries(values.map(({ labels, value }) => [`${labels.result}/${labels.reason}`, value]));
    if (Object.values(samples).reduce((sum, value) => sum + value, 0) >= expected || attempt === 50) return samples;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('every upload is counted once: created, and each refusal with its reason', async () => {
  const token = await site.token();
  const zip = (size: number) => Buffer.concat([Buffer.from('PK\x03\x04'), randomBytes(size - 4)]).toString('base64');
  const good = { version: '1.15.0', platform: 'linux', architecture: 'arm64', file_data: zip(2000) };
  const statuses = [
    await upload(good, null),
    await upload({ ...good, version: '1.15.1', file_data: zip(9000) }, token),
    await upload({ ...good, version: 'not-semver' }, token),
    await upload(good, token),
    await upload(good, token),
    await upload({ ...good, version: '1.15.2' }, token),
    await upload({ ...good, version: '1.15.3' }, token),
  ];
  assert.deepEqual(statuses, [401, 413, 400, 201, 409, 201, 429]);
  assert.deepEqual(await counted(statuses.length), {
    'refused/auth': 1,
    'refused/too_large': 1,
    'refused/invalid': 1,
    'created/': 2,
    'refused/conflict': 1,
    'refused/rate_limited': 1,
  });
});
