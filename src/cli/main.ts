// Entry point of the `zomma` command: dispatches to one command, prints its
// errors for people, and turns them into exit codes. The only place (with the
// commands) that prints or exits.

import { COMMANDS } from './commands.ts';
import { InputError, type Io, processIo, UsageError } from './io.ts';
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
      io.err(`zomma ${name}: ${parseArgsMessage(error, command.usage)}\n\nusage: ${command.usage}`);
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
 * instead of Node's advice to put a positional argument that starts with '-'
 * after '--', which fits only a negative number (`tx faucet -5`, `query block
 * -1`) and is then said plainly.
 */
export function parseArgsMessage(error: TypeError & { code: unknown }, usage: string): string {
  const unknown = /^Unknown option '([^']*)'/.exec(error.message);
  if (error.code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || unknown === null) return error.message;
  const option = unknown[1]!;
  if (/^-\d/.test(option)) {
    return `Unknown option '${option}': a value that starts with '-' is read as an option; write it last, after '--' (… -- ${option})`;
  }
  const flags = [...new Set(usage.match(/--[a-z][a-z-]*/g) ?? [])];
  let nearest: string | undefined;
  let best = 3; // at most two edits away
  for (const flag of flags) {
    const distance = editDistance(option, flag);
    if (distance < best) [nearest, best] = [flag, distance];
  }
  return `Unknown option '${option}'${nearest === undefined ? '' : ` (did you mean ${nearest}?)`}`;
}
