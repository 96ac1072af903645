import { parseArgs } from 'node:util';
import { formatAddress, generateKeyPair, loadKeyFile, saveKeyFile } from '../../crypto/index.ts';
import { toHex } from '../../lib/bytes.ts';
import type { Command } from '../io.ts';
import { UsageError } from '../io.ts';
import { DEFAULT_KEY_FILE } from './query.ts';

export const command: Command = {
  name: 'keys',
  summary: 'create or show an Ed25519 key file',
  usage:
    'zomma keys new --out FILE [--json] | zomma keys show [--key-file FILE] [--json]\n' +
    `  show reads ${DEFAULT_KEY_FILE} by default, the key \`zomma tx\` and \`zomma query\` use`,
  async run(args, io) {
    const [sub, ...rest] = args;
    const { values } = parseArgs({
      args: rest,
      options: {
        out: { type: 'string' },
        'key-file': { type: 'string' },
        // The first spelling of --key-file, still taken.
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
      if (values.key !== undefined && values['key-file'] !== undefined) {
        throw new UsageError('keys show takes one of --key-file and --key');
      }
      key = loadKeyFile(values['key-file'] ?? values.key ?? DEFAULT_KEY_FILE);
    } else {
      throw new UsageError(
        sub === undefined
          ? 'which subcommand? new or show'
          : `unknown subcommand '${sub}': new or show`,
      );
    }
    const shown = { publicKey: toHex(key.publicKey), address: formatAddress(key.address) };
    if (values.json) io.out(JSON.stringify(shown));
    else io.out(`public key  ${shown.publicKey}\naddress     ${shown.address}`);
    return 0;
  },
};
