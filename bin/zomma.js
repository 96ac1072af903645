#!/usr/bin/env node
// The `zomma` command. Sources are TypeScript run through tsx, so the package
// needs no build step: `npm install` is enough.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
