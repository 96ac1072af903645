// Entry point of the `zomma` command: dispatches to one command, prints its
// errors for people, and turns them into exit codes. The only place (with the
// commands) that prints or exits.

import { COMMANDS } from './commands.ts';
import { parseArgs } from 'node:util';
import { type Command, InputError, type Io, processIo, UsageError } from './io.ts';
import { ZommaError } from '../lib/errors.ts';

function help(io: Io): void {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  io.out(
    [
      'zomma — a Byzantine-fault-tolerant exchange for crypto derivatives',
      '',
      'usage: zomma <command> [options]',
      '',
      'commands:',
      ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
      '',
      "Run 'zomma <command> --help' for a command's options.",
      '',
      'exit status: 0 done; 1 refused or failed after anything was sent (a node',
      'error, a rejected transaction, an unreachable node) or a failed run; 2 a',
      'usage error or bad input found before anything is sent (a flag, a value,',
      'the key file); 3 `zomma node` only: its data directory was replaced while',
      'it ran (do not restart it as it is: docs/operations.md, "Backups").',
    ].join('\n'),
  );
}

export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [first, ...args] = argv;
  // The spelling most tools take; `zomma version` is the command.
  const name = first === '--version' || first === '-V' ? 'version' : first;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    help(io);
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (entry === undefined) {
    io.err(`zomma: unknown command '${name}'`);
    help(io);
    return 2;
  }
  const command = await entry.load();
  if (args.includes('--help') || args.includes('-h')) {
    io.out(`${command.summary}\n\nusage: ${command.usage}`);
    return 0;
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`zomma ${name}: ${error.message}\n\nusage: ${command.usage}`);
      return 2;
    }
    // Loaded here, not up front: most commands never load the SDK.
    const { ZommaRequestRefused } = await import('../api/client/http.ts');
    // Refused before anything was sent: the input is the user's to fix, as a
    // usage error's is. ConfigInvalid names a flag, a path or a field of the
    // home's files, found before a node starts (`init --validators 0`, an
    // `--out` that cannot be written, a bad config.json); HaltHeightReached,
    // a halt height the stored chain has reached already (`node
    // --halt-height`, config.json's haltHeight): a restart would not fix it.
    if (
      error instanceof InputError ||
      error instanceof ZommaRequestRefused ||
      (error instanceof ZommaError &&
        (error.code === 'ConfigInvalid' || error.code === 'HaltHeightReached'))
    ) {
      io.err(`zomma ${name}: ${error.code}: ${error.message}`);
      return 2;
    }
    if (error instanceof ZommaError) {
      io.err(`zomma ${name}: ${error.code}: ${error.message}`);
      return 1;
    }
    if (
      error instanceof TypeError &&
      'code' in error &&
      String(error.code).startsWith('ERR_PARSE_ARGS')
    ) {
      io.err(`zomma ${name}: ${parseArgsMessage(error, command, args)}\n\nusage: ${command.usage}`);
      return 2;
    }
    throw error;
  }
}

/** Edits from a to b (insertions, deletions, substitutions): how far a typo is from a flag. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length]!;
}

/**
 * util.parseArgs's message, for people. An unknown option names the flag of
 * the command's usage it is nearest to (a typo: `--dept` for `--depth`),
 * among those the command takes, instead of Node's advice to put a positional
 * argument that starts with '-' after '--', which fits only a negative number
 * (`tx faucet -5`, `query block -1`) and is then said plainly, with the whole
 * argument (`-10` is read as the options -1 and -0).
 */
export function parseArgsMessage(
  error: TypeError & { code: unknown },
  command: Pick<Command, 'usage' | 'options'>,
  args: readonly string[],
): string {
  if (error.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return error.message;
  // The same reading run() made, without its refusal: the first option it does not take.
  const { tokens } = parseArgs({
    args: [...args],
    options: command.options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const token = tokens.find((t) => t.kind === 'option' && !Object.hasOwn(command.options, t.name));
  if (token?.kind !== 'option') return error.message;
  const option = token.rawName;
  const arg = args[token.index]!;
  // Node gives the advice only where the command takes positional arguments.
  const positionals = error.message.includes('place it at the end of the command');
  if (positionals && /^-\d/.test(arg)) {
    return `Unknown option '${arg}': a value that starts with '-' is read as an option; write it last, after '--' (… -- ${arg})`;
  }
  const taken = new Set(Object.keys(command.options).map((name) => `--${name}`));
  const flags = [...new Set(command.usage.match(/--[a-z][a-z0-9-]*/g) ?? [])].filter((flag) =>
    taken.has(flag),
  );
  let nearest: string | undefined;
  let best = 3; // at most two edits away
  for (const flag of flags) {
    const distance = editDistance(option, flag);
    if (distance < best) [nearest, best] = [flag, distance];
  }
  return `Unknown option '${option}'${nearest === undefined ? '' : ` (did you mean ${nearest}?)`}`;
}
