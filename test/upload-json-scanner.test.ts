// The JSON upload body's scanner against the general parser it hands odd bodies to: the same
// answer for every body, whole or split at any byte offset; large bodies in random pieces; and
// memory bounded for a 50 MiB file.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { fileDataOf, tokenizedFileData, UploadBodyError, type JsonUploadFields } from '../sidecar/routes/upload-json-body.ts';

type Outcome = { error: string } | { file: string; fields: JsonUploadFields };

/** The body through `fileDataOf`, in the given pieces: the file as hex and the fields, or the error. */
async function scan(pieces: Buffer[], maxBodyBytes = 1 << 30): Promise<Outcome> {
  const fields: JsonUploadFields = { values: {}, fileData: false };
  const chunks: Buffer[] = [];
  try {
    // Copied: a piece is valid only until the next is asked for.
    for await (const bytes of fileDataOf(Readable.from(pieces), fields, maxBodyBytes)) chunks.push(Buffer.from(bytes));
  } catch (error) {
    assert.ok(error instanceof UploadBodyError, String(error));
    return { error: `${error.status} ${error.message}` };
  }
  return { file: Buffer.concat(chunks).toString('hex'), fields };
}

/** The same body through the general parser alone, as before the scanner. */
async function tokenized(body: Buffer): Promise<Outcome> {
  const fields: JsonUploadFields = { values: {}, fileData: false };
  const chunks: Buffer[] = [];
  try {
    for await (const bytes of tokenizedFileData(Readable.from([body]), fields)) chunks.push(bytes);
  } catch (error) {
    return { error: `${(error as UploadBodyError).status} ${(error as Error).message}` };
  }
  return { file: Buffer.concat(chunks).toString('hex'), fields };
}

const fields = (values: Record<string, string | undefined>, fileData = true): JsonUploadFields => ({ values, fileData });
const malformed = { error: '400 Malformed JSON body' };
const notBase64 = { error: '400 file_data is not valid base64' };

/** Bodies and what they give; each one is also split at every offset. */
const CASES: [string, string, Outcome][] = [
  ['the seed\'s shape', '{"version": "1.14.0", "platform": "linux", "architecture": "amd64", "file_data": "UEsDBA=="}', { file: '504b0304', fields: fields({ version: '1.14.0', platform: 'linux', architecture: 'amd64' }) }],
  ['file_data first, every field after it', '{"file_data":"UEsD","version":"1.0.0","filename":"a.zip","checksum":"sha256:ab"}', { file: '504b03', fields: fields({ version: '1.0.0', filename: 'a.zip', checksum: 'sha256:ab' }) }],
  ['whitespace everywhere JSON allows it', ' \r\n\t{ "version" :\t"1" ,\n"file_data"  :  "UEs="  } \n', { file: '504b', fields: fields({ version: '1' }) }],
  ['escaped slashes in file_data', '{"file_data":"UE\\/D\\/\\/\\/\\/"}', { file: '504fc3ffffff', fields: fields({}) }],
  ['a unicode escape in file_data', '{"file_data":"UEs\\u0044"}', { file: '504b03', fields: fields({}) }],
  ['padding escaped', '{"file_data":"UE\\u003d\\u003d"}', { file: '50', fields: fields({}) }],
  ['an escaped key, read by the general parser', '{"file_data":"UEsD","ver\\u0073ion":"2.0.0"}', { file: '504b03', fields: fields({ version: '2.0.0' }) }],
  ['an escaped value', '{"version":"1.\\u0030.0","file_data":"UEsD"}', { file: '504b03', fields: fields({ version: '1.0.0' }) }],
  ['a byte-order mark', '\ufeff{"file_data":"UEsD"}', { file: '504b03', fields: fields({}) }],
  ['numbers, literals and null in other fields', '{"n":-1.5e3,"t":true,"f":false,"version":null,"platform":"x","file_data":"UEsD"}', { file: '504b03', fields: fields({ version: undefined, platform: 'x' }) }],
  ['a repeated field: the last one', '{"version":"1","version":"2"}', { file: '', fields: fields({ version: '2' }, false) }],
  ['an empty object', '{}', { file: '', fields: fields({}, false) }],
  ['file_data null', '{"file_data":null}', { file: '', fields: fields({}, false) }],
  ['an empty body', '', malformed],
  ['whitespace only', '  \n', malformed],
  ['an unclosed object', '{"version":"1"', malformed],
  ['a body cut inside file_data', '{"file_data":"UEsD', malformed],
  ['a trailing comma', '{"a":"1",}', malformed],
  ['text after the object', '{"file_data":"UEsD"} x', malformed],
  ['a second object', '{"file_data":"UEsD"}{}', malformed],
  ['a missing colon', '{"a" "1"}', malformed],
  ['a bad number', '{"a":01}', malformed],
  ['a bad literal', '{"a":tru}', malformed],
  ['a raw newline in file_data', '{"file_data":"UEsD\nUEsD"}', malformed],
  ['a raw newline in a field', '{"version":"1\n"}', malformed],
  ['a bad escape in file_data', '{"file_data":"UE\\x"}', malformed],
  ['a short unicode escape in file_data', '{"file_data":"UE\\u00"}', malformed],
  ['an array', '[]', { error: '400 Expected a JSON object' }],
  ['a string', '"x"', { error: '400 Expected a JSON object' }],
  ['a nested array in another field', '{"extra":[[1]],"file_data":"UEsD"}', { error: '400 Expected `extra` to be a string, number, boolean or null' }],
  ['an object for a field', '{"file_data":"UEsD","platform":{"name":"linux"}}', { error: '400 Expected `platform` to be a string' }],
  ['a number for file_data', '{"file_data":123}', { error: '400 Expected `file_data` to be a string' }],
  ['file_data twice', '{"file_data":"UEsD","file_data":"UEsD"}', { error: '400 `file_data` is given more than once' }],
  ['file_data twice, the second escaped', '{"file_data":"UEsD","file\\u005fdata":"UEsD"}', { error: '400 `file_data` is given more than once' }],
  ['a key past 1024 characters', `{"${'k'.repeat(1025)}":"x"}`, { error: '400 A key is longer than 1024 characters' }],
  ['a key of 1024 characters', `{"${'k'.repeat(1024)}":"x","file_data":"UEsD"}`, { file: '504b03', fields: fields({}) }],
  ['a value past 1024 characters', `{"filename":"${'f'.repeat(1025)}"}`, { error: '400 `filename` is longer than 1024 characters' }],
  ['a number past 1024 digits', `{"extra":${'9'.repeat(1025)}}`, { error: '400 `extra` is longer than 1024 characters' }],
  ['a character outside base64', '{"file_data":"UE!D"}', notBase64],
  ['base64url characters', '{"file_data":"UE-_"}', notBase64],
  ['non-ASCII in file_data', '{"file_data":"UEé="}', notBase64],
  ['an escaped newline in file_data', '{"file_data":"UE\\nsD"}', notBase64],
  ['padding in the middle', '{"file_data":"UEs=UEsD"}', notBase64],
  ['three padding characters', '{"file_data":"A==="}', notBase64],
  ['padding after a whole quad', '{"file_data":"UEsD=="}', notBase64],
  ['a length no quad completes', '{"file_data":"UEsDB"}', notBase64],
  ['padding that leaves a quad short', '{"file_data":"UE="}', notBase64],
];

