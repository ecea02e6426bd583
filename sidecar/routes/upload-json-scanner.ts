// The JSON upload body's usual shape, scanned by hand: a flat object of plain ASCII keys and
// strings, with `file_data` decoded from base64 in runs as long as the network's chunks. Anything
// else (escapes outside `file_data`, numbers, literals, nesting, a byte-order mark, an overlong key
// or value, a repeated `file_data`) goes to the general parser, which is handed the member being
// read again, so it answers exactly as before.
// By hand because the general parser (stream-json) cuts strings into 256-character tokens: 20 MB/s
// end to end, where one Buffer.from per chunk runs at memory speed.

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

/** What one chunk gave: decoded file bytes, and the bytes the general parser must take over from. */
export interface ScanStep {
  decoded: Buffer[];
  /** The body from the last member boundary on, behind a prefix that puts the general parser in the same place. */
  handoff?: Buffer;
}

export const FIELDS = ['version', 'platform', 'architecture', 'filename', 'checksum'];
export const MAX_FIELD_LENGTH = 1024;
/** Bytes of one member held for a handoff; past this the general parser takes over. */
const MAX_HELD = 16 * 1024;

type Boundary = 'start' | 'first' | 'key' | 'next' | 'done';
type State = Boundary | 'inKey' | 'colon' | 'value' | 'inString' | 'file';

/** For each boundary, the text that leaves the general parser where the scanner was. */
const RESUME: Record<Boundary, Buffer> = {
  start: Buffer.alloc(0),
  first: Buffer.from('{'),
  key: Buffer.from('{"":null,'),
  next: Buffer.from('{"":null'),
  done: Buffer.from('{}'),
};

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const EQUALS = 0x3d;
const MINUS = 0x2d;
const UNDERSCORE = 0x5f;
/** The decoder's reused memory: a network chunk's worth of decoded bytes, more when a chunk is larger. */
const SCRATCH_BYTES = 128 * 1024;
const BASE64 = /^[A-Za-z0-9+/]*$/;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

export class FlatUploadScanner {
  private state: State = 'start';
  private boundary: Boundary = 'start';
  /** Bytes since the boundary, from earlier chunks. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private key = '';
  private text = '';
  private file: FileDataDecoder | undefined;

  constructor(private readonly fields: JsonUploadFields) {}

  push(chunk: Buffer): ScanStep {
    const decoded: Buffer[] = [];
    let from = 0;
    const resume = (at: number) => {
      this.boundary = this.state as Boundary;
      this.held = [];
      this.heldBytes = 0;
      from = at;
    };
    const handoff = (): ScanStep => ({ decoded, handoff: Buffer.concat([RESUME[this.boundary], ...this.held, chunk.subarray(from)]) });
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'file') {
        const after = this.file!.decode(chunk, i, decoded);
        if (after < 0) return { decoded };
        this.state = 'next';
        resume(after);
        i = after;
        continue;
      }
      const byte = chunk[i]!;
      i++;
      if (isSpace(byte) && this.state !== 'inKey' && this.state !== 'inString') continue;
      switch (this.state) {
        case 'start':
          if (byte !== 0x7b) return handoff();
          this.state = 'first';
          resume(i);
          break;
        case 'first':
        case 'key':
          if (byte === 0x7d && this.state === 'first') {
            this.state = 'done';
            resume(i);
          } else if (byte === QUOTE) {
            this.state = 'inKey';
            this.key = '';
          } else return handoff();
          break;
        case 'inKey':
          if (byte === QUOTE) this.state = 'colon';
          else if (isPlain(byte) && this.key.length < MAX_FIELD_LENGTH) this.key += String.fromCharCode(byte);
          else return handoff();
          break;
        case 'colon':
          if (byte !== 0x3a) return handoff();
          this.state = 'value';
          break;
        case 'value':
          if (byte !== QUOTE) return handoff();
          if (this.key !== 'file_data') {
            this.state = 'inString';
            this.text = '';
          } else if (this.fields.fileData) {
            return handoff();
          } else {
            // From here the member cannot be handed over: its bytes are already on their way.
            this.fields.fileData = true;
            this.file = new FileDataDecoder();
            this.state = 'file';
          }
          break;
        case 'inString':
          if (byte === QUOTE) {
            if (FIELDS.includes(this.key)) this.fields.values[this.key] = this.text;
            this.state = 'next';
            resume(i);
          } else if (isPlain(byte) && this.text.length < MAX_FIELD_LENGTH) this.text += String.fromCharCode(byte);
          else return handoff();
          break;
        case 'next':
          if (byte === 0x2c) this.state = 'key';
          else if (byte === 0x7d) this.state = 'done';
          else return handoff();
          resume(i);
          break;
        case 'done':
          return handoff();
      }
    }
    if (this.state !== 'file' && from < chunk.length) {
      // A copy: a few bytes must not keep a whole network chunk alive.
      this.held.push(Buffer.from(chunk.subarray(from)));
      this.heldBytes += chunk.length - from;
      if (this.heldBytes > MAX_HELD) return { decoded, handoff: Buffer.concat([RESUME[this.boundary], ...this.held]) };
    }
    return { decoded };
  }

  /** The body has ended: complete, or handed over so the general parser says what is missing. */
  end(): ScanStep {
    if (this.state === 'file') throw malformed();
    if (this.state === 'done') return { decoded: [] };
    return { decoded: [], handoff: Buffer.concat([RESUME[this.boundary], ...this.held]) };
  }
}

