// The generated nginx.conf against the sidecar: the sample served by both, the same requests sent
// to each, status, body bytes and the headers clients act on compared one by one; and nginx
// started from `mirror nginx-conf`'s output the way a process manager starts it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { currentBuild, readRoutes } from '../generator/publish/local-dir.ts';
import { ROUTE_SHARDS_DIR, ROUTE_SHARD_INDEX, shardOf, type RouteShardIndex } from '../generator/render/route-shard-source.ts';
import { bundleNjsModule, nginxConfig } from '../generator/publish/nginx.ts';
import { parseFormUrlEncoded } from '../generator/render/resolve.ts';
import type { RouteTable } from '../generator/render/route-table.ts';
import { build } from '../generator/pipeline.ts';
import { verifyMirror } from '../generator/verify.ts';
import { API, BINARY, BROWSER, MSI, ODD_QUERIES, TRAVERSAL, UNKNOWN, ZIP, endpointTargets, send, withoutSlash, type Received, type Sent } from './helpers/route-requests.ts';
import { freePort, runNginx, startNginx, whyNginxCannotRun, type RunningNginx } from './helpers/nginx.ts';
import { REPO, SAMPLE_BLOBS, SAMPLE_RELEASES, startSampleSite, type SampleSite } from './helpers/sample-site.ts';
import { PRODUCT, writeSyntheticStore } from '../scripts/bench/synthetic-store.ts';

const execFileAsync = promisify(execFile);

/** The headers a client or cache acts on; Date, Server, Connection and reason phrases are not compared. */
const COMPARED = ['content-type', 'content-length', 'cache-control', 'etag', 'location', 'content-disposition', 'x-checksum-sha256', 'vary', 'content-range', 'accept-ranges', 'allow', 'last-modified'];

function comparable(received: Received) {
  const headers: Record<string, string | string[] | undefined> = {};
  for (const name of COMPARED) headers[name] = received.headers[name];
  return { status: received.status, headers, body: received.body.toString('latin1') };
}

// ---------------------------------------------------------------------------------------------
// The resolver as njs runs it: the same generator/render/resolve.ts, bundled.

