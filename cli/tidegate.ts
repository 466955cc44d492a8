#!/usr/bin/env node
import { main } from './main.js';

// A reader that goes away (`tidegate history | head -1`) ends the output, as it ends git's or
// kubectl's, not the process with an unhandled EPIPE.
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  () => (process.exitCode = 2),
);
