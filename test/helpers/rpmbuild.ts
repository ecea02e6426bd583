// Real .rpm packages for the rpm and yum suites, built by rpmbuild from a spec written here.
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

export const exec = promisify(execFile);

export interface RpmSpec {
  name: string;
  /** rpm's version: a prerelease is written `1.2.0~rc.1`, which sorts before 1.2.0. */
  version: string;
  release?: string;
  epoch?: number;
  /** Extra preamble lines: `Requires: ...`, `Provides: ...`, `AutoReqProv: no`. */
  preamble?: string[];
  /** What `/usr/bin/<name>` prints. */
  says?: string;
  /** Extra `%files` lines, with the `%install` lines that make them. */
  files?: { install: string; list: string }[];
  /** `%changelog` entries, newest first. */
  changelog?: string[];
  /** `--define` pairs; the payload is gzip unless one says otherwise. */
  defines?: Record<string, string>;
  /** Build the source package instead. */
  source?: boolean;
}

/** Builds the package under `dir` and returns its path. Dates are fixed, so the bytes are too. */
export async function buildRpm(dir: string, spec: RpmSpec): Promise<string> {
  const top = path.join(dir, `rpmbuild-${spec.name}-${spec.version}`);
  await mkdir(top, { recursive: true });
  const specFile = path.join(top, `${spec.name}.spec`);
  const lines = [
    `Name: ${spec.name}`,
    `Version: ${spec.version}`,
    `Release: ${spec.release ?? '1'}`,
    ...(spec.epoch !== undefined ? [`Epoch: ${spec.epoch}`] : []),
    `Summary: ${spec.name}, a test package`,
    'License: Apache-2.0',
    'URL: https://example.com/mirror',
    'BuildArch: x86_64',
    ...(spec.preamble ?? []),
    '',
    '%description',
    `${spec.name} exists for the mirror's tests.`,
    '',
    '%install',
    'mkdir -p %{buildroot}/usr/bin',
    `printf '#!/bin/sh\\necho ${spec.says ?? spec.version}\\n' > %{buildroot}/usr/bin/${spec.name}`,
    `chmod 755 %{buildroot}/usr/bin/${spec.name}`,
    ...(spec.files ?? []).map((file) => file.install),
    '',
    '%files',
    `/usr/bin/${spec.name}`,
    ...(spec.files ?? []).map((file) => file.list),
    ...(spec.changelog ? ['', '%changelog', ...spec.changelog] : []),
    '',
  ];
  await writeFile(specFile, lines.join('\n'));
  const defines = {
    _topdir: top,
    _binary_payload: 'w9.gzdio',
    use_source_date_epoch_as_buildtime: '1',
    _buildhost: 'build.example.com',
    ...spec.defines,
  };
  await exec('rpmbuild', [spec.source ? '-bs' : '-bb', ...Object.entries(defines).flatMap(([name, value]) => ['--define', `${name} ${value}`]), specFile], {
    env: { ...process.env, SOURCE_DATE_EPOCH: '1714557600' },
  });
  const out = path.join(top, spec.source ? 'SRPMS' : 'RPMS/x86_64');
  const [built] = await readdir(out);
  if (!built) throw new Error(`rpmbuild left nothing in ${out}`);
  return path.join(out, built);
}

/** A reason to skip, or false. CI installs rpm and dnf, and there a missing one fails the run. */
export function whyRpmCannotRun(tools: string[] = ['rpmbuild', 'rpm']): string | false {
  const missing = tools.filter((tool) => spawnSync(tool, ['--version']).error);
  const reason = missing.length > 0 ? `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed (apt-get install rpm dnf)` : false;
  if (reason && process.env.CI) throw new Error(`CI must run the rpm suites, but ${reason}`);
  return reason;
}
