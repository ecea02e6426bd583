// The fleet CA (seed 004): created once per data directory at mode 0600 even by racing processes,
// agent certificates that openssl verifies for client auth (the agent id in the subject and a URI
// SAN), renewals that keep the agent's key, and a real mutual-TLS handshake with Node and curl.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { agentUri, loadOrCreateCa, type FleetCa } from '../sidecar/fleet/ca.ts';
import { removeDir, runCli, tempDir } from './helpers/store.ts';

const run = promisify(execFile);

describe('fleet CA', () => {
  let dir: string;
  let ca: FleetCa;
  let other: FleetCa;

  before(async () => {
    dir = await tempDir('mirror-fleet-ca-');
    ca = await loadOrCreateCa(path.join(dir, 'fleet', 'ca.json'));
    other = await loadOrCreateCa(path.join(dir, 'other', 'ca.json'));
    await writeFile(path.join(dir, 'ca.pem'), ca.certificate);
  });
  after(async () => {
    await removeDir(dir);
  });

  test('is created once, private, and the same on every load, even by loads racing on a fresh file', async () => {
    const file = path.join(dir, 'fleet', 'ca.json');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
    assert.equal((await loadOrCreateCa(file)).certificate, ca.certificate);
    const racing = await Promise.all(Array.from({ length: 4 }, () => loadOrCreateCa(path.join(dir, 'race', 'ca.json'))));
    assert.equal(new Set(racing.map((loaded) => loaded.certificate)).size, 1);
    const cert = new X509Certificate(ca.certificate);
    assert.equal(cert.ca, true);
    assert.notEqual(cert.fingerprint256, new X509Certificate(other.certificate).fingerprint256);
  });

  test('an agent certificate: 24 h, openssl verifies it for client auth, the agent named in the subject and a URI SAN', async () => {
    const now = new Date();
    const issued = await ca.issueAgentCertificate('0b7c5a2e-1f0d-4c1e-9a57-3f1d2c4b5a69', { ttlSeconds: 86_400, now });
    assert.match(issued.key!, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(issued.expiresAt.getTime(), now.getTime() + 86_400_000);
    const file = path.join(dir, 'agent.pem');
    await writeFile(file, issued.cert);
    const verified = await run('openssl', ['verify', '-CAfile', path.join(dir, 'ca.pem'), '-purpose', 'sslclient', file]);
    assert.equal(verified.stdout.trim(), `${file}: OK`);
    await assert.rejects(run('openssl', ['verify', '-CAfile', path.join(dir, 'ca.pem'), '-purpose', 'sslserver', file]), /unsuitable certificate purpose/, 'not a server certificate');
    const text = (await run('openssl', ['x509', '-in', file, '-noout', '-text'])).stdout;
    assert.match(text, /Subject: CN ?= ?0b7c5a2e-1f0d-4c1e-9a57-3f1d2c4b5a69/);
    assert.match(text, new RegExp(`URI:${agentUri('0b7c5a2e-1f0d-4c1e-9a57-3f1d2c4b5a69')}`));
    assert.match(text, /TLS Web Client Authentication/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /ASN1 OID: prime256v1/);
    assert.ok(Math.abs(Date.parse(new X509Certificate(issued.cert).validTo) - issued.expiresAt.getTime()) < 1000);
  });

  test('another CA’s certificate does not verify; serials never repeat', async () => {
    const foreign = await other.issueAgentCertificate('agent-1', { ttlSeconds: 3600 });
    const file = path.join(dir, 'foreign.pem');
    await writeFile(file, foreign.cert);
    await assert.rejects(run('openssl', ['verify', '-CAfile', path.join(dir, 'ca.pem'), file]), /unable to get local issuer certificate/);
    const serials = await Promise.all(Array.from({ length: 50 }, async () => (await ca.issueAgentCertificate('agent-1', { ttlSeconds: 60 })).serial));
    assert.equal(new Set(serials).size, 50);
  });

  test('a renewal keeps the agent’s key and gives a later expiry', async () => {
    const first = await ca.issueAgentCertificate('agent-2', { ttlSeconds: 3600 });
    const publicKey = new X509Certificate(first.cert).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const renewed = await ca.issueAgentCertificate('agent-2', { ttlSeconds: 7200, publicKey });
    assert.equal(renewed.key, undefined, 'no new key is handed out');
    assert.equal(new X509Certificate(renewed.cert).publicKey.export({ type: 'spki', format: 'pem' }).toString(), publicKey);
    assert.ok(renewed.expiresAt > first.expiresAt);
    assert.notEqual(renewed.serial, first.serial);
  });

  test('mutual TLS: the server certificate verifies for localhost and 127.0.0.1; this CA’s agent is authorized, another CA’s is not', async () => {
    const server = await ca.issueServerCertificate(['localhost', '127.0.0.1'], { ttlSeconds: 3600 });
    const https = createServer({ cert: server.cert, key: server.key, ca: ca.certificate, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const socket = req.socket as TLSSocket;
      res.end(socket.authorized ? `authorized ${socket.getPeerCertificate().subject.CN}` : `refused: ${String(socket.authorizationError)}`);
    });
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
    const port = (https.address() as AddressInfo).port;
    try {
      const agent = await ca.issueAgentCertificate('agent-3', { ttlSeconds: 3600 });
      const foreign = await other.issueAgentCertificate('agent-3', { ttlSeconds: 3600 });
      for (const [name, issued] of [['agent', agent], ['foreign', foreign]] as const) {
        await writeFile(path.join(dir, `${name}-tls.pem`), issued.cert);
        await writeFile(path.join(dir, `${name}-tls.key`), issued.key!);
      }
      const curl = (name: string, host: string) =>
        run('curl', ['-sS', '--cacert', path.join(dir, 'ca.pem'), '--cert', path.join(dir, `${name}-tls.pem`), '--key', path.join(dir, `${name}-tls.key`), `https://${host}:${port}/`]);
      assert.equal((await curl('agent', '127.0.0.1')).stdout, 'authorized agent-3');
      assert.equal((await curl('agent', 'localhost')).stdout, 'authorized agent-3');
      assert.match((await curl('foreign', '127.0.0.1')).stdout, /^refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE|^refused: UNABLE_TO_GET_ISSUER_CERT/);
      await assert.rejects(run('curl', ['-sS', `https://127.0.0.1:${port}/`]), /certificate/, 'a client that does not trust the fleet CA refuses the server');
    } finally {
      https.closeAllConnections();
      await new Promise<void>((resolve) => https.close(() => resolve()));
    }
  });

  test('mirror fleet ca prints the data directory’s CA certificate, the same every time', async () => {
    const env = { MIRROR_DATA_DIR: path.join(dir, 'cli-data') };
    const first = await runCli(['fleet', 'ca'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n?$/);
    assert.equal((await runCli(['fleet', 'ca'], env)).stdout, first.stdout);
    assert.equal((await loadOrCreateCa(path.join(dir, 'cli-data', 'fleet', 'ca.json'))).certificate, first.stdout);
  });
});