describe('the resolver bundled for njs', () => {
  test('its query parser reads queries exactly as URLSearchParams does', () => {
    const queries = ['', 'a=1&b=2', 'a+b=c+d', '%zz=1', 'x=%E2%82%AC', 'x=%FF', 'x=%E2%82', '&&a=&', '=v', 'a==b', 'platform=macos&arch=x86%5F64', 'q=%', 'q=%2', 'k%00=v', 'caf%C3%A9=1', 'x=%F0%9F%98', 'x=%F0%9F%98%80', 'x=%ED%A0%80', 'x=%C0%AF', 'x=%E0%80%AF', 'x=%F4%90%80%80', 'x=%C3%28', 'x=%E2%28%A1', 'x=%80%80', 'x=%F8%88%80%80%80'];
    for (const raw of queries) assert.deepEqual(parseFormUrlEncoded(raw), [...new URLSearchParams(raw)], raw);
  });

  test('the bundle is a module njs 0.7.9 parses: one default export, none of the syntax it lacks', async () => {
    const source = await bundleNjsModule();
    assert.match(source, /\nexport default \w+;\n$/);
    assert.equal(source.match(/^export /gm)!.length, 1);
    assert.doesNotMatch(source, /\?\?|\?\.[\w[(]|\bfor \((const|let|var) [^;)]* of\b/);
  });
});

/** Requests for every path, endpoint and malformed input the comparison suites use. */

// ---------------------------------------------------------------------------------------------
// nginx itself.

const nginxMissing = whyNginxCannotRun();

// The route table preloaded whole (a small site's), and read a shard at a time (a large site's).
for (const { table: how, preloadRoutesBytes } of [
  { table: 'preloaded', preloadRoutesBytes: undefined },
  { table: 'read a shard at a time', preloadRoutesBytes: 0 },
]) describe(`nginx serving the sample like the sidecar, the route table ${how}`, { skip: nginxMissing }, () => {
  let sidecar: SampleSite;
  let nginx: RunningNginx;
  let table: RouteTable;
  before(async () => {
    // Signed, so the signatures, keys and snapshot are compared too.
    sidecar = await startSampleSite(undefined, undefined, { signed: true });
    table = await readRoutes((await currentBuild(sidecar.site))!);
    nginx = await startNginx(sidecar.site, SAMPLE_BLOBS, { preloadRoutesBytes });
  });
  after(async () => {
    await nginx?.close();
    await sidecar?.close();
    assert.deepEqual(sidecar?.errors ?? [], []);
  });

  async function same(sent: Sent): Promise<Received> {
    const [expected, actual] = await Promise.all([send(sidecar.url, sent), send(nginx.url, sent)]);
    assert.deepEqual(comparable(actual), comparable(expected), `${sent.method ?? 'GET'} ${sent.path} ${JSON.stringify(sent.headers ?? {})}\nnginx log:\n${nginx.log().slice(-2000)}`);
    return expected;
  }

  test('every path of the route table: GET, HEAD, and GET from a browser', async () => {
    for (const path of Object.keys(table.paths)) {
      await same({ path });
      await same({ path, method: 'HEAD' });
      await same({ path, headers: { Accept: BROWSER } });
    }
  });

  test('mirror verify through nginx: every file the signed snapshot names, every signature, with the keys pinned', async () => {
    assert.ok(table.paths['/.well-known/mirror/snapshot.json'], 'the sample site is signed');
    const keys = await readFile(path.join((await currentBuild(sidecar.site))!, 'public', '.well-known', 'pgp-keys.gpg'));
    const report = await verifyMirror({ baseUrl: nginx.url, trust: { keys } });
    assert.deepEqual(report.problems, []);
    assert.match(report.trust ?? '', /^snapshot version \d+, .* \(keys pinned with --keys\)/);
    assert.ok(report.counts.signaturesChecked >= 8, `signatures checked: ${report.counts.signaturesChecked}`);
  });

  test('paths without their trailing slash, with and without a query: 301', async () => {
    for (const path of withoutSlash(table)) {
      const answer = await same({ path });
      assert.equal(answer.status, 301, path);
    }
  });

  test('every endpoint with valid and invalid queries (seeds 001 and 002)', async () => {
    for (const path of endpointTargets()) {
      await same({ path });
      await same({ path, method: 'HEAD' });
    }
    assert.equal((await same({ path: `${API}/latest/download?platform=windows` })).status, 302);
    assert.equal((await same({ path: `${API}/latest/download?platform=windows&platform=macos` })).status, 400);
    assert.equal((await same({ path: `${API}/1.8.4/download?platform=macos&arch=x86_64` })).status, 404);
  });

  test('query strings decode byte for byte like URLSearchParams', async () => {
    for (const path of ODD_QUERIES) await same({ path });
  });

  test('Accept negotiation between JSON and HTML on the same URL', async () => {
    for (const accept of [BROWSER, 'application/json', 'text/html', 'text/html;q=0.5, application/json', 'application/json;q=0.5, text/html', '*/*', 'text/html;q=0', 'TEXT/HTML']) {
      for (const path of ['/', '/binary/releases/', `${BINARY}/`, `${BINARY}/versions`, `${BINARY}/1/12/`, API, `${API}/latest?channel=latest`]) {
        await same({ path, headers: { Accept: accept } });
      }
    }
  });

  test('If-None-Match: 304 for the sidecar\'s ETag, weak or in a list, and for *', async () => {
    for (const path of [ZIP, MSI, `${BINARY}/versions`, `${BINARY}/1/12/agent_as_code_1.12.2_SHA256SUMS`, `${API}/1.8.3`]) {
      const etag = (await same({ path })).headers.etag as string;
      assert.match(etag, /^"[0-9a-f]{64}"$/);
      for (const value of [etag, `W/${etag}`, `"other", ${etag}`, '*', '"other"']) {
        await same({ path, headers: { 'If-None-Match': value } });
        await same({ path, method: 'HEAD', headers: { 'If-None-Match': value } });
      }
    }
    const html = (await same({ path: `${BINARY}/1/12/`, headers: { Accept: BROWSER } })).headers.etag as string;
    assert.equal((await same({ path: `${BINARY}/1/12/`, headers: { Accept: BROWSER, 'If-None-Match': html } })).status, 304);
  });

  test('Range: one range is 206, unsatisfiable 416, malformed or several ignored; If-Range', async () => {
    const etag = (await send(sidecar.url, { path: ZIP })).headers.etag as string;
    for (const path of [ZIP, MSI, `${BINARY}/versions`]) {
      for (const range of ['bytes=0-9', 'bytes=-5', 'bytes=5-', 'bytes=0-0', 'bytes=0-100000', 'bytes=1000-2000', 'bytes=5-2', 'bytes=abc', 'bytes=0-1,5-6', 'items=0-5', 'bytes=']) {
        await same({ path, headers: { Range: range } });
        await same({ path, method: 'HEAD', headers: { Range: range } });
      }
    }
    assert.equal((await same({ path: ZIP, headers: { Range: 'bytes=0-9', 'If-Range': etag } })).status, 206);
    assert.equal((await same({ path: ZIP, headers: { Range: 'bytes=0-9', 'If-Range': '"other"' } })).status, 200);
    assert.equal((await same({ path: ZIP, headers: { Range: 'bytes=0-9', 'If-Range': 'Mon, 01 Jan 2035 00:00:00 GMT' } })).status, 200);
    assert.equal((await same({ path: ZIP, headers: { Range: 'bytes=0-9', 'If-None-Match': etag } })).status, 304);
  });

  test('path traversal is refused with the sidecar\'s 400 bodies, before nginx normalises the path', async () => {
    for (const path of TRAVERSAL) await same({ path });
    const refused = await same({ path: `${BINARY}/1/12/../../../../../../etc/passwd` });
    assert.equal(refused.status, 400);
    assert.match(refused.body.toString(), /Invalid path/);
  });

  test('unknown paths, internal locations and build files answer the fallback 404s', async () => {
    for (const path of UNKNOWN) await same({ path });
  });

  test('other methods: 405 with Allow where GET answers, 404 elsewhere', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE']) {
      for (const path of ['/', ZIP, `${API}/latest/download?platform=windows`, '/nope', `${BINARY}/1/12/%2e%2e/x`, `${BINARY}/../../x`, '/../x', `${ZIP}%00`, '/_mirror/site']) await same({ method, path });
    }
  });

  test('Authorization is accepted and ignored on downloads', async () => {
    await same({ path: `${API}/latest/download?platform=windows`, headers: { Authorization: 'Bearer x' } });
    await same({ path: MSI, headers: { Authorization: 'Bearer x' } });
  });

  test('an artifact missing from the blob store: the sidecar\'s 404 body', async () => {
    const emptyBlobs = await mkdtemp(path.join(tmpdir(), 'mirror-no-blobs-'));
    const bare = await startNginx(sidecar.site, emptyBlobs);
    try {
      for (const path of [ZIP, MSI]) {
        const answer = comparable(await send(bare.url, { path }));
        assert.equal(answer.status, 404);
        assert.equal(answer.body, JSON.stringify({ error: 'Not Found', message: 'Binary not found' }));
        assert.deepEqual(
          Object.entries(answer.headers).filter(([, value]) => value !== undefined),
          [
            ['content-type', 'application/json; charset=utf-8'],
            ['content-length', String(answer.body.length)],
          ],
        );
      }
    } finally {
      await bare.close();
      await rm(emptyBlobs, { recursive: true, force: true });
    }
  });

  describe('documented differences', () => {
    test('several ranges that range-parser merges into one: the sidecar sends 206 of the merged range, nginx the whole file', async () => {
      const sent = { path: ZIP, headers: { Range: 'bytes=0-1,2-3' } };
      const [expected, actual] = await Promise.all([send(sidecar.url, sent), send(nginx.url, sent)]);
      assert.equal(expected.status, 206);
      assert.equal(expected.headers['content-range'], `bytes 0-3/${actual.body.length}`);
      assert.equal(actual.status, 200);
      assert.equal(actual.headers['content-range'], undefined);
    });

    test('If-Match and a past If-Unmodified-Since: the sidecar ignores them, nginx answers 412 (its own HTML page)', async () => {
      const preconditions: Record<string, string>[] = [{ 'If-Match': '"other"' }, { 'If-Unmodified-Since': 'Mon, 01 Jan 2001 00:00:00 GMT' }];
      for (const headers of preconditions) {
        const [expected, actual] = await Promise.all([send(sidecar.url, { path: ZIP, headers }), send(nginx.url, { path: ZIP, headers })]);
        assert.equal(expected.status, 200, JSON.stringify(headers));
        assert.equal(actual.status, 412, JSON.stringify(headers));
        assert.equal(actual.headers['content-type'], 'text/html');
      }
    });

    test('the config pins the build it was generated for (the sidecar follows the site symlink): regenerate and reload after a build', async () => {
      const config = await nginxConfig({ site: sidecar.site, blobs: SAMPLE_BLOBS, listen: '127.0.0.1:1', preloadRoutesBytes });
      const build = (await currentBuild(sidecar.site))!;
      if (preloadRoutesBytes === undefined) assert.ok(config.includes(`js_preload_object mirrorRoutes from "${build}/routes.json";\n    js_preload_object mirrorSite from "${build}/site.json";`));
      else {
        assert.ok(config.includes(`js_preload_object mirrorRouteIndex from "${build}/routes/index.json";\n    js_var $mirror_routes "${build}/routes";`));
        // The file facts too are read a shard at a time, not preloaded.
        assert.match(config, new RegExp(`js_var \\$mirror_files "${build}/files";\\n    js_var \\$mirror_file_shards [1-9][0-9]*;`));
        assert.ok(!config.includes('mirrorSite'));
      }
      assert.ok(config.includes(`alias "${build}/public/$mirror_file"`));
      assert.ok(config.includes(`alias "${SAMPLE_BLOBS}/$mirror_file"`));
    });
  });
});

