// The hashing benchmark's child process: hashes FILE with the code `mirror release add` uses and
// prints a line like sha256sum's, so both are timed the same way.
//   node --import tsx scripts/bench/hash-file.ts FILE
import { hashFile } from '../../generator/stores/hash.ts';

const file = process.argv[2];
if (!file) throw new Error('Usage: hash-file.ts FILE');
const { sha256 } = await hashFile(file);
console.log(`${sha256}  ${file}`);
