// `mirror verify`: crawls a mirror over HTTP from its root index and checks every artifact's bytes
// against what the listings, SHA256SUMS files and download redirects promise. Every problem is
// collected; nothing stops the crawl but an index that cannot be read, and then only below it.
import { verifyAgentProduct } from './verify/agent.ts';
import { verifyBinaryProduct } from './verify/binary.ts';
import { createMirrorHttp, resolveLink, type Crawl } from './verify/http.ts';
import { createRecorder, type VerifyProgressEvent, type VerifyReport } from './verify/report.ts';
import { rootIndex } from './verify/schemas.ts';
import { verifyTrust, type TrustOptions } from './verify/trust.ts';

export { formatVerifyReport } from './verify/report.ts';
export type { VerifyCounts, VerifyProblem, VerifyProgressEvent, VerifyReport } from './verify/report.ts';

export interface VerifyOptions {
  /** The mirror, e.g. `https://releases.example.com`. Only its origin counts: the site links by absolute paths. */
  baseUrl: string;
  /** Requests in flight at most, downloads included (default 4). */
  concurrency?: number;
  /** The fetch to use (default: Node's global fetch). */
  fetch?: typeof fetch;
  /** Told of each index read, download finished and problem found, e.g. to show progress. */
  onProgress?: (event: VerifyProgressEvent) => void;
  /** The keys to trust and where this client remembers the last snapshot; without, trust on first use and remember nothing. */
  trust?: TrustOptions;
}

const LAYOUTS: Record<string, (crawl: Crawl, productUrl: URL) => Promise<void>> = {
  binary: verifyBinaryProduct,
  agent: verifyAgentProduct,
};

export async function verifyMirror({ baseUrl, concurrency = 4, fetch = globalThis.fetch, onProgress, trust = {} }: VerifyOptions): Promise<VerifyReport> {
  const root = rootOf(baseUrl);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError(`Expected \`concurrency\` to be an integer of at least 1, got \`${concurrency}\``);
  const record = createRecorder(root.href, onProgress);
  const crawl: Crawl = { http: createMirrorHttp({ fetch, concurrency, record }), record };
  const index = await crawl.http.json(root, rootIndex);
  // A mirror whose root cannot be read is one problem, not one more per trust file.
  const trusting = index ? verifyTrust(crawl, root, trust) : Promise.resolve(undefined);
  await Promise.all(
    (index?.products ?? []).map(async function verifyProduct(product) {
      const verifyLayout = LAYOUTS[product.layout];
      if (!verifyLayout) {
        record.problem(root, `expected product ${product.name}'s layout to be one of ${Object.keys(LAYOUTS).join(', ')}, got \`${product.layout}\``);
        return;
      }
      const productUrl = resolveLink(record, root, product.url, `the url of product ${product.name}`);
      if (productUrl) await verifyLayout(crawl, productUrl);
    }),
  );
  const summary = await trusting;
  return { ...record.report(), ...(summary !== undefined ? { trust: summary } : {}) };
}

/** Fails at the call, not as a mirror problem: a bad base URL is the caller's mistake. */
function rootOf(baseUrl: string): URL {
  const url = URL.canParse(baseUrl) ? new URL('/', baseUrl) : undefined;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new TypeError(`Expected \`baseUrl\` to be an http or https URL, got \`${baseUrl}\``);
  }
  return url;
}
