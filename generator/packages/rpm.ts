// An .rpm's header fields, read when the release is added, and kept in the release file, so a
// build renders yum's repodata without opening any package. Read by hand: npm has no maintained
// reader of rpm headers, and the format (a lead, then two headers of tagged entries) is small.
import { open, type FileHandle } from 'node:fs/promises';
import { z } from 'zod';

/** A provides/requires/conflicts/obsoletes entry as `rpm -q --requires` prints it: `name`, or `name OP [epoch:]version[-release]`. */
const dependency = z.string().regex(/^\S+( (<|<=|=|>=|>) \S+)?$/, 'must be `name` or `name OP version` with OP one of < <= = >= >');

const changelogEntry = z.strictObject({
  author: z.string(),
  /** Seconds since the epoch. */
  date: z.number().int(),
  text: z.string(),
});

const seconds = z.number().int().nonnegative();
const list = <T extends z.ZodType>(item: T) => z.array(item).default([]);

/** Empty fields and lists are left out of the release file. */
export const rpmMetadata = z.strictObject({
  name: z.string().min(1),
  epoch: z.number().int().nonnegative().default(0),
  version: z.string().min(1),
  release: z.string().min(1),
  arch: z.string().min(1),
  summary: z.string().default(''),
  description: z.string().default(''),
  url: z.string().default(''),
  license: z.string().default(''),
  vendor: z.string().default(''),
  group: z.string().default(''),
  buildhost: z.string().default(''),
  sourcerpm: z.string().default(''),
  packager: z.string().default(''),
  buildtime: seconds,
  /** Where the main header sits in the file: yum's `rpm:header-range`. */
  header_range: z.strictObject({ start: seconds, end: seconds }),
  installed_size: seconds,
  archive_size: seconds,
  provides: list(dependency),
  requires: list(dependency),
  /** `Requires(pre)` and `Requires(post)`: needed before the package's scripts run (yum's `pre="1"`). */
  requires_pre: list(dependency),
  conflicts: list(dependency),
  obsoletes: list(dependency),
  /** Every path the package owns, by kind; filelists.xml lists them all, primary.xml a few. */
  files: list(z.string()),
  dirs: list(z.string()),
  ghosts: list(z.string()),
  /** Newest first, at most CHANGELOG_LIMIT. */
  changelog: list(changelogEntry),
});
export type RpmMetadata = z.output<typeof rpmMetadata>;
export type RpmMetadataInput = z.input<typeof rpmMetadata>;

/** Release files stay small: other.xml carries the newest entries only, as createrepo's `--changelog-limit` does. */
export const CHANGELOG_LIMIT = 10;

export async function readRpmMetadata(file: string): Promise<RpmMetadataInput> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, 'r');
    return compact(await readHeaders(handle));
  } catch (error) {
    if (error instanceof RpmFormatError) throw new Error(`${file}: not a readable binary .rpm: ${error.message}`);
    throw error;
  } finally {
    await handle?.close();
  }
}

class RpmFormatError extends Error {}

const LEAD_SIZE = 96;
const LEAD_MAGIC = 0xedabeedb;
const HEADER_MAGIC = 0x8eade801;
const INTRO_SIZE = 16;
const ENTRY_SIZE = 16;
// rpm's own limits on a header (hdrchkTags, HEADER_DATA_MAX): a larger claim is a broken file.
const MAX_ENTRIES = 0xffff;
const MAX_DATA = 0x0fffffff;

const TYPE = { int8: 2, int16: 3, int32: 4, int64: 5, string: 6, bin: 7, stringArray: 8, i18nString: 9 } as const;

const SIGTAG = { payloadSize: 1007, longArchiveSize: 271 } as const;
const TAG = {
  name: 1000, version: 1001, release: 1002, epoch: 1003, summary: 1004, description: 1005, buildTime: 1006, buildHost: 1007,
  size: 1009, vendor: 1011, license: 1014, packager: 1015, group: 1016, url: 1020, arch: 1022,
  oldFileNames: 1027, fileModes: 1030, fileFlags: 1037, sourceRpm: 1044, archiveSize: 1046,
  provideName: 1047, requireFlags: 1048, requireName: 1049, requireVersion: 1050,
  conflictFlags: 1053, conflictName: 1054, conflictVersion: 1055,
  changelogTime: 1080, changelogName: 1081, changelogText: 1082,
  obsoleteName: 1090, provideFlags: 1112, provideVersion: 1113, obsoleteFlags: 1114, obsoleteVersion: 1115,
  dirIndexes: 1116, baseNames: 1117, dirNames: 1118, longSize: 5009,
} as const;

const SENSE = { less: 1 << 1, greater: 1 << 2, equal: 1 << 3, prereq: 1 << 6, scriptPre: 1 << 9, scriptPost: 1 << 10, rpmlib: 1 << 24 } as const;
const FILE_GHOST = 1 << 6;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

