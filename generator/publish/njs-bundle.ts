// esbuild bundles for the njs engines: Debian's njs 0.7.9 (nginx) and CloudFront's
// cloudfront-js-2.0, which both parse ES5 plus let/const, arrows, template literals and async
// functions. esbuild lowers what it can of the rest and fails the build on what it cannot.
export interface NjsBundleOptions {
  /** The entry module; it must export exactly one binding. */
  entry: string;
  /** Compile-time constants. */
  define?: Record<string, string>;
  /** Modules the engine provides (`cloudfront`). */
  external?: string[];
  minify?: boolean;
}

/** The bundle without its export list, and the local name of the entry's one export. */
export async function bundleForNjs(options: NjsBundleOptions): Promise<{ code: string; exported: string }> {
  // Loaded here only, so other commands never start esbuild.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [options.entry],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['main'],
    target: 'es2015',
    supported: {
      'optional-chain': false,
      'nullish-coalescing': false,
      'optional-catch-binding': false,
      'default-argument': false,
      'rest-argument': false,
      'array-spread': false,
      'object-rest-spread': false,
      destructuring: false,
      'for-of': false,
      class: false,
      generator: false,
      'async-await': true,
      'async-generator': false,
      'for-await': false,
    },
    define: options.define ?? {},
    external: options.external ?? [],
    minify: options.minify ?? false,
    legalComments: 'none',
    logLevel: 'silent',
  });
  const text = result.outputFiles[0]!.text;
  const exported = /\s*export\s*\{\s*([\w$]+)(?:\s+as\s+[\w$]+)?\s*\};?\s*$/.exec(text);
  if (!exported) throw new Error(`The bundle of ${options.entry} does not end with a single export`);
  return { code: text.slice(0, exported.index), exported: exported[1]! };
}
