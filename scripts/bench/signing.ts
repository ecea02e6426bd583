// Signing rows: what signing adds to `mirror build` of the 10,000-release synthetic store. Full
// builds unsigned and signed by one key, cold (a fresh --out and no signature cache), interleaved:
// wall time and peak RSS (GNU time's %M, the kernel's ru_maxrss of the build process); rebuilds
// after adding one release, signed and unsigned: the signatures made and the wall time; and one
// detached signature by our node:crypto packet writer against openpgp.js's openpgp.sign, in process.
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import * as openpgp from 'openpgp';
import { PUBLIC_DIR, currentBuild } from '../../generator/publish/local-dir.ts';
import { keysDir, loadSigning } from '../../generator/trust/index.ts';
import { KEYRING_FILE, createKey, loadKeyring } from '../../generator/trust/keyring.ts';
import { filesOf, stepsOf, written } from './build.ts';
import { bestSeconds, fastest, seconds, timed, type Best, type Run } from './run.ts';
import { DEFAULT_SHAPE, PRODUCT, writeRelease, writeSyntheticStore } from './synthetic-store.ts';
import type { Row } from './table.ts';

const ATTEMPTS = 3;
const OVERHEAD_TARGET = 0.2;
const KEYS = 1;
/** Reads the child's peak RSS from the kernel when the build exits; without it the RSS cells say so. */
const GNU_TIME = '/usr/bin/time';
const SIGNATURES_PER_BATCH = 1_000;

export interface SigningBench {
  rows: Row[];
  /** The CLI's step timings and signing lines of the runs reported. */
  notes: string[];
}

interface Measured extends Run {
  /** Peak RSS in KiB, when GNU time measured it. */
  peakKiB: number | undefined;
  signing: SigningLine;
}

/** The CLI's signing line: `unsigned: …` or `signed by 1 key: N signatures made, M reused; snapshot version V …`. */
type SigningLine = { signed: false } | { signed: true; keys: number; made: number; reused: number; snapshot: 'new' | 'unchanged' };

