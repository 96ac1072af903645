#!/usr/bin/env node
// The `zomma` command. Sources are TypeScript run through tsx, so the package
// needs no build step: `npm install` is enough.
import { setFlagsFromString } from 'node:v8';
import { register } from 'tsx/esm/api';

// V8 allocates the objects of a literal straight in the old generation once
// most of them outlive a scavenge. Much of what the exchange makes in a block
// does (it lives until the block ends) and then dies there, in memory no cache
// holds. Without that the exchange executes about 1.2x the transactions per
// CPU second, measured (docs/exchange.md, "Performance"); set before any code
// of ours runs.
setFlagsFromString('--no-allocation-site-pretenuring');
register();
// `zomma … | head` closes the pipe early: that is the reader's choice, not an
// error; so does a terminal that was closed (its writes fail EIO once it hung
// up). A command that runs until a signal (a node, a devnet and the
// validators it started) stops as on SIGTERM, cleanly, rather than exit at
// once and leave its validators running; any other command exits 0.
/** Whether a write failed because no one reads any more: a closed pipe, a closed terminal. */
const readerGone = (error) => error.code === 'EPIPE' || error.code === 'EIO';
let pipeClosed = false;
process.stdout.on('error', (error) => {
  if (!readerGone(error)) throw error;
  if (pipeClosed) return;
  pipeClosed = true;
  if (process.listenerCount('SIGTERM') > 0) process.emit('SIGTERM', 'SIGTERM');
  else process.exit(0);
});
// Nothing more can be said there; what is stopping (a devnet whose terminal
// closed, reporting its validators as they exit) goes on stopping.
process.stderr.on('error', (error) => {
  if (!readerGone(error)) throw error;
});
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
