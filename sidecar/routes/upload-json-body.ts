// The JSON upload body read as a stream (stream-json's tokenizer): the small fields collected,
// `file_data` decoded from base64 chunk by chunk as it arrives. A 50 MiB file never exists as a
// string or a buffer; keys, numbers and fields are capped and nesting refused, so memory stays
// bounded whatever the body holds.
import type { Readable } from 'node:stream';
import parser from 'stream-json/parser.js';

export class UploadBodyError extends Error {
  constructor(readonly status: 400 | 413, message: string) {
    super(message);
    this.name = 'UploadBodyError';
  }
}

/** What the body held besides the file; `file_data` marks whether the file was there at all. */
export interface JsonUploadFields {
  values: Record<string, string | undefined>;
  fileData: boolean;
}

const FIELDS = ['version', 'platform', 'architecture', 'filename', 'checksum'];
const MAX_FIELD_LENGTH = 1024;

/**
 * The bytes of `file_data`, decoded, while `fields` fills with the other fields. Throws
 * UploadBodyError for a body that is not a JSON object of strings, for bad base64, and past
 * `maxBodyBytes` of body.
 */
export async function* fileDataOf(body: Readable, fields: JsonUploadFields, maxBodyBytes: number): AsyncGenerator<Buffer> {
  // Keys and numbers stream too: a 500 MiB key or number must not be held whole.
  const tokens = parser.asStream({ packValues: false, streamValues: true });
  let received = 0;
  body.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > maxBodyBytes) tokens.destroy(new UploadBodyError(413, `The body is larger than the limit of ${maxBodyBytes} bytes`));
  });
  body.on('error', (error) => tokens.destroy(error));
  body.pipe(tokens);

  let opened = false;
  let key = '';
  /** What the string chunks belong to: the key being read, a field's value, file_data, or an ignored value. */
  let into: 'key' | 'field' | 'file' | 'skip' = 'skip';
  let text = '';
  let numberLength = 0;
  let decoder: Base64Decoder | undefined;
  try {
    for await (const token of tokens as AsyncIterable<{ name: string; value?: unknown }>) {
      if (!opened) {
        if (token.name !== 'startObject') throw new UploadBodyError(400, 'Expected a JSON object');
        opened = true;
        continue;
      }
      switch (token.name) {
        case 'startObject':
        case 'startArray':
          // The body is a flat object of strings; nesting would only grow the parser's stack.
          throw new UploadBodyError(400, isField(key) ? `Expected \`${key}\` to be a string` : `Expected \`${key}\` to be a string, number, boolean or null`);
        case 'startKey':
          into = 'key';
          text = '';
          break;
        case 'endKey':
          key = text;
          into = 'skip';
          break;
        case 'startString':
          if (key === 'file_data') {
            if (fields.fileData) throw new UploadBodyError(400, '`file_data` is given more than once');
            fields.fileData = true;
            decoder = new Base64Decoder();
            into = 'file';
          } else {
            into = 'field';
            text = '';
          }
          break;
        case 'stringChunk':
          if (into === 'file') {
            const bytes = decoder!.push(token.value as string);
            if (bytes.length > 0) yield bytes;
          } else {
            text += token.value as string;
            if (text.length > MAX_FIELD_LENGTH) throw new UploadBodyError(400, into === 'key' ? `A key is longer than ${MAX_FIELD_LENGTH} characters` : `\`${key}\` is longer than ${MAX_FIELD_LENGTH} characters`);
          }
          break;
        case 'endString':
          if (into === 'file') {
            const bytes = decoder!.end();
            if (bytes.length > 0) yield bytes;
          } else if (FIELDS.includes(key)) {
            fields.values[key] = text;
          }
          into = 'skip';
          break;
        case 'startNumber':
          if (isField(key)) throw new UploadBodyError(400, `Expected \`${key}\` to be a string`);
          numberLength = 0;
          break;
        case 'numberChunk':
          numberLength += (token.value as string).length;
          if (numberLength > MAX_FIELD_LENGTH) throw new UploadBodyError(400, `\`${key}\` is longer than ${MAX_FIELD_LENGTH} characters`);
          break;
        case 'trueValue':
        case 'falseValue':
          if (isField(key)) throw new UploadBodyError(400, `Expected \`${key}\` to be a string`);
          break;
        case 'nullValue':
          if (FIELDS.includes(key)) fields.values[key] = undefined;
          break;
      }
    }
  } catch (error) {
    throw error instanceof UploadBodyError ? error : new UploadBodyError(400, 'Malformed JSON body');
  } finally {
    body.unpipe(tokens);
  }
  if (!opened) throw new UploadBodyError(400, 'Malformed JSON body');
}

function isField(key: string): boolean {
  return key === 'file_data' || FIELDS.includes(key);
}

/** Standard base64 in pieces of any length: whole quads decoded as they complete, padding only at the end. */
class Base64Decoder {
  private pending = '';
  private padding = 0;

  push(chunk: string): Buffer {
    const match = /^([A-Za-z0-9+/]*)(=*)$/.exec(chunk);
    if (!match || (this.padding > 0 && match[1]!.length > 0)) throw invalid();
    this.padding += match[2]!.length;
    if (this.padding > 2) throw invalid();
    this.pending += chunk;
    if (this.padding > 0) return Buffer.alloc(0);
    const whole = this.pending.length - (this.pending.length % 4);
    const quads = this.pending.slice(0, whole);
    this.pending = this.pending.slice(whole);
    return Buffer.from(quads, 'base64');
  }

  end(): Buffer {
    if (this.pending.length % 4 !== 0) throw invalid();
    return Buffer.from(this.pending, 'base64');
  }
}

function invalid(): UploadBodyError {
  return new UploadBodyError(400, 'file_data is not valid base64');
}
