// Content types for artifacts whose manifest entry names none, by file extension.
const BY_EXTENSION: [string, string][] = [
  ['.tar.gz', 'application/gzip'],
  ['.tgz', 'application/gzip'],
  ['.zip', 'application/zip'],
  ['.msi', 'application/x-msi'],
  ['.deb', 'application/vnd.debian.binary-package'],
  ['.rpm', 'application/x-rpm'],
  ['.exe', 'application/vnd.microsoft.portable-executable'],
  ['.dmg', 'application/x-apple-diskimage'],
  ['.sig', 'application/pgp-signature'],
  ['.asc', 'application/pgp-signature'],
];

export function contentTypeFor(filename: string): string {
  const lower = filename.toLowerCase();
  for (const [extension, type] of BY_EXTENSION) if (lower.endsWith(extension)) return type;
  return 'application/octet-stream';
}
