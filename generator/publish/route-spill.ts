// The route table of a build that keeps nothing for the next one, written out as it renders
// instead of held: at 100,000 releases its 810,000 paths take about 200 MB as objects, which a
// one-off build would otherwise hold until it is published. Each unit's paths go, as it renders,
// into a spill file in the new build folder: a line a path, its member of the table's JSON after
// the hash that picks its shard, and a blank line after each unit. routes.json, the shards (whose
// number depends on how many paths there are) and the CloudFront check read the spill back, a
// piece, a batch of shards or a unit at a time: the same bytes as routeTablePieces and
// routeShardsOnce give for the same parts. The spill is not decoded a line at a time for them (at
// 100,000 releases, five passes over a million lines): routes.json 64 KiB at a time, and each
// pass for the shards only the lines of its batch, picked by the hash's bytes. The spill knows which
// paths came from units rendered again (`add`) rather than given back by a render memo (`addLines`):
// with what the memo knew of the served build, only the shards those fall in are made again.
import { closeSync, openSync, rmSync } from 'node:fs';
import type { PathTarget, RouteRules } from '../render/route-table.ts';
import { fileLines } from '../stores/lines.ts';
import { APPEND_PIECE, IN_PLACE, openFileWriter, textAppender, type FileWriter } from './file-writer.ts';
import { BATCH_SHARDS, MAX_SHARDS, member, pathHash, routeTableEnds, shardCount, shardFiles, shardName, type PreviousShards } from './route-shards.ts';

export interface RouteSpill {
  /** Writes a unit's paths; throws on a path an earlier part has (`Two routes for …`). Synchronous: render calls it. */
  add(part: Record<string, PathTarget>): void;
  /** The same for a part given as its spill lines (`spillLine`), as a render memo keeps them: written as they are. */
  addLines(lines: readonly string[]): void;
  /** How many paths the parts added have. */
  count(): number;
  /** The parts added, read back one at a time, each a new object. */
  parts(): Generator<Record<string, PathTarget>>;
  /** routes.json's text in pieces of at most APPEND_PIECE characters, read back from the spill. */
  table(rules: RouteRules): Generator<string>;
  /**
   * Each shard file's name and text, the index first, made `batchShards` at a time (a pass over the
   * spill each). With `previous`, a shard that holds what it held in that build comes without its
   * text: none of its paths came from `add` (a unit rendered again), nor were any of `previous.replaced`.
   */
  shards(rules: RouteRules, batchShards?: number, previous?: PreviousShards): Generator<[name: string, body: string | undefined]>;
  /** Removes the spill. */
  close(): void;
}

/**
 * A spill in `file`, created at the first part. `hash` is the 64-bit hash that tells paths apart
 * before the spill is searched (a test passes one under which all paths collide). `writer` writes
 * it (a build's, whose thread takes the writes once it has one); in place by default.
 */
export function openRouteSpill(file: string, { hash = hash64, writer = openFileWriter(IN_PLACE) }: { hash?: (path: string) => [number, number]; writer?: FileWriter } = {}): RouteSpill {
  let fd: number | undefined;
  let count = 0;
  const seen = new PathSet(hash);
  /** The shards (`pathHash % MAX_SHARDS`) of the paths given by `add`: rendered, not given back by a memo. */
  const touched = new Set<number>();
  const out = textAppender(writer, () => (fd ??= openSync(file, 'w')));
  const write = (text: string) => out.add(text);
  const claim = (path: string) => {
    // A hash seen before: a path added before, unless two paths' hashes collide, which the spill tells apart.
    if (!seen.add(path) && holdsPath(spilled(), path)) throw new Error(`Two routes for ${path}`);
    count++;
  };
  /** The spill's lines, each a path's hash (8 hex digits) and member, a blank line ending a part: views into one buffer, each valid until the next is read. */
  const spilledBytes = (): Iterable<Buffer> => {
    out.flush();
    writer.drain();
    return fd === undefined ? [] : byteLines(file);
  };
  /**
   * The same lines as text, each decoded on its own: a line split from a larger text would keep
   * all of that text alive for as long as the line is kept.
   */
  function* spilled(): Generator<string> {
    for (const bytes of spilledBytes()) yield bytes.toString('utf8');
  }
  return {
    add(part) {
      let any = false;
      for (const path in part) {
        claim(path);
        const line = spillLine(path, part[path]!);
        touched.add(hashOfLine(line) & (MAX_SHARDS - 1));
        write(`${line}\n`);
        any = true;
      }
      if (any) write('\n');
    },
    addLines(lines) {
      for (const line of lines) {
        claim(pathOfLine(line));
        write(`${line}\n`);
      }
      if (lines.length > 0) write('\n');
    },
    count: () => count,
    *parts() {
      let part: string[] = [];
      for (const line of spilled()) {
        if (line !== '') {
          part.push(line.slice(8));
          continue;
        }
        yield JSON.parse(`{${part.join(',')}}`) as Record<string, PathTarget>;
        part = [];
      }
    },
    *table(rules) {
      const [head, tail] = routeTableEnds(rules);
      yield head;
      // Members a piece (APPEND_PIECE bytes), decoded at once, so the writer is called thousands of times, not once a path.
      let piece = Buffer.allocUnsafe(APPEND_PIECE);
      let size = 0;
      let first = true;
      for (const line of spilledBytes()) {
        if (line.length === 0) continue;
        if (size + line.length - 7 > piece.length) {
          if (size > 0) yield piece.toString('utf8', 0, size);
          if (line.length - 7 > piece.length) piece = Buffer.allocUnsafe(line.length - 7);
          size = 0;
        }
        if (!first) piece[size++] = COMMA;
        first = false;
        size += line.copy(piece, size, 8);
      }
      if (size > 0) yield piece.toString('utf8', 0, size);
      yield tail;
    },
    shards(rules, batchShards = BATCH_SHARDS, previous) {
      const shards = shardCount(count);
      let made: ((n: number) => boolean) | undefined;
      if (previous?.count === shards) {
        const changed = new Uint8Array(shards);
        for (const low of [...touched, ...previous.replaced]) changed[low & (shards - 1)] = 1;
        made = (n) => changed[n] === 1 || previous.hashes[shardName(n)] === undefined;
      }
      return shardFiles(
        rules,
        shards,
        batchShards,
        (batch) => {
          for (const line of spilledBytes()) {
            if (line.length === 0) continue;
            // Decoded on its own, as `spilled` does, and only the lines of this batch.
            batch[hashOfLine(line) & (shards - 1)]?.push(line.toString('utf8', 8));
          }
        },
        made,
      );
    },
    close() {
      if (fd !== undefined) {
        try {
          writer.drain();
        } finally {
          closeSync(fd);
        }
      }
      fd = undefined;
      rmSync(file, { force: true });
    },
  };
}

