// The soak's requests to the replicas, each of one kind, sorted by what explains a failure: a kill
// of its replica while it was in flight, a replica that was down when it was sent, a full disk (a
// 500 that names the cause, while the disk was full), or nothing, which makes it a failure.
import type { Replica } from './cluster.ts';

export const KINDS = ['upload', 'read', 'publish', 'heartbeat'] as const;
export type Kind = (typeof KINDS)[number];

export interface Answer {
  status: number;
  body: Buffer;
}

export interface Sent {
  kind: Kind;
  replica: Replica;
  generation: number;
  started: number;
  /** Set when its replica was killed while it was in flight: its failure is the fault's, not a bug. */
  cutByKill?: boolean;
}

export interface Tally {
  cutByKill: number;
  refusedWhileDown: number;
  refusedDiskFull: number;
  /** No answer at all (the connection failed) while the disk was full: the client never learns why. */
  unansweredDiskFull: number;
  serverErrors: number;
  otherFailures: number;
}

/** When the blob store's disk was being filled (`from`), full (`full`) and freed again (`to`); performance.now() times. */
export interface DiskFullWindow {
  from: number;
  full?: number;
  to?: number;
}

export interface SendOptions {
  /** Whether a 5xx is the refusal a full disk should cause; one that is not is a failure even while the disk is full. */
  outOfSpace?: (answer: Answer) => boolean;
}

export interface Traffic {
  inFlight: Set<Sent>;
  tally: Record<Kind, Tally>;
  failures: string[];
  diskFull: DiskFullWindow[];
  /** Runs one request to `target`; undefined when it got no answer, or a 5xx explained by a fault. */
  send(kind: Kind, target: Replica, label: string, request: () => Promise<Answer>, options?: SendOptions): Promise<Answer | undefined>;
  /** A failure the caller found in an answer (a 4xx, a wrong body). */
  fail(kind: Kind, message: string): void;
  /** Resolves once no request sent before `time` is in flight. */
  settled(time: number): Promise<void>;
}

export function traffic(): Traffic {
  const inFlight = new Set<Sent>();
  const tally = Object.fromEntries(KINDS.map((kind) => [kind, { cutByKill: 0, refusedWhileDown: 0, refusedDiskFull: 0, unansweredDiskFull: 0, serverErrors: 0, otherFailures: 0 }])) as Record<Kind, Tally>;
  const failures: string[] = [];
  const diskFull: DiskFullWindow[] = [];
  const overlapsDiskFull = (started: number, answered: number) => diskFull.some((window) => window.from <= answered && (window.to === undefined || window.to >= started));
  const whileFull = (sent: Sent) => (overlapsDiskFull(sent.started, performance.now()) ? ' (while the disk was full)' : '');

  return {
    inFlight,
    tally,
    failures,
    diskFull,
    async send(kind, target, label, request, options = {}) {
      const sent: Sent = { kind, replica: target, generation: target.generation, started: performance.now() };
      inFlight.add(sent);
      try {
        const answer = await request();
        if (answer.status < 500) return answer;
        if (sent.cutByKill) tally[kind].cutByKill++;
        else if (overlapsDiskFull(sent.started, performance.now()) && options.outOfSpace?.(answer)) tally[kind].refusedDiskFull++;
        else {
          tally[kind].serverErrors++;
          failures.push(`${target.name} ${label}: ${answer.status} ${answer.body.toString().slice(0, 200)}${whileFull(sent)}`);
        }
        return undefined;
      } catch (error) {
        if (sent.cutByKill) tally[kind].cutByKill++;
        else if (!target.alive || target.generation !== sent.generation) tally[kind].refusedWhileDown++;
        else if (overlapsDiskFull(sent.started, performance.now())) {
          tally[kind].unansweredDiskFull++;
          failures.push(`${target.name} ${label}: no answer while the disk was full: ${String((error as Error).cause ?? (error as Error).message)}`);
        } else {
          tally[kind].otherFailures++;
          failures.push(`${target.name} ${label}: ${String((error as Error).cause ?? (error as Error).message)}`);
        }
        return undefined;
      } finally {
        inFlight.delete(sent);
      }
    },
    fail(kind, message) {
      tally[kind].otherFailures++;
      failures.push(message);
    },
    async settled(time) {
      while ([...inFlight].some((sent) => sent.started < time)) await new Promise((resolve) => setTimeout(resolve, 20));
    },
  };
}

/** fetch, its body read to the end. */
export async function fetchAnswer(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init);
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
}

/** The answer's body as JSON, or undefined when it is not JSON. */
export function jsonOf(answer: Answer): unknown {
  try {
    return JSON.parse(answer.body.toString());
  } catch {
    return undefined;
  }
}
