// The viewer-request function's code, as CloudFront stores it: edge-function.ts bundled for
// cloudfront-js-2.0, with the top-level `handler` CloudFront calls.
import { packagePath } from '../../package-root.ts';
import { bundleForNjs } from '../njs-bundle.ts';

/** CloudFront's quota for a function's code. */
export const FUNCTION_CODE_LIMIT = 10 * 1024;
const ENTRY = packagePath('generator', 'publish', 'cloudfront', 'edge-function.ts');

export async function cloudFrontFunctionCode(): Promise<string> {
  const { code, exported } = await bundleForNjs({ entry: ENTRY, external: ['cloudfront'], minify: true });
  const source = `${code}\nasync function handler(event){return ${exported}(event)}\n`;
  const size = Buffer.byteLength(source);
  if (size > FUNCTION_CODE_LIMIT) throw new Error(`The CloudFront function is ${size} bytes, over CloudFront's ${FUNCTION_CODE_LIMIT}`);
  return source;
}