/**
 * `file_data`'s characters to bytes: runs between escapes decoded whole quads at a time, straight
 * from the chunk (quads() checks them on the way), the rest of a quad carried to the next run,
 * padding only at the end. The bytes of one chunk are written into memory the decoder reuses for
 * the next chunk, so an upload leaves no decoded garbage behind: what `decode` gives is valid until
 * it is called again.
 */
class FileDataDecoder {
  private scratch = Buffer.alloc(0);
  private used = 0;
  private carry = '';
  private padding = 0;
  /** An escape sequence cut off by the end of a chunk, backslash excluded. */
  private escape: string | undefined;

  /** Decodes from `from` up to the closing quote; the index after it, or -1 when the chunk ends first. */
  decode(chunk: Buffer, from: number, out: Buffer[]): number {
    this.used = 0;
    let p = from;
    let quote = chunk.indexOf(QUOTE, p);
    let backslash = chunk.indexOf(BACKSLASH, p);
    let equals = chunk.indexOf(EQUALS, p);
    while (p < chunk.length) {
      if (this.escape !== undefined) {
        p = this.continueEscape(chunk, p, out);
        continue;
      }
      // Positions found once per chunk and searched again only when passed, so escapes cost no rescans.
      if (quote >= 0 && quote < p) quote = chunk.indexOf(QUOTE, p);
      if (backslash >= 0 && backslash < p) backslash = chunk.indexOf(BACKSLASH, p);
      if (equals >= 0 && equals < p) equals = chunk.indexOf(EQUALS, p);
      const stop = Math.min(quote < 0 ? chunk.length : quote, backslash < 0 ? chunk.length : backslash);
      if (this.padding === 0) {
        const bulkEnd = equals >= 0 && equals < stop ? equals : stop;
        if (bulkEnd > p) this.bulk(chunk, p, bulkEnd, out);
        p = bulkEnd;
        if (p === equals) {
          this.padding = 1;
          p++;
          continue;
        }
      } else {
        for (; p < stop; p++) this.padded(chunk[p]!);
      }
      if (p === chunk.length) break;
      if (chunk[p] === QUOTE) {
        this.finish(out);
        return p + 1;
      }
      this.escape = '';
      p++;
    }
    return -1;
  }

