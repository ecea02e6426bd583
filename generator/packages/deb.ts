// A .deb's control fields, read from its control archive when the release is added, and kept in
// the release file, so a build renders apt's Packages without opening any package.
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { z } from 'zod';

/** Fields apt cannot list a package without. */
const REQUIRED_FIELDS = ['Package', 'Version', 'Architecture'];

export const debMetadata = z.strictObject({
  /**
   * The control paragraph's fields in file order (Package, Version, Architecture, ...). A
   * multi-line value keeps its continuation lines as written, leading space included, so
   * `Name: value` gives the field back.
   */
  control: z
    .record(z.string(), z.string())
    .refine((control) => REQUIRED_FIELDS.every((field) => control[field]), { message: `needs ${REQUIRED_FIELDS.map((field) => `\`${field}\``).join(', ')}` }),
});
export type DebMetadata = z.output<typeof debMetadata>;

export async function readDebMetadata(file: string): Promise<DebMetadata> {
  const handle = await open(file);
  try {
    const control = parseControl(await controlText(handle));
    const missing = REQUIRED_FIELDS.filter((field) => !control[field]);
    if (missing.length > 0) throw new Error(`the control file has no ${missing.map((field) => `\`${field}\``).join(', ')}`);
    return { control };
  } catch (error) {
    throw new Error(`${file}: not a readable .deb: ${(error as Error).message}`, { cause: error });
  } finally {
    await handle.close();
  }
}

/** The text of `./control` inside the package's control archive; the data archive after it is never read. */
async function controlText(deb: FileHandle): Promise<string> {
  const seen: string[] = [];
  for await (const member of arMembers(deb)) {
    seen.push(member.name);
    if (seen.length === 1) {
      const version = await member.read();
      if (member.name !== 'debian-binary' || !version.toString('latin1').startsWith('2.')) throw new Error('the first member is not `debian-binary` of format 2.x');
    } else if (member.name.startsWith('control.tar')) {
      const control = await fileInTar(await decompress(member.name, await member.read()), ['./control', 'control']);
      if (!control) throw new Error(`${member.name} has no \`control\` file`);
      return control.toString('utf8');
    }
  }
  throw new Error(`no control archive among the members ${seen.map((name) => `\`${name}\``).join(', ')}`);
}

async function decompress(member: string, data: Buffer): Promise<Buffer> {
  switch (member.slice('control.tar'.length)) {
    case '':
      return data;
    case '.gz':
      return gunzipSync(data);
    // The decoders load on first use: the loader imports this file for its schema alone.
    case '.xz':
      return (await import('@napi-rs/lzma')).xz.decompress(data);
    case '.zst':
      return Buffer.from((await import('fzstd')).decompress(data));
    default:
      throw new Error(`\`${member}\` is compressed in a way dpkg does not write (expected none, .gz, .xz or .zst)`);
  }
}

/**
 * The members of an `ar` archive, each read only when asked. Written by hand: the format is a
 * magic line and 60-byte headers, and the npm readers of it are unmaintained.
 */
async function* arMembers(file: FileHandle): AsyncGenerator<{ name: string; read(): Promise<Buffer> }> {
  const MAGIC = '!<arch>\n';
  const { size: total } = await file.stat();
  const readAt = async (position: number, length: number) => {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await file.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  };
  if ((await readAt(0, MAGIC.length)).toString('latin1') !== MAGIC) throw new Error('not an ar archive (no `!<arch>` header)');
  let offset = MAGIC.length;
  while (offset < total) {
    const header = (await readAt(offset, 60)).toString('latin1');
    if (header.length < 60) throw new Error(`the ar header at byte ${offset} is cut short`);
    if (header.slice(58, 60) !== '`\n') throw new Error(`the ar header at byte ${offset} is damaged`);
    const name = header.slice(0, 16).trimEnd().replace(/\/$/, '');
    const size = Number(header.slice(48, 58).trim());
    const start = offset + 60;
    if (!Number.isSafeInteger(size) || size < 0 || start + size > total) throw new Error(`the ar member \`${name}\` claims ${header.slice(48, 58).trim()} bytes, more than the file holds`);
    yield { name, read: () => readAt(start, size) };
    offset = start + size + (size % 2);
  }
}

async function fileInTar(tar: Buffer, names: string[]): Promise<Buffer | undefined> {
  const entries = extract();
  Readable.from([tar]).pipe(entries);
  let found: Buffer | undefined;
  for await (const entry of entries) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    if (found === undefined && entry.header.type === 'file' && names.includes(entry.header.name)) found = Buffer.concat(chunks);
  }
  return found;
}

/** One deb822 paragraph: `Name: value`, continuation lines start with a space or a tab. */
export function parseControl(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  let current: string | undefined;
  const lines = text.replace(/\n+$/, '').split('\n');
  lines.forEach((line, i) => {
    if (line === '') throw new Error(`the control file has more than one paragraph (blank line ${i + 1})`);
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (current === undefined) throw new Error(`line ${i + 1} continues no field: \`${line}\``);
      fields[current] += `\n${line}`;
      return;
    }
    const match = /^([!-9;-~][!-9;-~]*):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!match) throw new Error(`line ${i + 1} is not \`Name: value\`: \`${line}\``);
    const [, name, value] = match as unknown as [string, string, string];
    if (fields[name] !== undefined) throw new Error(`the field \`${name}\` appears twice`);
    fields[name] = value;
    current = name;
  });
  return fields;
}
