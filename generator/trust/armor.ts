// The text forms of OpenPGP signatures package managers read: an armored detached signature
// (apt's Release.gpg, yum's repomd.xml.asc) and a clear-signed message (apt's InRelease), both
// from the same deterministic signature packets as the binary `.sig` files.
import * as openpgp from 'openpgp';
import type { SigningKey } from './keyring.ts';
import { TEXT_DOCUMENT } from './openpgp-signature.ts';

/** Every key's detached signature over `data`, in one armored block (with the checksum line gpg 2.2 needs). */
export function armoredSignature(data: Uint8Array, keys: SigningKey[], date: Date): string {
  const packets = Buffer.concat(keys.map((key) => key.sign(data, date)));
  return openpgp.armor(openpgp.enums.armor.signature, packets, undefined, undefined, undefined, true);
}

/**
 * `text` clear-signed by every key (RFC 4880 section 7): the signatures are over the canonical
 * text (lines without trailing blanks, joined by CRLF, the last line ending excluded), and lines
 * starting with `-` are dash-escaped.
 */
export function clearsign(text: string, keys: SigningKey[], date: Date): string {
  const lines = text.replace(/\r?\n$/, '').split(/\r?\n/);
  const canonical = Buffer.from(lines.map((line) => line.replace(/[ \t]+$/, '')).join('\r\n'));
  const packets = Buffer.concat(keys.map((key) => key.sign(canonical, date, TEXT_DOCUMENT)));
  const signature = openpgp.armor(openpgp.enums.armor.signature, packets, undefined, undefined, undefined, true);
  const escaped = lines.map((line) => (line.startsWith('-') ? `- ${line}` : line)).join('\n');
  return `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n${escaped}\n${signature}`;
}
