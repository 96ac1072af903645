import { parseArgs } from 'node:util';
import { initNetwork } from '../../node/init.ts';
import type { Command } from '../io.ts';
import { UsageError } from '../io.ts';

export const command: Command = {
  name: 'init',
  summary: 'write a genesis and one home directory per validator',
  usage:
    'zomma init --validators N [--hosts h1,h2,…] [--out DIR] [--chain-id ID] [--base-port P] [--oracle-seed S] [--json]',
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: {
        validators: { type: 'string' },
        hosts: { type: 'string' },
        out: { type: 'string', default: '.zomma/network' },
        'chain-id': { type: 'string' },
        'base-port': { type: 'string' },
        'oracle-seed': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    if (values.validators === undefined) throw new UsageError('--validators is required');
    const validators = Number(values.validators);
    const { genesis, homes } = initNetwork({
      validators,
      ...(values.hosts !== undefined
        ? { hosts: values.hosts.split(',').map((h) => h.trim()) }
        : {}),
      out: values.out,
      ...(values['chain-id'] !== undefined ? { chainId: values['chain-id'] } : {}),
      ...(values['base-port'] !== undefined ? { basePort: Number(values['base-port']) } : {}),
      oracleSeed: values['oracle-seed'] !== undefined ? Number(values['oracle-seed']) : null,
      genesisTimeMs: Date.now(),
    });
    if (values.json) {
      io.out(JSON.stringify({ chainId: genesis.chainId, homes }));
      return 0;
    }
    io.out(`chain ${genesis.chainId}: ${homes.length} validator homes in ${values.out}`);
    for (const h of homes) {
      io.out(
        `  ${h.home}  key ${h.publicKey.slice(0, 16)}…  peer ${h.peer}  api ${h.api}  metrics ${h.metrics}`,
      );
    }
    io.out(`start each with: zomma node --home <dir>`);
    return 0;
  },
};
