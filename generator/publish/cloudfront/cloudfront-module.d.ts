// The module cloudfront-js-2.0 provides to functions; only what edge-function.ts uses.
declare module 'cloudfront' {
  interface KeyValueStore {
    get(key: string): Promise<string>;
    exists(key: string): Promise<boolean>;
  }
  const cf: { kvs(): KeyValueStore };
  export default cf;
}
