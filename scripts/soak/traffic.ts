// The soak's requests to the replicas, each of one kind, sorted by what explains a failure: a kill
// of its replica while it was in flight, a replica that was down when it was sent, a full disk (a
// 500 that names the cause, while the disk was full), or nothing, which makes it a failure. S3
// answering errors explains nothing: uploads are acknowledged before the remote deploy begins, so
// a 5xx while S3 fails is a failure, and is counted apart as well to say so.
import type { Replica } from './cluster.ts';
import type { S3OutageWindow } from './s3-faults.ts';

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
  /** Those of the server errors whose request overlapped an S3 outage. */
  serverErrorsWhileS3Failed: number;
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
  /** When S3 answered errors: to count the 5xx during them apart, and to say so in failures. */
  s3Outages: S3OutageWindow[];
  /** Runs one request to `target`; undefined when it got no answer, or a 5xx explained by a fault. */
  send(kind: Kind, target: Replica, label: string, request: () => Promise<Answer>, options?: SendOptions): Promise<Answer | undefined>;
  /** A failure the caller found in an answer (a 4xx, a wrong body). */
  fail(kind: Kind, message: string): void;
  /** Resolves once no request sent before `time` is in flight. */
  settled(time: number): Promise<void>;
}

export function traffic(): Traffic {
  const inFlight = new Set<Sent>();
  const tally = Object.fromEntries(KINDS.map((kind) => [kind, { cutByKill: 0, refusedWhileDown: 0, refusedDiskFull: 0, unansweredDiskFull: 0, serverErrors: 0, serverErrorsWhileS3Failed: 0, otherFailures: 0 }])) as Record<Kind, Tally>;
  const failures: string[] = [];
  const diskFull: DiskFullWindow[] = [];
  const overlapsDiskFull = (started: number, answered: number) => diskFull.some((window) => window.from <= answered && (window.to === undefined || window.to >= started));
  const s3Outages: S3OutageWindow[] = [];
  const overlapsS3Outage = (started: number, answered: number) => s3Outages.some((window) => window.from <= answered && (window.to === undefined || window.to >= started));
  const during = (sent: Sent) =>
    [overlapsDiskFull(sent.started, performance.now()) ? ' (while the disk was full)' : '', overlapsS3Outage(sent.started, performance.now()) ? ' (while S3 answered errors)' : ''].join('');

  return {
    inFlight,
    tally,
    failures,
    diskFull,
    s3Outages,
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
          if (overlapsS3Outage(sent.started, performance.now())) tally[kind].serverErrorsWhileS3Failed++;
          failures.push(`${target.name} ${label}: ${answer.status} ${answer.body.toString().slice(0, 200)}${during(sent)}`);
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
          failures.push(`${target.name} ${label}: ${String((error as Error).cause ?? (error as Error).message)}${during(sent)}`);
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
