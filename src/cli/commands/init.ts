import { parseArgs } from 'node:util';
import { validateTrustedBlock } from '../../node/config.ts';
import { NodeError } from '../../node/errors.ts';
import type { TrustedBlockConfig } from '../../node/config.ts';
import { addFullNode, initNetwork } from '../../node/init.ts';
import type { InitHome } from '../../node/init.ts';
import type { Command, CommandOptions, Io } from '../io.ts';
import { UsageError } from '../io.ts';

const DEFAULT_OUT = '.zomma/network';

function intOption(text: string, name: string): number {
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new UsageError(`${name} must be a non-negative integer`);
  }
  return n;
}

/** Both flags or neither; the values are checked as config.trustedBlock is. */
function trustedBlockOf(
  height: string | undefined,
  hash: string | undefined,
): TrustedBlockConfig | null {
  if (height === undefined && hash === undefined) return null;
  if (height === undefined || hash === undefined) {
    throw new UsageError('--trust-height and --trust-hash go together');
  }
  try {
    return validateTrustedBlock({ height: intOption(height, '--trust-height'), hash });
  } catch (e) {
    // The check is config.json's; the user typed flags, so name the flag.
    if (e instanceof NodeError && e.field === 'config.trustedBlock.height') {
      throw new UsageError('--trust-height must be a height of at least 1');
    }
    if (e instanceof NodeError && e.field === 'config.trustedBlock.hash') {
      throw new UsageError(
        '--trust-hash must be the block hash as 64 hex digits (`zomma query block H`)',
      );
    }
    throw e;
  }
}

function printHome(io: Io, h: InitHome): void {
  io.out(
    `  ${h.home}  key ${h.publicKey.slice(0, 16)}…  peer ${h.peer}  api ${h.api}  metrics ${h.metrics}`,
  );
}

/** What run() gives util.parseArgs; main() names the nearest of them for an unknown option. */
const OPTIONS = {
  validators: { type: 'string' },
  'full-nodes': { type: 'string' },
  hosts: { type: 'string' },
  out: { type: 'string' },
  'chain-id': { type: 'string' },
  'base-port': { type: 'string' },
  'oracle-seed': { type: 'string' },
  'no-faucet': { type: 'boolean', default: false },
  'add-full-node': { type: 'boolean', default: false },
  network: { type: 'string' },
  host: { type: 'string' },
  'no-state-sync': { type: 'boolean', default: false },
  'trust-height': { type: 'string' },
  'trust-hash': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const satisfies CommandOptions;

export const command: Command = {
  name: 'init',
  options: OPTIONS,
  summary: 'write a genesis and one home directory per validator and full node',
  usage:
    'zomma init --validators N [--full-nodes M] [--hosts h1,h2,…] [--out DIR] [--chain-id ID] [--base-port P] [--oracle-seed S]\n' +
    '           [--no-faucet] [--json]\n' +
    '                  --no-faucet: no devnet faucet; money comes in only by deposits the validators attest\n' +
    '                  (zomma tx deposit)\n' +
    '       zomma init --add-full-node --network DIR [--host H] [--base-port P] [--no-state-sync] [--json]\n' +
    '                  [--trust-height H --trust-hash HEX]   state sync trusts this committed block (`zomma query block H`\n' +
    '                                                        on a node you run) instead of the genesis validators',
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: OPTIONS,
      strict: true,
    });
    const basePort =
      values['base-port'] !== undefined ? intOption(values['base-port'], '--base-port') : undefined;
    if (values['add-full-node']) {
      if (values.network === undefined) throw new UsageError('--add-full-node needs --network DIR');
      if (values.validators !== undefined || values['full-nodes'] !== undefined) {
        throw new UsageError('--add-full-node adds to an existing network: no --validators');
      }
      // Each is read only by a new network: taken here it would be dropped without a word.
      for (const flag of ['hosts', 'out', 'chain-id', 'oracle-seed', 'no-faucet'] as const) {
        if (values[flag] !== undefined && values[flag] !== false) {
          throw new UsageError(`--${flag} is for a new network, not --add-full-node`);
        }
      }
      const trustedBlock = trustedBlockOf(values['trust-height'], values['trust-hash']);
      if (trustedBlock !== null && values['no-state-sync'] === true) {
        throw new UsageError(
          '--trust-height and --trust-hash are for state sync: not with --no-state-sync',
        );
      }
      const { home, updated } = addFullNode({
        network: values.network,
        ...(values.host !== undefined ? { host: values.host } : {}),
        ...(basePort !== undefined ? { basePort } : {}),
        stateSync: !values['no-state-sync'],
        ...(trustedBlock !== null ? { trustedBlock } : {}),
      });
      if (values.json) {
        io.out(JSON.stringify({ home, updated }));
        return 0;
      }
      io.out(`full node added in ${values.network}:`);
      printHome(io, home);
      io.out(`its key was added to the peers of ${updated.length} validators:`);
      for (const dir of updated) io.out(`  ${dir}/config.json`);
      io.out(
        'restart each validator (or copy its new config.json to its host first), then: zomma node --home <full node dir>',
      );
      return 0;
    }
    if (values['trust-height'] !== undefined || values['trust-hash'] !== undefined) {
      throw new UsageError('--trust-height and --trust-hash go with --add-full-node');
    }
    for (const flag of ['network', 'host', 'no-state-sync'] as const) {
      if (values[flag] !== undefined && values[flag] !== false) {
        throw new UsageError(`--${flag} goes with --add-full-node`);
      }
    }
    if (values.validators === undefined) throw new UsageError('--validators is required');
    const out = values.out ?? DEFAULT_OUT;
    // An empty path (an unset variable in a script) would write the homes into the current directory.
    if (out === '') throw new UsageError('--out must name a directory');
    const { genesis, homes, fullNodes } = initNetwork({
      validators: intOption(values.validators, '--validators'),
      ...(values['full-nodes'] !== undefined
        ? { fullNodes: intOption(values['full-nodes'], '--full-nodes') }
        : {}),
      ...(values.hosts !== undefined
        ? { hosts: values.hosts.split(',').map((h) => h.trim()) }
        : {}),
      out,
      ...(values['chain-id'] !== undefined ? { chainId: values['chain-id'] } : {}),
      ...(basePort !== undefined ? { basePort } : {}),
      oracleSeed:
        values['oracle-seed'] !== undefined
          ? intOption(values['oracle-seed'], '--oracle-seed')
          : null,
      genesisTimeMs: Date.now(),
      faucet: !values['no-faucet'],
    });
    if (values.json) {
      io.out(JSON.stringify({ chainId: genesis.chainId, homes, fullNodes }));
      return 0;
    }
    io.out(
      `chain ${genesis.chainId}: ${homes.length} validator and ${fullNodes.length} full-node homes in ${out}`,
    );
    if (!genesis.devnet) {
      io.out('no faucet: validators credit deposits with zomma tx deposit (2/3 of the stake)');
    }
    for (const h of [...homes, ...fullNodes]) printHome(io, h);
    io.out(`start each with: zomma node --home <dir>`);
    return 0;
  },
};
