// The internal locations the generated config declares and the njs module redirects to. External
// requests never reach them: nginx refuses them with 404, which the njs module answers like the
// sidecar does for an unknown path.
export const INTERNAL = {
  /** Site files; `ranged` serves the one byte range asked for, `whole` ignores Range (as the sidecar does then). */
  site: { ranged: '/_mirror/site', whole: '/_mirror/site-whole' },
  /** Artifact bytes in the blob store. */
  blob: { ranged: '/_mirror/blob', whole: '/_mirror/blob-whole' },
  /** nginx's own 400s (request lines it cannot parse), 404s (no file at the alias) and 405s (TRACE). */
  badRequest: '/_mirror/bad-request',
  notAllowed: '/_mirror/not-allowed',
  notFound: '/_mirror/not-found',
} as const;
