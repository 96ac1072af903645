// The list of `zomma` commands. Each lives in its own file under commands/ and
// is loaded only when it runs, so `zomma --help` stays fast.

import type { Command } from './io.ts';

export interface CommandEntry {
  name: string;
  summary: string;
  load: () => Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
  {
    name: 'version',
    summary: 'print the version',
    load: async () => (await import('./commands/version.ts')).command,
  },
  {
    name: 'greeks',
    summary: 'Black–Scholes price and greeks of an option, or its implied volatility',
    load: async () => (await import('./commands/greeks.ts')).command,
  },
];