export async function benchSigning(work: string, repo: string, progress: (line: string) => void): Promise<SigningBench> {
  const store = path.join(work, 'signing-store');
  progress('writing the synthetic store for the signing rows');
  const releases = await writeSyntheticStore(store);
  // Separate data directories: the unsigned build's holds no key, the signed build's exactly one.
  const unsignedData = path.join(work, 'signing-unsigned-data');
  const signedData = path.join(work, 'signing-signed-data');
  await createKey(keysDir(signedData), { name: 'Bench signing key' });
  const { cacheFile } = await loadSigning(signedData, {});
  const measureRss = existsSync(GNU_TIME);
  if (!measureRss) progress(`${GNU_TIME} not found (\`apt-get install -y time\`): the peak RSS cells say "not measured"`);

  const build = async (data: string, out: string): Promise<Measured> => {
    const rssFile = path.join(work, 'peak-rss.txt');
    const cli = ['dist/mirror.js', 'build', '--releases', store, '--out', out];
    const run = await timed(measureRss ? [GNU_TIME, '-f', '%M', '-o', rssFile, process.execPath, ...cli] : ['node', ...cli], repo, { MIRROR_DATA_DIR: data });
    const peakKiB = measureRss ? Number((await readFile(rssFile, 'utf8')).trim().split('\n').at(-1)) : undefined;
    const signing = signingLine(run);
    if (signing.signed !== (data === signedData) || (signing.signed && signing.keys !== KEYS)) throw new Error(`\`${run.command}\` should have ${data === signedData ? `signed with ${KEYS} key` : 'built unsigned'}: ${run.stdout}`);
    return { ...run, peakKiB, signing };
  };

  // Cold: a fresh --out (no earlier build to link from, no snapshot to compare with) and no signature
  // cache. Earlier attempts' sites stay until the end: removing 30,000 files just before a build
  // slowed it 2.5× on this machine, whether signed or not.
  const unsignedSite = (attempt: number) => path.join(work, `signing-unsigned-site-${attempt}`);
  const signedSite = (attempt: number) => path.join(work, `signing-signed-site-${attempt}`);
  const unsignedFull: Measured[] = [];
  const signedFull: Measured[] = [];
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    progress(`full build unsigned ${attempt}/${ATTEMPTS}`);
    unsignedFull.push(await build(unsignedData, unsignedSite(attempt)));
    await rm(cacheFile!, { force: true });
    progress(`full build signed ${attempt}/${ATTEMPTS}`);
    signedFull.push(await build(signedData, signedSite(attempt)));
  }
  const warm = signedFull.find((run) => !run.signing.signed || run.signing.made !== releases * KEYS);
  if (warm) throw new Error(`A cold signed build should sign every release's SHA256SUMS: \`${warm.command}\` printed ${warm.stdout}`);
  const unsigned = fastestOf(unsignedFull);
  const signed = fastestOf(signedFull);

  // A live site keeps two builds, so every later build also prunes one: these rebuilds get us there.
  const unsignedLive = unsignedSite(ATTEMPTS);
  const signedLive = signedSite(ATTEMPTS);
  progress('rebuilds, nothing changed');
  const unsignedSame = await build(unsignedData, unsignedLive);
  const signedSame = await build(signedData, signedLive);

  // The next patch of the newest minor, as a release job would add it; both sites rebuild from the same store.
  const versions = Array.from({ length: ATTEMPTS }, (_, i) => `${DEFAULT_SHAPE.majors - 1}.${DEFAULT_SHAPE.minors - 1}.${DEFAULT_SHAPE.patches + i}`);
  const unsignedAdded: Measured[] = [];
  const signedAdded: Measured[] = [];
  for (const [i, version] of versions.entries()) {
    await writeRelease(store, version, releases + i);
    progress(`rebuilds after adding ${version}`);
    // Alternate which goes first, so neither always finds the new release file in the page cache.
    if (i % 2 === 0) unsignedAdded.push(await build(unsignedData, unsignedLive));
    signedAdded.push(await build(signedData, signedLive));
    if (i % 2 === 1) unsignedAdded.push(await build(unsignedData, unsignedLive));
  }
  const unsignedRebuild = fastest(unsignedAdded);
  const signedRebuild = fastest(signedAdded);
  const made = signedAdded.map((run) => (run.signing.signed ? run.signing.made : 0));
  const snapshots = signedAdded.map((run) => (run.signing.signed ? run.signing.snapshot : 'new'));

  progress('signatures in process: node:crypto against openpgp.sign');
  const sums = await readFile(path.join((await currentBuild(signedLive))!, PUBLIC_DIR, 'binary', 'releases', PRODUCT, '0', '0', 'bench_cli_0.0.0_SHA256SUMS'));
  const throughput = await benchSignatures(signedData, sums);

  const fullSigned = signed.signing.signed ? signed.signing.made : 0;
  const rows: Row[] = [
    {
      measured: `Full build, signed by ${KEYS} key vs unsigned: ${releases.toLocaleString('en')} releases × 6 artifacts, ${filesOf(signed)} site files signed (${filesOf(unsigned)} unsigned); cold: fresh --out, no signature cache (wall, best of ${ATTEMPTS}, interleaved)`,
      ours: `${bestSeconds(signed)}, ${percent(signed.ms / unsigned.ms - 1)}; ${fullSigned.toLocaleString('en')} signatures made`,
      reference: `${bestSeconds(unsigned)}, unsigned`,
      target: `< +${OVERHEAD_TARGET * 100} %`,
      met: signed.ms / unsigned.ms - 1 < OVERHEAD_TARGET,
      ourCommand: signed.command,
      referenceCommand: unsigned.command,
    },
    {
      measured: `Full build as above: peak RSS of the build process (GNU time %M, all ${ATTEMPTS} runs)`,
      ours: measureRss ? `${peaks(signedFull)}, ${percent(maxPeak(signedFull) / maxPeak(unsignedFull) - 1)} (highest against highest)` : 'not measured',
      reference: measureRss ? `${peaks(unsignedFull)}, unsigned` : 'not measured',
      target: '—',
      ourCommand: signed.command,
      referenceCommand: unsigned.command,
    },
    {
      measured: `Rebuild after adding one release, signed: signatures made (${versions.join(', ')} added one by one); the snapshot, a JWS, is not an OpenPGP signature and is counted apart`,
      ours: `${made.join(', ')} made; snapshot ${snapshots.map((state) => (state === 'new' ? 'signed anew' : 'unchanged')).join(', ')}`,
      reference: '—',
      target: `${KEYS} (the new SHA256SUMS × ${KEYS} key) and a new snapshot, each time`,
      met: made.every((count) => count === KEYS) && snapshots.every((state) => state === 'new'),
      ourCommand: signedRebuild.command,
    },
    {
      measured: `Rebuild after adding one release: wall time signed vs unsigned (best of ${ATTEMPTS}; warm signature cache)`,
      ours: `${bestSeconds(signedRebuild)}, ${percent(signedRebuild.ms / unsignedRebuild.ms - 1)}`,
      reference: `${bestSeconds(unsignedRebuild)}, unsigned`,
      target: '—',
      ourCommand: signedRebuild.command,
      referenceCommand: unsignedRebuild.command,
    },
    {
      measured: `One detached signature over a release's SHA256SUMS (${sums.length} bytes), in process (best of 3 batches of ${SIGNATURES_PER_BATCH.toLocaleString('en')}, after a warm-up batch); ${throughput.same ? 'both make the same bytes' : '**the two make different bytes**'}`,
      ours: `${perSignature(throughput.ours)}, ${(throughput.reference / throughput.ours).toFixed(1)}× openpgp.sign`,
      reference: `${perSignature(throughput.reference)}, openpgp.sign`,
      target: '—',
      ourCommand: `BENCH_ROWS=signing npm run bench: key.sign(sums, date), key from loadKeyring (generator/trust/keyring.ts → openpgp-signature.ts)`,
      referenceCommand: `openpgp.sign({ message: await openpgp.createMessage({ binary: sums }), signingKeys, detached: true, format: 'binary', date }), config.nonDeterministicSignaturesViaNotation = false, openpgp ${openpgp.config.versionString.replace(/^OpenPGP\.js v?/, '')}`,
    },
  ];
  const notes = [
    `full build signed (best): ${stepsOf(signed)}; unsigned (best): ${stepsOf(unsigned)}.`,
    `rebuild, nothing changed: signed ${seconds(signedSame.ms)} (${written(signedSame)} written; ${describeSigning(signedSame.signing)}) [${stepsOf(signedSame)}]; unsigned ${seconds(unsignedSame.ms)} (${written(unsignedSame)} written) [${stepsOf(unsignedSame)}].`,
    ...versions.map((version, i) => `rebuild after adding ${version}: signed ${seconds(signedAdded[i]!.ms)} (${written(signedAdded[i]!)} written; ${describeSigning(signedAdded[i]!.signing)}) [${stepsOf(signedAdded[i]!)}]; unsigned ${seconds(unsignedAdded[i]!.ms)} (${written(unsignedAdded[i]!)} written) [${stepsOf(unsignedAdded[i]!)}].`),
  ];
  return { rows, notes };
}

