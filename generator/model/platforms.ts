// The one vocabulary for operating systems and CPU architectures. Manifests store canonical names;
// each API layout shows its own spelling through the alias tables below.

export const PLATFORMS = ['linux', 'darwin', 'windows'] as const;
export const ARCHES = ['amd64', 'arm64', '386'] as const;

export type Platform = (typeof PLATFORMS)[number];
export type Arch = (typeof ARCHES)[number];

const PLATFORM_ALIASES: Record<string, Platform> = {
  linux: 'linux',
  darwin: 'darwin',
  macos: 'darwin',
  osx: 'darwin',
  windows: 'windows',
  win: 'windows',
};

const ARCH_ALIASES: Record<string, Arch> = {
  amd64: 'amd64',
  x86_64: 'amd64',
  x64: 'amd64',
  arm64: 'arm64',
  aarch64: 'arm64',
  '386': '386',
  i386: '386',
  x86: '386',
};

/** The canonical platform for a name or alias, or undefined. */
export function canonicalPlatform(name: string): Platform | undefined {
  return Object.hasOwn(PLATFORM_ALIASES, name) ? PLATFORM_ALIASES[name] : undefined;
}

/** The canonical architecture for a name or alias, or undefined. */
export function canonicalArch(name: string): Arch | undefined {
  return Object.hasOwn(ARCH_ALIASES, name) ? ARCH_ALIASES[name] : undefined;
}

/** How the desktop-agent API (seeds 001/002) spells platforms and architectures. */
/** How Debian (apt's `Architecture`, `binary-<arch>`) spells architectures. */
export const DEBIAN_ARCHITECTURES: Record<Arch, string> = { amd64: 'amd64', arm64: 'arm64', '386': 'i386' };

export const AGENT_LAYOUT_NAMES = {
  platform: { windows: 'windows', darwin: 'macos' } as Partial<Record<Platform, string>>,
  arch: { amd64: 'x86_64', arm64: 'arm64' } as Partial<Record<Arch, string>>,
};