async function readHeaders(handle: FileHandle): Promise<RpmMetadataInput> {
  const fileSize = (await handle.stat()).size;
  const lead = await readAt(handle, 0, LEAD_SIZE, 'the lead');
  if (lead.readUInt32BE(0) !== LEAD_MAGIC) throw new RpmFormatError('the file does not start with the rpm lead magic');
  if (lead.readUInt16BE(6) !== 0) throw new RpmFormatError('it is a source package; a yum repository serves binary packages');

  const signature = await readHeader(handle, LEAD_SIZE, fileSize, 'the signature header');
  // The signature header is padded to 8 bytes; the main header follows.
  const start = LEAD_SIZE + signature.size + ((8 - (signature.size % 8)) % 8);
  const main = await readHeader(handle, start, fileSize, 'the main header');

  const name = main.string(TAG.name);
  const version = main.string(TAG.version);
  const release = main.string(TAG.release);
  const arch = main.string(TAG.arch);
  if (!name || !version || !release || !arch) throw new RpmFormatError('the main header lacks its name, version, release or architecture');
  if (!main.has(TAG.sourceRpm)) throw new RpmFormatError('it names no source package, so it is a source package; a yum repository serves binary packages');

  return {
    name,
    epoch: main.number(TAG.epoch) ?? 0,
    version,
    release,
    arch,
    summary: main.string(TAG.summary) ?? '',
    description: main.string(TAG.description) ?? '',
    url: main.string(TAG.url) ?? '',
    license: main.string(TAG.license) ?? '',
    vendor: main.string(TAG.vendor) ?? '',
    group: main.string(TAG.group) ?? '',
    buildhost: main.string(TAG.buildHost) ?? '',
    sourcerpm: main.string(TAG.sourceRpm) ?? '',
    packager: main.string(TAG.packager) ?? '',
    buildtime: main.number(TAG.buildTime) ?? 0,
    header_range: { start, end: start + main.size },
    installed_size: main.number(TAG.longSize) ?? main.number(TAG.size) ?? 0,
    archive_size: signature.number(SIGTAG.longArchiveSize) ?? signature.number(SIGTAG.payloadSize) ?? main.number(TAG.archiveSize) ?? 0,
    provides: dependencies(main, TAG.provideName, TAG.provideFlags, TAG.provideVersion).map(({ text }) => text),
    ...requirements(main),
    conflicts: dependencies(main, TAG.conflictName, TAG.conflictFlags, TAG.conflictVersion).map(({ text }) => text),
    obsoletes: dependencies(main, TAG.obsoleteName, TAG.obsoleteFlags, TAG.obsoleteVersion).map(({ text }) => text),
    ...fileList(main),
    changelog: changelog(main),
  };
}

interface Header {
  /** Bytes from the header's magic to the end of its data. */
  size: number;
  has(tag: number): boolean;
  string(tag: number): string | undefined;
  strings(tag: number): string[];
  number(tag: number): number | undefined;
  numbers(tag: number): number[];
}

async function readHeader(handle: FileHandle, offset: number, fileSize: number, what: string): Promise<Header> {
  const intro = await readAt(handle, offset, INTRO_SIZE, what);
  if (intro.readUInt32BE(0) !== HEADER_MAGIC) throw new RpmFormatError(`${what} at byte ${offset} has no header magic`);
  const count = intro.readUInt32BE(8);
  const dataSize = intro.readUInt32BE(12);
  if (count === 0 || count > MAX_ENTRIES || dataSize > MAX_DATA) throw new RpmFormatError(`${what} claims ${count} entries and ${dataSize} bytes of data`);
  // Checked before reading, so a broken size never makes a large buffer.
  if (offset + INTRO_SIZE + count * ENTRY_SIZE + dataSize > fileSize) throw new RpmFormatError(`the file ends inside ${what}`);
  const index = await readAt(handle, offset + INTRO_SIZE, count * ENTRY_SIZE, what);
  const data = await readAt(handle, offset + INTRO_SIZE + count * ENTRY_SIZE, dataSize, what);

  const entries = new Map<number, { type: number; offset: number; count: number }>();
  for (let i = 0; i < count; i++) {
    const at = i * ENTRY_SIZE;
    const entry = { type: index.readUInt32BE(at + 4), offset: index.readUInt32BE(at + 8), count: index.readUInt32BE(at + 12) };
    if (entry.offset > dataSize) throw new RpmFormatError(`${what}: tag ${index.readUInt32BE(at)} points past the header's data`);
    entries.set(index.readUInt32BE(at), entry);
  }

  const strings = (tag: number): string[] => {
    const entry = entries.get(tag);
    if (!entry) return [];
    if (entry.type !== TYPE.string && entry.type !== TYPE.stringArray && entry.type !== TYPE.i18nString) throw new RpmFormatError(`${what}: tag ${tag} is not a string`);
    const values: string[] = [];
    let at = entry.offset;
    for (let i = 0; i < (entry.type === TYPE.string ? 1 : entry.count); i++) {
      const end = data.indexOf(0, at);
      if (end < 0) throw new RpmFormatError(`${what}: tag ${tag} runs past the header's data`);
      values.push(data.toString('utf8', at, end));
      at = end + 1;
    }
    return values;
  };
  const numbers = (tag: number): number[] => {
    const entry = entries.get(tag);
    if (!entry) return [];
    const width = { [TYPE.int8]: 1, [TYPE.int16]: 2, [TYPE.int32]: 4, [TYPE.int64]: 8 }[entry.type];
    if (width === undefined) throw new RpmFormatError(`${what}: tag ${tag} is not a number`);
    if (entry.offset + entry.count * width > dataSize) throw new RpmFormatError(`${what}: tag ${tag} runs past the header's data`);
    return Array.from({ length: entry.count }, (_, i) => {
      const at = entry.offset + i * width;
      if (width === 1) return data.readUInt8(at);
      if (width === 2) return data.readUInt16BE(at);
      if (width === 4) return data.readUInt32BE(at);
      return Number(data.readBigUInt64BE(at));
    });
  };
  return {
    size: INTRO_SIZE + count * ENTRY_SIZE + dataSize,
    has: (tag) => entries.has(tag),
    // An i18n string's first value is the untranslated one.
    string: (tag) => strings(tag)[0],
    strings,
    number: (tag) => numbers(tag)[0],
    numbers,
  };
}

