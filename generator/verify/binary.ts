// The binary layout (seed 000): versions → one listing per minor → every listed artifact
// downloaded, its size checked against the listing and its digest against its SHA256SUMS.
import semver from 'semver';
import { resolveLink, type Crawl } from './http.ts';
import { minorListing, versionsIndex, type ListedFile } from './schemas.ts';
import { checkSums } from './sums.ts';

export async function verifyBinaryProduct(crawl: Crawl, productUrl: URL): Promise<void> {
  // Relative names below resolve inside the product only if its URL ends with a slash.
  const base = productUrl.pathname.endsWith('/') ? productUrl : new URL(`${productUrl.pathname}/`, productUrl);
  const versionsUrl = new URL('versions', base);
  const index = await crawl.http.json(versionsUrl, versionsIndex);
  if (!index) return;
  if (index.count !== index.versions.length) crawl.record.problem(versionsUrl, `expected count ${index.versions.length} (the versions listed), got ${index.count}`);
  const minors = new Map<string, string[]>();
  for (const version of index.versions) {
    const parsed = semver.parse(version);
    if (!parsed) {
      crawl.record.problem(versionsUrl, `expected semantic versions, got \`${version}\``);
      continue;
    }
    const path = `${parsed.major}/${parsed.minor}/`;
    minors.set(path, [...(minors.get(path) ?? []), version]);
  }
  await Promise.all([...minors].map(([path, versions]) => verifyMinor(crawl, new URL(path, base), versions)));
}

async function verifyMinor(crawl: Crawl, listingUrl: URL, versions: string[]): Promise<void> {
  const listing = await crawl.http.json(listingUrl, minorListing);
  if (!listing) return;
  if (listing.count !== listing.files.length) crawl.record.problem(listingUrl, `expected count ${listing.files.length} (the files listed), got ${listing.count}`);
  const byVersion = groupByVersion(listing.files);
  for (const version of versions) {
    if (!byVersion.has(version)) crawl.record.problem(listingUrl, `expected files of ${version}, which the versions index lists; got none`);
  }
  for (const version of byVersion.keys()) {
    if (!versions.includes(version)) crawl.record.problem(listingUrl, `lists files of ${version}, which the versions index does not list`);
  }
  await Promise.all([...byVersion].map(([version, files]) => verifyBinaryRelease(crawl, listingUrl, version, files)));
}

async function verifyBinaryRelease(crawl: Crawl, listingUrl: URL, version: string, files: ListedFile[]): Promise<void> {
  const sumsUrl = sumsUrlOf(crawl, listingUrl, version, files);
  const sums = sumsUrl ? crawl.http.text(sumsUrl) : undefined;
  const listed = new Map<string, string>();
  const received = new Map<string, string>();
  await Promise.all(
    files.map(async function checkListedFile(file) {
      crawl.record.count('artifactsChecked');
      const url = resolveLink(crawl.record, listingUrl, file.download_url, `the download_url of ${file.filename}`);
      listed.set(file.filename, url?.href ?? file.download_url);
      if (!url) return;
      const download = await crawl.http.download(url);
      if (!download) return;
      if (download.size !== file.size) crawl.record.problem(url, `expected ${file.size} bytes (the size ${listingUrl} lists), got ${download.size}`);
      received.set(file.filename, download.sha256);
    }),
  );
  const text = await sums;
  if (!sumsUrl || text === undefined) return;
  crawl.record.count('checksumFilesChecked');
  checkSums(crawl.record, { sumsUrl, text, listingUrl, listed, received });
}

/** `<prefix>_<version>_SHA256SUMS` beside the listing, the prefix taken from the artifact names. */
function sumsUrlOf(crawl: Crawl, listingUrl: URL, version: string, files: ListedFile[]): URL | undefined {
  const marker = `_${version}_`;
  const named = files.find((file) => file.filename.includes(marker));
  if (!named) {
    const names = files.map((file) => file.filename).join(', ');
    crawl.record.problem(listingUrl, `expected artifact names of ${version} like <prefix>${marker}<platform>_<arch>.<ext>, got ${names}; cannot name its SHA256SUMS`);
    return undefined;
  }
  return new URL(`${named.filename.slice(0, named.filename.indexOf(marker))}${marker}SHA256SUMS`, listingUrl);
}

/** Map.groupBy arrives in Node 21; the project supports Node 20. */
function groupByVersion(files: ListedFile[]): Map<string, ListedFile[]> {
  const groups = new Map<string, ListedFile[]>();
  for (const file of files) groups.set(file.version, [...(groups.get(file.version) ?? []), file]);
  return groups;
}
