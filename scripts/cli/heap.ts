// The heap of a command that runs one build and exits. Such a build holds the store's catalog
// (about 2.3 KB a release) from the load to the end of the render, and makes garbage fast while it
// renders. V8 sizes its heap for throughput: after a full collection it lets the heap grow to as
// much as four times what was live before it collects again, so at 100,000 releases a build
// holding about 250 MB peaked at 1.3–1.5 GB of RSS. Such a command asks V8 for a heap half again
// what is live instead (--heap-growing-percent, which V8 reads at each collection): about a tenth
// more CPU time, and a peak under 1 GB at 100,000 releases (README, Performance). A server, whose
// heap V8 sizes as it sees fit, never sets it.
import { setFlagsFromString } from 'node:v8';

export function boundHeapGrowth(): void {
  setFlagsFromString('--heap-growing-percent=50');
}
