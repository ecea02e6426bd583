// The registry's pages in headless Chromium, served over real HTTP from a temporary copy of the
// sample store with one more package whose README tries every trick: nothing in it runs, the
// page works, the browse page lists the agent, and the page's download command verifies.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { HOSTILE_README, agentJson, versionJson, writeTarballBlob, writeVersionFile } from './helpers/registry-store.ts';
import { startSampleSite, type SampleSite } from './helpers/sample-site.ts';
import { copySampleStore, removeDir, tempDir } from './helpers/store.ts';

const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const chromiumMissing = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (Debian package chromium)`;
const curlMissing = spawnSync('sh', ['-c', 'command -v curl && command -v sha256sum']).status === 0 ? false : 'curl or sha256sum is not installed';

const EVIL = versionJson('mallory', 'evil-agent', '1.0.0', { readme: HOSTILE_README, agent: agentJson('evil-agent', '1.0.0', { description: 'An agent whose README attacks its page', category: 'security' }) });
const EVIL_PAGE = '/agents/@mallory/evil-agent';

// CI installs Chromium (.ci/run): there the suite fails without it instead of skipping.
describe('registry pages in Chromium', { skip: !process.env.CI && chromiumMissing }, () => {
  let dir: string;
  let site: SampleSite;
  let browser: Browser;
  let context: BrowserContext;
  before(async () => {
    assert.equal(chromiumMissing, false, chromiumMissing || '');
    dir = await tempDir('mirror-registry-pages-');
    const releasesDir = path.join(dir, 'releases');
    const blobsDir = path.join(dir, 'blobs');
    await copySampleStore(releasesDir, { releases: true });
    await writeVersionFile(releasesDir, EVIL);
    await writeTarballBlob(blobsDir, EVIL);
    site = await startSampleSite(releasesDir, blobsDir);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    context = await browser.newContext();
    // Only the site under test: avatars and README images from elsewhere are not fetched.
    await context.route('**/*', (route) => (new URL(route.request().url()).origin === site.url ? route.continue() : route.abort()));
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    const errors = site?.errors ?? [];
    await site?.close();
    if (dir) await removeDir(dir);
    assert.deepEqual(errors, []);
  });

  /** Opens a path, failing the test on any script error or dialog the page raises. */
  async function open(pathname: string): Promise<{ page: Page; problems: string[] }> {
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('dialog', (dialog) => {
      problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
    const response = await page.goto(site.url + pathname);
    assert.equal(response?.status(), 200, pathname);
    return { page, problems };
  }

  test('the agent page renders: heading, description, install commands and the versions table', async () => {
    const { page, problems } = await open(EVIL_PAGE);
    try {
      assert.equal(await page.title(), '@mallory/evil-agent');
      assert.equal((await page.locator('h1').innerText()).trim(), '@mallory/evil-agent 1.0.0');
      assert.ok(await page.getByText('An agent whose README attacks its page').isVisible());
      assert.ok(await page.locator('article.readme h2', { hasText: 'Evil Agent' }).isVisible());
      assert.equal(await page.locator('pre code').first().innerText(), 'agentx install @mallory/evil-agent');
      const rows = page.locator('table.versions tbody tr');
      assert.equal(await rows.count(), 1);
      assert.match(await rows.first().innerText(), /^1\.0\.0\s+2026-01-01\s+\d+ B\s+[0-9a-f]{64}\s+1\.0\.0\.tar\.gz$/);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('nothing in the README runs, not even after clicking its links', async () => {
    const { page, problems } = await open(EVIL_PAGE);
    try {
      const state = () => page.evaluate(() => ({ pwned: (window as { __pwned?: unknown }).__pwned, scripts: document.scripts.length, frames: document.querySelectorAll('iframe').length }));
      assert.deepEqual(await state(), { pwned: undefined, scripts: 0, frames: 0 });
      for (const text of ['click', 'raw link', 'cover']) await page.locator('article.readme').getByText(text, { exact: true }).click();
      assert.equal(new URL(page.url()).pathname, EVIL_PAGE, 'no link led anywhere');
      assert.deepEqual(await state(), { pwned: undefined, scripts: 0, frames: 0 });
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('the browse page, reached without its slash, lists the agent under its category and links to it', async () => {
    const { page, problems } = await open('/agents');
    try {
      assert.equal(new URL(page.url()).pathname, '/agents/');
      const security = page.locator('h2#security + ul');
      assert.equal(await page.locator('h2#security').innerText(), 'Security');
      const link = security.getByRole('link', { name: '@mallory/evil-agent' });
      assert.ok(await link.isVisible());
      assert.match(await security.innerText(), /@mallory\/evil-agent\s+1\.0\.0\s+— An agent whose README attacks its page/);
      assert.ok(await page.locator('h2#productivity + ul').getByRole('link', { name: '@agentx/gmail-agent' }).isVisible(), 'the sample agents are listed too');
      await link.click();
      await page.waitForURL(`**${EVIL_PAGE}`);
      assert.equal((await page.locator('h1').innerText()).trim(), '@mallory/evil-agent 1.0.0');
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  test('the download command the page shows fetches the tarball and checks its SHA-256', { skip: !process.env.CI && curlMissing }, async () => {
    const { page } = await open(EVIL_PAGE);
    let command: string;
    try {
      command = await page.locator('pre code').nth(1).innerText();
    } finally {
      await page.close();
    }
    const work = await tempDir('mirror-registry-download-');
    try {
      // Asynchronously: the server answering curl runs in this process.
      const run = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', command], { cwd: work, env: { ...process.env, MIRROR: site.url }, timeout: 30_000 });
      assert.equal(run.stdout, 'evil-agent-1.0.0.tar.gz: OK\n', `${command}\n${run.stderr}`);
    } finally {
      await removeDir(work);
    }
  });
});