/** A path's line in the spill: the hash that picks its shard (8 hex digits), then its member of the table's JSON. */
export function spillLine(path: string, target: PathTarget): string {
  return `${pathHash(path).toString(16).padStart(8, '0')}${member(path, target)}`;
}

/** The shard-picking hash a spill line starts with (8 lowercase hex digits), read from its bytes or text. */
export function hashOfLine(line: Buffer | string): number {
  let hash = 0;
  for (let i = 0; i < 8; i++) {
    const digit = typeof line === 'string' ? line.charCodeAt(i) : line[i]!;
    hash = hash * 16 + (digit <= 0x39 ? digit - 0x30 : digit - 0x57);
  }
  return hash;
}

const COMMA = 0x2c;

/** The path a spill line is the member of: the JSON string after the hash, up to its closing quote. */
function pathOfLine(line: string): string {
  let end = 9;
  let escaped = false;
  for (; end < line.length; end++) {
    const ch = line.charCodeAt(end);
    if (ch === 0x22) break;
    // A backslash escapes the character after it.
    if (ch === 0x5c) {
      escaped = true;
      end++;
    }
  }
  if (line.charCodeAt(8) !== 0x22 || end >= line.length) throw new Error(`Not a route spill line: ${line.slice(0, 80)}`);
  return escaped ? (JSON.parse(line.slice(8, end + 1)) as string) : line.slice(9, end);
}

/** The spill's lines as views into one buffer, each valid until the next is read. */
function* byteLines(file: string): Generator<Buffer> {
  const fd = openSync(file, 'r');
  try {
    for (const { bytes } of fileLines(fd)) yield bytes;
  } finally {
    closeSync(fd);
  }
}

/** Whether a line of the spill is the member of `path`: its JSON string and a colon start the member of that path alone. */
function holdsPath(spilled: Iterable<string>, path: string): boolean {
  const start = `${JSON.stringify(path)}:`;
  for (const line of spilled) if (line.startsWith(start, 8)) return true;
  return false;
}

/**
 * The paths seen, as 64-bit hashes in an open-addressed table: 16 to 32 bytes a path instead of the
 * path itself. `add` is false when the hash was seen, which the spill then checks against the
 * paths it wrote, so two paths whose hashes collide are not taken for one.
 */
class PathSet {
  private slots = new Uint32Array(2 * 1024);
  private size = 0;

  constructor(private readonly hash: (path: string) => [number, number]) {}

  add(path: string): boolean {
    const [a, b] = this.hash(path);
    if (this.size * 2 >= this.slots.length / 2) this.grow();
    const inserted = this.insert(a, b);
    if (inserted) this.size++;
    return inserted;
  }

  private insert(a: number, b: number): boolean {
    const mask = this.slots.length / 2 - 1;
    // 0:0 marks an empty slot; a hash that is 0:0 is stored as 0:1.
    if (a === 0 && b === 0) b = 1;
    for (let i = a & mask; ; i = (i + 1) & mask) {
      const x = this.slots[2 * i]!;
      const y = this.slots[2 * i + 1]!;
      if (x === 0 && y === 0) {
        this.slots[2 * i] = a;
        this.slots[2 * i + 1] = b;
        return true;
      }
      if (x === a && y === b) return false;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) if (old[i] !== 0 || old[i + 1] !== 0) this.insert(old[i]!, old[i + 1]!);
  }
}

/** Two 32-bit hashes of a string (cyrb53's mixing, kept to 64 bits). */
function hash64(text: string): [number, number] {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, h2 >>> 0];
}
