#!/usr/bin/env node
// The `zomma` command. Sources are TypeScript run through tsx, so the package
// needs no build step: `npm install` is enough.
import { register } from 'tsx/esm/api';

register();
// `zomma … | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