describe('the JSON upload body', () => {
  for (const [name, text, expected] of CASES) {
    test(`${name}: whole, in two pieces at every offset, and byte by byte`, async () => {
      const body = Buffer.from(text);
      assert.deepEqual(await scan([body]), expected);
      assert.deepEqual(await tokenized(body), expected, 'the general parser agrees');
      for (let cut = 1; cut < body.length; cut++) assert.deepEqual(await scan([body.subarray(0, cut), body.subarray(cut)]), expected, `cut at ${cut}`);
      assert.deepEqual(await scan([...body].map((byte) => Buffer.from([byte]))), expected, 'byte by byte');
    });
  }

  test('a body past the limit is 413, whether the scanner or the general parser is reading', async () => {
    const file = randomBytes(3000).toString('base64');
    assert.deepEqual(await scan([Buffer.from(`{"file_data":"${file}"}`)], 1000), { error: '413 The body is larger than the limit of 1000 bytes' });
    const pieces = [Buffer.from('{"n":1,'), Buffer.from(`"file_data":"${file}"}`)];
    assert.deepEqual(await scan(pieces, 1000), { error: '413 The body is larger than the limit of 1000 bytes' });
  });

  test('a long run of whitespace is handed over and still read', async () => {
    const body = Buffer.from(`{"file_data":"UEsD"${' '.repeat(100_000)},"version":"1"}`);
    assert.deepEqual(await scan([body]), { file: '504b03', fields: fields({ version: '1' }) });
  });

  test('6 MiB files in random pieces, plain and with every slash escaped, come out byte for byte', async () => {
    let seed = 14;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    for (const escapeSlashes of [false, true]) {
      const bytes = randomBytes(6 * 1024 * 1024 + 1);
      const encoded = escapeSlashes ? bytes.toString('base64').replaceAll('/', '\\/') : bytes.toString('base64');
      const body = Buffer.from(`{"version":"1.0.0","file_data":"${encoded}","platform":"linux"}`);
      for (let run = 0; run < 3; run++) {
        const pieces: Buffer[] = [];
        for (let at = 0; at < body.length; ) {
          const size = 1 + Math.floor(random() ** 3 * 200_000);
          pieces.push(body.subarray(at, at + size));
          at += size;
        }
        const outcome = await scan(pieces);
        assert.ok('file' in outcome, JSON.stringify(outcome));
        assert.equal(createHash('sha256').update(Buffer.from(outcome.file, 'hex')).digest('hex'), createHash('sha256').update(bytes).digest('hex'));
        assert.deepEqual(outcome.fields, fields({ version: '1.0.0', platform: 'linux' }));
      }
    }
  });

  test('a 50 MiB file streams through with less than 64 MiB of memory growth', async () => {
    const size = 50 * 1024 * 1024;
    const piece = randomBytes(48 * 1024);
    async function* body() {
      yield Buffer.from('{"version":"1.0.0","file_data":"');
      // 64 KiB of base64 at a time, as a socket delivers it; nothing of the body is kept.
      for (let sent = 0; sent < size; sent += piece.length) yield Buffer.from(piece.toString('base64'));
      yield Buffer.from('"}');
    }
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const fields: JsonUploadFields = { values: {}, fileData: false };
    const hash = createHash('sha256');
    let received = 0;
    for await (const bytes of fileDataOf(Readable.from(body()), fields, 1 << 30)) {
      hash.update(bytes);
      received += bytes.length;
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    assert.equal(received, Math.ceil(size / piece.length) * piece.length);
    assert.ok(peak - before < 64 * 1024 * 1024, `RSS grew by ${Math.round((peak - before) / 1024 / 1024)} MiB`);
  });
});
