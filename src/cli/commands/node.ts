import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { HaltReport } from '../../node/loop.ts';
import { runNode } from '../../node/runtime.ts';
import type { Command } from '../io.ts';
import { UsageError } from '../io.ts';

/**
 * The data directory was replaced under the running node (a backup restored
 * while it ran): its own status, so that a supervisor that restarts on a
 * failure can be told never to restart on this one (systemd's
 * RestartPreventExitStatus, docs/operations.md).
 */
export const EXIT_DATA_REPLACED = 3;

export const command: Command = {
  name: 'node',
  summary: 'run a validator (or full node) from its home directory',
  usage:
    'zomma node --home DIR [--quiet]\n' +
    '  logs go to DIR/node.log and, at info and above, to stdout; --quiet: to node.log only\n' +
    '  exits 0 on SIGINT or SIGTERM, 1 on a halt, 2 on a config error, 3 when its data directory\n' +
    '  was replaced while it ran (StorageReplaced: do not restart it as it is; docs/operations.md)',
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: { home: { type: 'string' }, quiet: { type: 'boolean', default: false } },
      strict: true,
    });
    if (values.home === undefined) throw new UsageError('--home is required');
    let halted: HaltReport | null = null;
    let wake: () => void = () => {};
    const done = new Promise<void>((resolve) => (wake = resolve));
    const running = await runNode({
      home: values.home,
      ...(values.quiet ? {} : { logStream: process.stdout }),
      onHalt: (report) => {
        halted = report;
        wake();
      },
    });
    const stop = (): void => wake();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await done;
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await running.stop();
    if (halted === null) return 0;
    const { code, message, height } = halted as HaltReport;
    // Said on stderr too: with --quiet it is all the journal gets of why.
    io.err(
      `zomma node: halted: ${code}: ${message} (${join(values.home, `halt-${height}.json`)}, node.log)`,
    );
    return code === 'StorageReplaced' ? EXIT_DATA_REPLACED : 1;
  },
};
