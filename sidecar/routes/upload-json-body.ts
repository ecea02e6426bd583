// The JSON upload body read as a stream: the small fields collected, `file_data` decoded from
// base64 chunk by chunk as it arrives. The usual flat shape goes through a scanner at memory speed
// (upload-json-scanner.ts); whatever it does not read goes to stream-json's tokenizer from the member
// it stopped at. A 50 MiB file never exists as a string or a buffer; keys, numbers and fields are
// capped and nesting refused, so memory stays bounded whatever the body holds.
import { Readable } from 'node:stream';
import parser from 'stream-json/parser.js';
import { FIELDS, FlatUploadScanner, invalid, malformed, MAX_FIELD_LENGTH, UploadBodyError, type JsonUploadFields, type ScanStep } from './upload-json-scanner.ts';

export { UploadBodyError, type JsonUploadFields } from './upload-json-scanner.ts';

/**
 * The bytes of `file_data`, decoded, while `fields` fills with the other fields. A piece is valid
 * until the next is asked for (the decoder writes the next into the same memory): use it or copy
 * it first, as the blob store's stage does. Throws
 * UploadBodyError for a body that is not a JSON object of strings, for bad base64, and past
 * `maxBodyBytes` of body.
 */
export async function* fileDataOf(body: Readable, fields: JsonUploadFields, maxBodyBytes: number): AsyncGenerator<Buffer> {
  // Not destroyed on the way out: the request must stay open for the answer.
  const chunks = limited(body.iterator({ destroyOnReturn: false }) as AsyncIterator<Buffer>, maxBodyBytes);
  const scanner = new FlatUploadScanner(fields);
  try {
    let step: ScanStep;
    try {
      for (;;) {
        const next = await chunks.next();
        step = next.done ? scanner.end() : scanner.push(next.value);
        // Each piece as it is: joining them would copy a network chunk's worth of bytes again.
        for (const bytes of step.decoded) yield bytes;
        if (step.handoff || next.done) break;
      }
    } catch (error) {
      throw error instanceof UploadBodyError ? error : malformed();
    }
    if (step.handoff) yield* tokenizedFileData(resumed(step.handoff, chunks), fields);
  } finally {
    void chunks.return(undefined).catch(() => undefined);
  }
}

/**
 * The general parser: `file_data` and the fields from stream-json's tokens. `source` starts with
 * whatever puts it where the scanner stopped, so `fields` may already hold what came before.
 */
export async function* tokenizedFileData(source: AsyncIterable<Buffer>, fields: JsonUploadFields): AsyncGenerator<Buffer> {
  // Keys and numbers stream too: a 500 MiB key or number must not be held whole.
  const tokens = parser.asStream({ packValues: false, streamValues: true });
  const input = Readable.from(source, { objectMode: false });
  input.on('error', (error) => tokens.destroy(error));
  input.pipe(tokens);

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
    throw error instanceof UploadBodyError ? error : malformed();
  } finally {
    input.unpipe(tokens);
    input.destroy();
  }
  if (!opened) throw malformed();
}

/** The body's chunks, refused with 413 past `maxBodyBytes`. */
async function* limited(chunks: AsyncIterator<Buffer>, maxBodyBytes: number): AsyncGenerator<Buffer, undefined> {
  let received = 0;
  try {
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
      received += next.value.length;
      if (received > maxBodyBytes) throw new UploadBodyError(413, `The body is larger than the limit of ${maxBodyBytes} bytes`);
      yield next.value;
    }
  } finally {
    await chunks.return?.();
  }
  return undefined;
}

/** The scanner's handoff, then the rest of the body. */
async function* resumed(handoff: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  if (handoff.length > 0) yield handoff;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
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
