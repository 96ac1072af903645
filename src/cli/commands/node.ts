import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { toHex } from '../../lib/bytes.ts';
import type { HaltHeightStop, HaltReport } from '../../node/loop.ts';
import { runNode } from '../../node/runtime.ts';
import type { RunningNode } from '../../node/runtime.ts';
import type { Command, CommandOptions } from '../io.ts';
import { UsageError } from '../io.ts';

/** --halt-height: a height of at least 1, as config.haltHeight. */
function haltHeightOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError('--halt-height must be a height: an integer of at least 1');
  }
  return n;
}

/**
 * The data directory was replaced under the running node (a backup restored
 * while it ran): its own status, so that a supervisor that restarts on a
 * failure can be told never to restart on this one (systemd's
 * RestartPreventExitStatus, docs/operations.md).
 */
export const EXIT_DATA_REPLACED = 3;

/** What run() gives util.parseArgs; main() names the nearest of them for an unknown option. */
const OPTIONS = {
  home: { type: 'string' },
  quiet: { type: 'boolean', default: false },
  'halt-height': { type: 'string' },
} as const satisfies CommandOptions;

export const command: Command = {
  name: 'node',
  options: OPTIONS,
  summary: 'run a validator (or full node) from its home directory',
  usage:
    'zomma node --home DIR [--quiet] [--halt-height H]\n' +
    '  logs go to DIR/node.log and, at info and above, to stdout; --quiet: to node.log only\n' +
    '  --halt-height H: stop once height H is executed and saved, signing nothing after it\n' +
    '    (overrides "haltHeight" in config.json; for an upgrade that changes execution)\n' +
    '  exits 0 on SIGINT or SIGTERM and at the halt height, 1 on a halt, 2 on a config error\n' +
    '  or a chain already past the halt height (or stopped at it), 3 when its data directory\n' +
    '  was replaced while it ran (StorageReplaced: do not restart it as it is; docs/operations.md)\n' +
    '  SIGHUP reopens DIR/node.log at its path (logrotate), and never ends the node',
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: OPTIONS,
      strict: true,
    });
    if (values.home === undefined) throw new UsageError('--home is required');
    const haltHeight = haltHeightOf(values['halt-height']);
    let halted: HaltReport | null = null;
    let stopped: HaltHeightStop | null = null;
    let wake: () => void = () => {};
    const done = new Promise<void>((resolve) => (wake = resolve));
    // SIGHUP is logrotate's (postrotate, once it has moved node.log away):
    // taken from here to the end, so that it never ends the node, as it would
    // with no listener. systemd counts a process SIGHUP ended as a clean exit
    // and does not restart it (Restart=on-failure). One that comes while the
    // node starts reopens the log once it has started; one during the stop
    // still reopens it (the stop logs its last lines).
    let running: RunningNode | null = null;
    let reopenWanted = false;
    const reopenLog = (): void => {
      if (running === null) reopenWanted = true;
      else running.reopenLog();
    };
    process.on('SIGHUP', reopenLog);
    try {
      const started = await runNode({
        home: values.home,
        ...(values.quiet ? {} : { logStream: process.stdout }),
        onHalt: (report) => {
          halted = report;
          wake();
        },
        ...(haltHeight !== undefined ? { haltHeight } : {}),
        onHaltHeight: (stop) => {
          stopped = stop;
          wake();
        },
      });
      running = started;
      if (reopenWanted) started.reopenLog();
      // Listened to until the stop is over: a second SIGINT or SIGTERM while
      // it stops (a terminal's Ctrl-C reaches a devnet's validators, and the
      // devnet then sends each SIGTERM) would otherwise end the process in
      // the middle of its stop. SIGKILL still ends it at once.
      process.on('SIGINT', wake);
      process.on('SIGTERM', wake);
      try {
        await done;
        await started.stop();
      } finally {
        process.off('SIGINT', wake);
        process.off('SIGTERM', wake);
      }
    } finally {
      process.off('SIGHUP', reopenLog);
    }
    if (halted === null) {
      if (stopped !== null) {
        const { height, appHash } = stopped as HaltHeightStop;
        // Said outside the log too: with --quiet it is all the journal gets.
        io.err(
          `zomma node: stopped at the halt height ${height} (appHash ${toHex(appHash)}); remove the halt height to go on past it`,
        );
      }
      return 0;
    }
    const { code, message, height } = halted as HaltReport;
    // Said on stderr too: with --quiet it is all the journal gets of why.
    io.err(
      `zomma node: halted: ${code}: ${message} (${join(values.home, `halt-${height}.json`)}, node.log)`,
    );
    return code === 'StorageReplaced' ? EXIT_DATA_REPLACED : 1;
  },
};