  /** Plain base64 characters `chunk[from, to)`: the carried quad completed, then whole quads decoded straight from the chunk. */
  private bulk(chunk: Buffer, from: number, to: number, out: Buffer[]): void {
    let p = from;
    if (this.carry.length > 0) {
      const take = Math.min(4 - this.carry.length, to - p);
      this.carry += chunk.toString('latin1', p, p + take);
      p += take;
      if (this.carry.length < 4) return;
      out.push(this.quads(this.carry));
      this.carry = '';
    }
    const whole = p + ((to - p) & ~3);
    if (whole > p) out.push(this.quads(chunk.toString('latin1', p, whole), chunk, p, whole));
    if (whole < to) this.carry = chunk.toString('latin1', whole, to);
  }

  /** A character after the first `=`: only `=` may follow, twice at most. */
  private padded(code: number): void {
    if (code !== EQUALS) throw notBase64(String.fromCharCode(code));
    if (++this.padding > 2) throw invalid();
  }

  private continueEscape(chunk: Buffer, from: number, out: Buffer[]): number {
    let p = from;
    while (p < chunk.length) {
      this.escape += String.fromCharCode(chunk[p++]!);
      const sequence = this.escape!;
      if (sequence[0] === 'u' && sequence.length < 5) continue;
      this.escape = undefined;
      const char = sequence[0] === 'u' ? (/^u[0-9a-fA-F]{4}$/.test(sequence) ? String.fromCharCode(parseInt(sequence.slice(1), 16)) : undefined) : ESCAPES[sequence];
      if (char === undefined) throw malformed();
      this.escaped(char, out);
      break;
    }
    return p;
  }

  /** An escaped character counts like a plain one, except that a control character is valid JSON and only bad base64. */
  private escaped(char: string, out: Buffer[]): void {
    if (this.padding > 0 || char === '=') {
      this.padded(char === '=' ? EQUALS : 0x21);
      return;
    }
    if (!BASE64.test(char)) throw invalid();
    this.carry += char;
    if (this.carry.length === 4) {
      out.push(this.quads(this.carry));
      this.carry = '';
    }
  }

  /**
   * Whole quads of standard base64, decoded into the scratch memory. A write skips what is not
   * base64, so a short one means a character that is not; it also takes the URL-safe `-` and `_`,
   * looked for apart (in the chunk the text came from, when given, at memchr speed).
   */
  private quads(text: string, chunk?: Buffer, from = 0, to = 0): Buffer {
    const length = (text.length / 4) * 3;
    if (this.scratch.length - this.used < length) {
      // Views given out earlier keep the old memory alive until they are done with.
      this.scratch = Buffer.allocUnsafe(Math.max(length, SCRATCH_BYTES));
      this.used = 0;
    }
    const written = this.scratch.write(text, this.used, length, 'base64');
    const urlSafe = chunk ? hasByte(chunk, MINUS, from, to) || hasByte(chunk, UNDERSCORE, from, to) : /[-_]/.test(text);
    if (written !== length || urlSafe) throw notBase64(text);
    const bytes = this.scratch.subarray(this.used, this.used + length);
    this.used += length;
    return bytes;
  }

  private finish(out: Buffer[]): void {
    if (!BASE64.test(this.carry)) throw notBase64(this.carry);
    if ((this.carry.length + this.padding) % 4 !== 0) throw invalid();
    if (this.carry.length > 0) out.push(Buffer.from(this.carry, 'base64'));
  }
}

function hasByte(chunk: Buffer, byte: number, from: number, to: number): boolean {
  const at = chunk.indexOf(byte, from);
  return at >= 0 && at < to;
}

/** Plain in a key or value: printable ASCII without quote or backslash; anything else goes to the general parser. */
function isPlain(byte: number): boolean {
  return byte >= 0x20 && byte < 0x7f && byte !== QUOTE && byte !== BACKSLASH;
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** Why `text` is not base64: a raw control character is not JSON at all, anything else is bad base64. */
function notBase64(text: string): UploadBodyError {
  for (const char of text) {
    if (BASE64.test(char)) continue;
    return char.charCodeAt(0) < 0x20 ? malformed() : invalid();
  }
  return invalid();
}

export function invalid(): UploadBodyError {
  return new UploadBodyError(400, 'file_data is not valid base64');
}

export function malformed(): UploadBodyError {
  return new UploadBodyError(400, 'Malformed JSON body');
}
