// A process that stages an upload into the blob store at argv[2] from a stream that never ends,
// and says `staging` on stdout once its staging file exists: an upload in flight, to be killed.
import { PassThrough } from 'node:stream';
import { createFsBlobStore } from '../../generator/stores/blob-fs.ts';

const source = new PassThrough();
const staging = createFsBlobStore({ root: process.argv[2]! }).stage(source, { maxBytes: 1024 * 1024 });
source.write(Buffer.alloc(1024));
setInterval(() => undefined, 60_000);
// The first bytes go to disk once the stage has opened its file.
setTimeout(() => process.stdout.write('staging\n'), 200);
await staging;
