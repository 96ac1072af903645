import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatAddress, generateKeyPair, loadKeyFile, saveKeyFile } from '../../crypto/index.ts';
import { toHex } from '../../lib/bytes.ts';
import type { Command, CommandOptions } from '../io.ts';
import { InputError, UsageError } from '../io.ts';
import { ZommaError } from '../../lib/errors.ts';
import { DEFAULT_KEY_FILE } from './query.ts';

/** What run() gives util.parseArgs; main() names the nearest of them for an unknown option. */
const OPTIONS = {
  out: { type: 'string' },
  'key-file': { type: 'string' },
  // The first spelling of --key-file, still taken.
  key: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const satisfies CommandOptions;

export const command: Command = {
  name: 'keys',
  options: OPTIONS,
  summary: 'create or show an Ed25519 key file',
  usage:
    'zomma keys new --out FILE [--json] | zomma keys show [--key-file FILE] [--json]\n' +
    `  show reads ${DEFAULT_KEY_FILE} by default, the key \`zomma tx\` and \`zomma query\` use`,
  async run(args, io) {
    const [sub, ...rest] = args;
    const { values } = parseArgs({
      args: rest,
      options: OPTIONS,
      strict: true,
    });
    let key;
    // A flag of the other subcommand is refused, not ignored: `keys show --out
    // FILE` would otherwise print the default key as if FILE held it.
    const other = sub === 'new' ? ['key-file', 'key'] : sub === 'show' ? ['out'] : [];
    for (const flag of other) {
      if (values[flag as keyof typeof values] !== undefined) {
        throw new UsageError(`keys ${sub} takes no --${flag}`);
      }
    }
    if (sub === 'new') {
      if (values.out === undefined) throw new UsageError('keys new needs --out FILE');
      const out = values.out;
      const made = generateKeyPair();
      asInput(`--out ${out}`, () => saveKeyFile(out, made));
      key = made;
    } else if (sub === 'show') {
      if (values.key !== undefined && values['key-file'] !== undefined) {
        throw new UsageError('keys show takes one of --key-file and --key');
      }
      const path = values['key-file'] ?? values.key ?? DEFAULT_KEY_FILE;
      if (!existsSync(path)) {
        throw new InputError(
          'NoKeyFile',
          `no key file at ${path}; create one with: zomma keys new --out ${path}`,
        );
      }
      key = asInput(path, () => loadKeyFile(path));
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

/** A key file that cannot be read or written is the user's to fix: exit 2, with its code. */
function asInput<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (error) {
    if (error instanceof ZommaError) throw new InputError(error.code, error.message);
    const code = (error as NodeJS.ErrnoException).code;
    // No such directory, no permission, a full disk: as writeFlagFile words it.
    if (typeof code === 'string') throw new UsageError(`${where}: cannot write the file (${code})`);
    throw error;
  }
}
