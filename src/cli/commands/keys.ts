import { parseArgs } from 'node:util';
import { formatAddress, generateKeyPair, loadKeyFile, saveKeyFile } from '../../crypto/index.ts';
import { toHex } from '../../lib/bytes.ts';
import type { Command } from '../io.ts';
import { UsageError } from '../io.ts';

export const command: Command = {
  name: 'keys',
  summary: 'create or show an Ed25519 key file',
  usage: 'zomma keys new --out FILE [--json] | zomma keys show --key FILE [--json]',
  async run(args, io) {
    const [sub, ...rest] = args;
    const { values } = parseArgs({
      args: rest,
      options: {
        out: { type: 'string' },
        key: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      strict: true,
    });
    let key;
    if (sub === 'new') {
      if (values.out === undefined) throw new UsageError('keys new needs --out FILE');
      key = generateKeyPair();
      saveKeyFile(values.out, key);
    } else if (sub === 'show') {
      if (values.key === undefined) throw new UsageError('keys show needs --key FILE');
      key = loadKeyFile(values.key);
    } else {
      throw new UsageError('a subcommand: new or show');
    }
    const shown = { publicKey: toHex(key.publicKey), address: formatAddress(key.address) };
    if (values.json) io.out(JSON.stringify(shown));
    else io.out(`public key  ${shown.publicKey}\naddress     ${shown.address}`);
    return 0;
  },
};
