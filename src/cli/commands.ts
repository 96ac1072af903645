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
    summary: 'print the version, the digest of the source it runs and its protocol versions',
    load: async () => (await import('./commands/version.ts')).command,
  },
  {
    name: 'greeks',
    summary: 'Black–Scholes price and greeks of an option, or its implied volatility',
    load: async () => (await import('./commands/greeks.ts')).command,
  },
  {
    name: 'init',
    summary: 'write a genesis and one home directory per validator and full node',
    load: async () => (await import('./commands/init.ts')).command,
  },
  {
    name: 'node',
    summary: 'run a validator (or full node) from its home directory',
    load: async () => (await import('./commands/node.ts')).command,
  },
  {
    name: 'devnet',
    summary: 'run a local network of validators, one process each',
    load: async () => (await import('./commands/devnet.ts')).command,
  },
  {
    name: 'tx',
    summary:
      'sign and send a transaction: faucet, order, cancel, amend, agent, withdraw, transfer, deposit, gov-propose, gov-vote',
    load: async () => (await import('./commands/tx.ts')).command,
  },
  {
    name: 'query',
    summary:
      'read status, instruments, books, tickers, trades, accounts, transactions and blocks from a node',
    load: async () => (await import('./commands/query.ts')).command,
  },
  {
    name: 'keys',
    summary: 'create or show an Ed25519 key file',
    load: async () => (await import('./commands/keys.ts')).command,
  },
  {
    name: 'sim',
    summary: 'deterministic simulation of the validators: faults, Byzantine nodes, checkers, swarm',
    load: async () => (await import('./commands/sim.ts')).command,
  },
  {
    name: 'stress',
    summary: 'replay price paths on a state snapshot: liquidations, deleveraging, insurance fund',
    load: async () => (await import('./commands/stress.ts')).command,
  },
];