/** Microseconds per signature, ours and openpgp.js's, and whether both sign the same bytes alike. */
async function benchSignatures(data: string, sums: Uint8Array): Promise<{ ours: number; reference: number; same: boolean }> {
  const [key] = (await loadKeyring({ dir: keysDir(data) })).active;
  const stored = JSON.parse(await readFile(path.join(keysDir(data), KEYRING_FILE), 'utf8')) as { keys: { privateKey?: string }[] };
  const signingKeys = await openpgp.readPrivateKey({ armoredKey: stored.keys[0]!.privateKey! });
  if (!key) throw new Error(`No active key in ${keysDir(data)}`);
  openpgp.config.nonDeterministicSignaturesViaNotation = false;
  const date = new Date(Math.floor(Date.now() / 1000) * 1000);
  const reference = async () => openpgp.sign({ message: await openpgp.createMessage({ binary: sums }), signingKeys, detached: true, format: 'binary', date });
  const same = key.sign(sums, date).equals(await reference());
  const batch = async (sign: () => unknown): Promise<number> => {
    const started = performance.now();
    for (let i = 0; i < SIGNATURES_PER_BATCH; i++) await sign();
    return ((performance.now() - started) * 1000) / SIGNATURES_PER_BATCH;
  };
  const best = async (sign: () => unknown): Promise<number> => {
    await batch(sign);
    return Math.min(await batch(sign), await batch(sign), await batch(sign));
  };
  return { ours: await best(() => key.sign(sums, date)), reference: await best(reference), same };
}

/** `fastest` keeps the fastest run's own fields. */
function fastestOf<T extends Run>(runs: T[]): T & Best {
  return fastest(runs) as T & Best;
}

function signingLine(run: Run): SigningLine {
  if (/^unsigned: /m.test(run.stdout)) return { signed: false };
  const found = /^signed by (\d+) keys?: (\d+) signatures made, (\d+) reused; snapshot version \d+( \(unchanged\))?/m.exec(run.stdout);
  if (!found) throw new Error(`Unexpected output of \`${run.command}\`: ${run.stdout}`);
  return { signed: true, keys: Number(found[1]), made: Number(found[2]), reused: Number(found[3]), snapshot: found[4] ? 'unchanged' : 'new' };
}

function describeSigning(signing: SigningLine): string {
  return signing.signed ? `${signing.made} signatures made, ${signing.reused.toLocaleString('en')} reused, snapshot ${signing.snapshot === 'new' ? 'signed anew' : 'unchanged'}` : 'unsigned';
}

function peaks(runs: Measured[]): string {
  return `${runs.map((run) => Math.round(run.peakKiB! / 1024)).join(', ')} MiB`;
}

function maxPeak(runs: Measured[]): number {
  return Math.max(...runs.map((run) => run.peakKiB!));
}

function percent(fraction: number): string {
  return `${fraction >= 0 ? '+' : '−'}${Math.abs(fraction * 100).toFixed(1)} %`;
}

function perSignature(microseconds: number): string {
  return `${microseconds.toFixed(1)} µs/signature (${Math.round(1e6 / microseconds).toLocaleString('en')}/s)`;
}