async function readAt(handle: FileHandle, offset: number, length: number, what: string): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await handle.read(buffer, 0, length, offset);
  if (bytesRead < length) throw new RpmFormatError(`the file ends inside ${what}`);
  return buffer;
}

function dependencies(header: Header, nameTag: number, flagsTag: number, versionTag: number): { text: string; sense: number }[] {
  const names = header.strings(nameTag);
  const flags = header.numbers(flagsTag);
  const versions = header.strings(versionTag);
  // rpmbuild lists a dependency once per reason (`Requires: /bin/sh` and a script's interpreter); repodata once.
  const seen = new Map<string, { text: string; sense: number }>();
  names.forEach((name, i) => {
    const sense = flags[i] ?? 0;
    const operator = comparison(sense);
    const text = operator && versions[i] ? `${name} ${operator} ${versions[i]}` : name;
    seen.set(text, { text, sense: (seen.get(text)?.sense ?? 0) | sense });
  });
  return [...seen.values()];
}

function requirements(header: Header): { requires: string[]; requires_pre: string[] } {
  // rpmlib() features are the installer's business, not the repository's.
  const entries = dependencies(header, TAG.requireName, TAG.requireFlags, TAG.requireVersion).filter(({ text, sense }) => !(sense & SENSE.rpmlib) && !text.startsWith('rpmlib('));
  const isPre = (sense: number) => (sense & (SENSE.prereq | SENSE.scriptPre | SENSE.scriptPost)) !== 0;
  return {
    requires: entries.filter(({ sense }) => !isPre(sense)).map(({ text }) => text),
    requires_pre: entries.filter(({ sense }) => isPre(sense)).map(({ text }) => text),
  };
}

function comparison(sense: number): string | undefined {
  const equal = sense & SENSE.equal ? '=' : '';
  if (sense & SENSE.less) return `<${equal}`;
  if (sense & SENSE.greater) return `>${equal}`;
  return equal || undefined;
}

function fileList(header: Header): { files: string[]; dirs: string[]; ghosts: string[] } {
  const baseNames = header.strings(TAG.baseNames);
  const dirNames = header.strings(TAG.dirNames);
  const dirIndexes = header.numbers(TAG.dirIndexes);
  const paths = baseNames.length > 0 ? baseNames.map((base, i) => `${dirNames[dirIndexes[i]!] ?? ''}${base}`) : header.strings(TAG.oldFileNames);
  const modes = header.numbers(TAG.fileModes);
  const flags = header.numbers(TAG.fileFlags);
  const result = { files: [] as string[], dirs: [] as string[], ghosts: [] as string[] };
  paths.forEach((path, i) => {
    if ((flags[i] ?? 0) & FILE_GHOST) result.ghosts.push(path);
    else if (((modes[i] ?? 0) & S_IFMT) === S_IFDIR) result.dirs.push(path);
    else result.files.push(path);
  });
  return result;
}

function changelog(header: Header): { author: string; date: number; text: string }[] {
  const times = header.numbers(TAG.changelogTime);
  const names = header.strings(TAG.changelogName);
  const texts = header.strings(TAG.changelogText);
  return times.slice(0, CHANGELOG_LIMIT).map((date, i) => ({ author: names[i] ?? '', date, text: texts[i] ?? '' }));
}

/** Drops empty strings and lists and a zero epoch, which the schema fills back in, so release files stay short. */
function compact(metadata: RpmMetadataInput): RpmMetadataInput {
  const isEmpty = (value: unknown) => value === '' || (Array.isArray(value) && value.length === 0);
  const entries = Object.entries(metadata).filter(([key, value]) => !isEmpty(value) && !(key === 'epoch' && value === 0));
  return Object.fromEntries(entries) as RpmMetadataInput;
}