describe('nginx reading a route table of several shards, without routes.json, like the sidecar', { skip: nginxMissing }, () => {
  let dir: string;
  let sidecar: SampleSite;
  let nginx: RunningNginx;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mirror-nginx-shards-'));
    const blobs = path.join(dir, 'blobs');
    await writeSyntheticStore(path.join(dir, 'releases'), { majors: 1, minors: 10, patches: 10 }, { blobsDir: blobs });
    sidecar = await startSampleSite(path.join(dir, 'releases'), blobs);
    // nginx serves a build of the same store whose table is too large for routes.json: its shards alone.
    const site = path.join(dir, 'site');
    await build({ releasesDir: path.join(dir, 'releases'), site, wholeTableMaxPaths: 0 });
    assert.ok(!existsSync(path.join((await currentBuild(site))!, 'routes.json')));
    nginx = await startNginx(site, blobs);
  });
  after(async () => {
    await nginx?.close();
    await sidecar?.close();
    await rm(dir, { recursive: true, force: true });
    assert.deepEqual(sidecar?.errors ?? [], []);
  });

  test('every path of the table, and a path missing from each shard, answers as the sidecar answers', async () => {
    const build = (await currentBuild(sidecar.site))!;
    const index = JSON.parse(await readFile(path.join(build, ROUTE_SHARDS_DIR, ROUTE_SHARD_INDEX), 'utf8')) as RouteShardIndex;
    assert.ok(index.shards >= 4, `${index.shards} shards`);
    const paths = Object.keys((await readRoutes(build)).paths);
    const missing = Array.from({ length: 64 }, (_, i) => `/binary/releases/${PRODUCT}/0/${i}/none-${i}.zip`);
    assert.ok(new Set([...paths, ...missing].map((each) => shardOf(each, index.shards))).size === index.shards, 'every shard is read');
    for (const wanted of [...paths, ...missing]) {
      const [expected, actual] = await Promise.all([send(sidecar.url, { path: wanted }), send(nginx.url, { path: wanted })]);
      assert.deepEqual(comparable(actual), comparable(expected), `${wanted}\nnginx log:\n${nginx.log().slice(-2000)}`);
      // Found where the table has it (a file, an artifact or a redirect), and nowhere else.
      assert.ok(missing.includes(wanted) ? actual.status === 404 : [200, 302].includes(actual.status), `${wanted}: ${actual.status}`);
    }
  });

  test('a build with neither routes.json nor shards gets no config', async () => {
    const site = path.join(dir, 'site');
    const shards = path.join((await currentBuild(site))!, ROUTE_SHARDS_DIR);
    await rm(shards, { recursive: true });
    await assert.rejects(nginxConfig({ site, blobs: SAMPLE_BLOBS, listen: '127.0.0.1:1' }), { message: /has no route table \(routes\.json or routes\/index\.json\)$/ });
  });
});

