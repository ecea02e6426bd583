// The sidecar's configuration: defaults, a file under the environment, every problem named.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, describeConfig, loadConfig, SETTING_NAMES } from '../sidecar/config.ts';
import { removeDir, tempDir } from './helpers/store.ts';

describe('loadConfig', () => {
  test('defaults: the embedded setup, paths under the data directory', () => {
    const config = loadConfig({ MIRROR_DATA_DIR: '/srv/mirror' });
    assert.equal(config.settings.PORT, 8080);
    assert.equal(config.settings.AUTH_MODE, 'local');
    assert.equal(config.settings.DATABASE_URL, undefined);
    assert.equal(config.databaseFile, '/srv/mirror/state.db');
    assert.equal(config.blobsDir, '/srv/mirror/blobs');
    assert.equal(config.site, '/srv/mirror/site');
    assert.equal(config.authDir, '/srv/mirror/auth');
  });

  test('a JSON file named by MIRROR_CONFIG, the environment over it', async () => {
    const dir = await tempDir();
    try {
      const file = path.join(dir, 'mirror.config.json');
      await writeFile(file, JSON.stringify({ PORT: 9000, MAX_UPLOAD_BYTES: 1024, LOG_LEVEL: 'debug' }));
      const config = loadConfig({ MIRROR_CONFIG: file, PORT: '9100' });
      assert.equal(config.settings.PORT, 9100);
      assert.equal(config.settings.MAX_UPLOAD_BYTES, 1024);
      assert.equal(config.settings.LOG_LEVEL, 'debug');
      await writeFile(file, JSON.stringify({ PROT: 9000 }));
      assert.throws(() => loadConfig({ MIRROR_CONFIG: file }), /MIRROR_CONFIG: .*mirror\.config\.json: unknown settings PROT/);
      await writeFile(file, '{');
      assert.throws(() => loadConfig({ MIRROR_CONFIG: file }), /MIRROR_CONFIG: .*mirror\.config\.json: /);
      assert.throws(() => loadConfig({ MIRROR_CONFIG: path.join(dir, 'missing.json') }), /MIRROR_CONFIG: cannot read .*missing\.json \(ENOENT\)/);
    } finally {
      await removeDir(dir);
    }
  });

  test('every bad setting is reported at once, by name, with the value unless it may hold a secret', () => {
    assert.throws(
      () => loadConfig({ PORT: '70000', MAX_UPLOAD_BYTES: '0', AUTH_MODE: 'ldap', REDIS_URL: 'http://user:pw@host', TRUSTED_PROXIES: '-1' }),
      (error: Error) => {
        assert.ok(error instanceof ConfigError);
        for (const name of ['PORT', 'MAX_UPLOAD_BYTES', 'AUTH_MODE', 'REDIS_URL', 'TRUSTED_PROXIES']) assert.match(error.message, new RegExp(`^ {2}${name}: `, 'm'));
        assert.match(error.message, /PORT: .*, got `70000`/);
        assert.doesNotMatch(error.message, /pw/);
        return true;
      },
    );
    assert.throws(() => loadConfig({ MIRROR_CLOUDFRONT_DISTRIBUTION_ID: 'E2X' }), /MIRROR_CLOUDFRONT_DISTRIBUTION_ID: needs MIRROR_S3_BUCKET/);
  });

  test('describeConfig lists every setting and hides passwords in URLs', () => {
    const text = describeConfig(loadConfig({ DATABASE_URL: 'postgres://app:s3cret@db:5432/state', REDIS_URL: 'redis://:t0ken@cache:6379' }));
    assert.equal(text.split('\n').length, SETTING_NAMES.length);
    assert.match(text, /^DATABASE_URL=postgres:\/\/app:\*\*\*@db:5432\/state$/m);
    assert.match(text, /^REDIS_URL=redis:\/\/:\*\*\*@cache:6379$/m);
    assert.doesNotMatch(text, /s3cret|t0ken/);
  });
});