describe('nginx started by a process manager from `mirror nginx-conf`', { skip: nginxMissing }, () => {
  let dir: string;
  let site: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mirror-nginx-conf-'));
    site = path.join(dir, 'site');
    await build({ releasesDir: SAMPLE_RELEASES, site });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** `mirror nginx-conf` as a user runs it, with the sample's blob store. */
  function nginxConf(...args: string[]) {
    return execFileAsync(process.execPath, ['scripts/mirror.js', 'nginx-conf', '--site', site, ...args], { cwd: REPO, env: { ...process.env, MIRROR_DATA_DIR: path.dirname(SAMPLE_BLOBS) } });
  }

  test('with stdout and stderr pipes it starts, serves a file and a redirect, and logs to --access-log and --error-log', async () => {
    const prefix = path.join(dir, 'prefix');
    await mkdir(prefix);
    const port = await freePort();
    const file = path.join(prefix, 'nginx.conf');
    const { stdout: config } = await nginxConf('--listen', `127.0.0.1:${port}`, '--access-log', 'logs/access.log', '--error-log', path.join(prefix, 'logs', 'error.log'));
    await writeFile(file, config);
    const nginx = await runNginx({ dir: prefix, file, port });
    try {
      const index = await fetch(`${nginx.url}${BINARY}/versions`, { redirect: 'manual' });
      assert.equal(index.status, 200, nginx.log());
      assert.deepEqual(Buffer.from(await index.arrayBuffer()), await readFile(path.join((await currentBuild(site))!, 'public', BINARY, 'versions.json')));
      const download = await fetch(`${nginx.url}${API}/latest/download?platform=windows`, { redirect: 'manual' });
      assert.equal(download.status, 302);
      assert.match(download.headers.get('location') ?? '', /\.msi$/);
      // nginx writes a request's line after sending its response, so the client may read first.
      const accessLog = await until(async () => {
        const lines = await readFile(path.join(prefix, 'logs', 'access.log'), 'utf8');
        return lines.split('\n').length > 2 ? lines : undefined;
      });
      assert.match(accessLog, /"GET \/binary\/releases\/agent-as-code\/versions HTTP\/1\.1" 200 /);
      assert.match(accessLog, /"GET \/v2\/agent-releases\/latest\/download\?platform=windows HTTP\/1\.1" 302 /);
      await readFile(path.join(prefix, 'logs', 'error.log'));
    } finally {
      await nginx.close();
    }
  });

  test('without --access-log and --error-log the config leaves logging to nginx\'s defaults; a bad path is a usage error', async () => {
    const { stdout: config } = await nginxConf();
    assert.doesNotMatch(config, /^\s*(access_log|error_log)\b/m);
    assert.doesNotMatch(config, /\/dev\/std/);
    const refused = await nginxConf('--access-log', 'logs/$host.log').then(() => assert.fail('nginx-conf accepted a `$`'), (error: { code: number; stderr: string }) => error);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /Expected `--access-log` to be a log path .*, got `logs\/\$host\.log`/);
  });
});

/** Polls `check` until it returns a value, for up to 5 s. */
async function until<T>(check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('Gave up waiting after 5 s');
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 20));
  }
}
