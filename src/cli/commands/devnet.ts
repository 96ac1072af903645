import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig, parseHostPort } from '../../node/config.ts';
import { configError } from '../../node/errors.ts';
import { startBots } from '../../node/bots/bots.ts';
import type { RunningBots } from '../../node/bots/bots.ts';
import { checkInitOptions, initNetwork } from '../../node/init.ts';
import { StorageError } from '../../node/storage/errors.ts';
import { lockHolder } from '../../node/storage/lock.ts';
import { DEFAULT_NODE_URL, parseCount } from './query.ts';
import type { Command, CommandOptions, Io } from '../io.ts';
import { UsageError } from '../io.ts';
import { ZommaError } from '../../lib/errors.ts';

/** Validators of a new chain unless --validators says otherwise. */
const DEVNET_VALIDATORS_DEFAULT = 4;
const BIN = fileURLToPath(new URL('../../../bin/zomma.js', import.meta.url));
/** How long a validator may take to answer its health check after spawning. */
const START_TIMEOUT_MS = 60_000;
/** How long a validator may take to exit after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 10_000;
const PROGRESS_EVERY_MS = 5_000;
/** The longest --duration a timer can hold (2^31 − 1 ms); a longer one would fire at once. */
const DURATION_S_MAX = 2_147_483;
/** Quicker than the production defaults: every devnet validator is on this machine. */
const DEVNET_TIMEOUTS = {
  proposeMs: 1_000,
  prevoteMs: 500,
  precommitMs: 500,
  deltaMs: 250,
  maxMs: 10_000,
};

interface Child {
  readonly name: string;
  readonly home: string;
  readonly metrics: string;
  readonly api: string;
  readonly process: ChildProcess;
  exited: boolean;
  /** It exited before the devnet stopped it. */
  lostWhileRunning: boolean;
  /** The height it last reported to the progress line. */
  lastHeight: number | null;
}

/** What run() gives util.parseArgs; main() names the nearest of them for an unknown option. */
const OPTIONS = {
  validators: { type: 'string' },
  dir: { type: 'string', default: '.zomma/devnet' },
  reset: { type: 'boolean', default: false },
  duration: { type: 'string' },
  'base-port': { type: 'string', default: '27000' },
  'no-bots': { type: 'boolean', default: false },
} as const satisfies CommandOptions;

export const command: Command = {
  name: 'devnet',
  options: OPTIONS,
  summary: 'run a local network of validators, one process each',
  usage:
    'zomma devnet [--validators N] [--dir DIR] [--reset] [--duration SECONDS] [--base-port P] [--no-bots]\n' +
    '  defaults: 4 validators in .zomma/devnet, base port 27000 (validator i: peers P+3i, API +1, metrics +2);\n' +
    '  a new chain unless DIR holds one, which keeps its ports and runs all its validators (--reset, or another\n' +
    '  --validators, starts over); --duration stops it by itself',
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: OPTIONS,
      strict: true,
    });
    const asked =
      values.validators === undefined ? null : parseCount(values.validators, '--validators');
    const basePort = parseCount(values['base-port'], '--base-port');
    const durationS = values.duration === undefined ? null : Number(values.duration);
    // Decimal only, as every other number a flag takes: Number() also reads "0x10" and "1e3".
    const decimal = values.duration === undefined || /^[0-9]+(\.[0-9]+)?$/.test(values.duration);
    if (durationS !== null && !(decimal && durationS > 0 && durationS <= DURATION_S_MAX)) {
      throw new UsageError(
        `--duration must be a positive number of seconds, at most ${DURATION_S_MAX}`,
      );
    }
    const dir = values.dir;
    // An empty path (an unset variable in a script) would write the homes into the current directory.
    if (dir === '') throw new UsageError('--dir must name a directory');
    // Before anything is deleted or written: a devnet running on this
    // directory would lose its chain under it (and then fail on the ports).
    refuseIfRunning(dir);
    const held = values.reset ? 0 : chainValidators(dir);
    // A resume runs every validator of the chain: fewer than 2/3 of them never commit.
    const resumed = held > 0 && (asked === null || asked === held);
    const n = resumed ? held : (asked ?? DEVNET_VALIDATORS_DEFAULT);
    const homes = Array.from({ length: n }, (_, i) => join(dir, `validator-${i}`));
    if (!resumed) {
      const init = {
        validators: n,
        out: dir,
        basePort,
        genesisTimeMs: Date.now(),
        oracleSeed: 1,
        timeouts: DEVNET_TIMEOUTS,
        snapshotEveryHeights: 50,
      };
      // A bad --validators or --base-port is refused before the old chain is deleted.
      checkInitOptions(init);
      clearForNewChain(dir);
      initNetwork(init);
      io.out(`devnet: new chain, ${n} validators in ${dir}`);
    } else {
      io.out(`devnet: resuming the chain in ${dir}, ${n} validators (--reset starts over)`);
    }

    const children: Child[] = [];
    let bots: RunningBots | null = null;
    let stopping = false;
    let wake: () => void = () => {};
    const stopped = new Promise<void>((resolve) => (wake = resolve));
    // Ctrl-C while starting ends the start too: the terminal signals the
    // validators as well, and one that exits then is no failure to report.
    let interrupted = false;
    const onSignal = (): void => {
      interrupted = true;
      wake();
    };
    const isInterrupted = (): boolean => interrupted;
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // A closed terminal: its validators would stay up (they take SIGHUP to
    // reopen their logs). Listened to until they are stopped: with no
    // listener left, a second SIGHUP would end the devnet before them.
    process.on('SIGHUP', onSignal);
    try {
      const configs = homes.map((home) => loadConfig(home));
      // Another node on one of these ports (an earlier devnet, say) would answer
      // the health checks in this validator's place, and the bots would trade on its chain.
      for (const config of configs) {
        for (const address of [config.listen, config.api, config.metrics]) {
          if (address !== null && !(await canListen(address))) {
            throw new ZommaError(
              'DevnetStartFailed',
              `${config.moniker}: ${address} is already in use (another devnet?` +
                (resumed
                  ? ` this chain keeps the ports it was made with: --reset --base-port P starts one on others, or --dir another)`
                  : ' --base-port picks other ports)'),
            );
          }
        }
      }
      for (const [i, home] of homes.entries()) {
        const config = configs[i]!;
        const child = spawn(process.execPath, [BIN, 'node', '--home', home, '--quiet'], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        const entry: Child = {
          name: config.moniker,
          home,
          metrics: config.metrics ?? '',
          api: config.api ?? '',
          process: child,
          exited: false,
          lostWhileRunning: false,
          lastHeight: null,
        };
        child.stderr?.on('data', (chunk: Buffer) =>
          io.err(`[${entry.name}] ${chunk.toString().trimEnd()}`),
        );
        child.once('exit', (code, signal) => {
          entry.exited = true;
          if (!stopping) {
            entry.lostWhileRunning = !interrupted;
            io.err(
              `[${entry.name}] exited (${signal ?? `code ${code}`}); see ${join(home, 'node.log')}`,
            );
          }
        });
        children.push(entry);
      }
      for (const c of children) {
        io.out(`devnet: starting ${c.name} (pid ${c.process.pid}) …`);
        if (!(await waitHealthy(c, START_TIMEOUT_MS, resumed, isInterrupted))) return 0;
      }
      const first = children[0]!;
      const apiUrl = `http://${first.api}`;
      if (!(await waitApi(apiUrl, START_TIMEOUT_MS, isInterrupted))) return 0;
      if (!values['no-bots']) {
        io.out('devnet: starting the market maker and the taker …');
        let errorsShown = 0;
        bots = await startBots({
          url: apiUrl,
          dir: join(dir, 'bots'),
          onEvent: (e) => {
            // A few errors tell what is wrong; hundreds would bury the progress lines.
            if (e.type === 'error' && errorsShown++ < 5) {
              io.err(`devnet: ${e.bot}: ${e.code}: ${e.message}`);
            }
          },
        });
        io.out(`devnet: market maker ${bots.maker}, taker ${bots.taker}`);
      }
      const node = apiUrl === DEFAULT_NODE_URL ? '' : ` --node ${apiUrl}`;
      io.out('');
      io.out('devnet is up:');
      for (const c of children)
        io.out(
          `  ${c.name}  API http://${c.api}  WebSocket ws://${c.api}/v1/ws  metrics http://${c.metrics}/metrics`,
        );
      io.out(`  dashboard  ${apiUrl}/ui/`);
      io.out('');
      io.out('try:');
      io.out(`  npx zomma query status${node}`);
      io.out(`  npx zomma query book BTC-PERPETUAL${node}`);
      io.out(`  npx zomma tx faucet 10000${node}          (creates .zomma/key.json)`);
      io.out(`  npx zomma tx order BTC-PERPETUAL buy 10 --market${node}`);
      io.out(`  npx zomma query account${node}`);
      io.out(`  curl -s ${apiUrl}/v1/ticker/BTC-PERPETUAL`);
      io.out(`  curl -s http://${first.metrics}/metrics | grep zomma_height`);
      io.out('Ctrl-C stops everything; running again resumes from disk (--reset starts over).');
      const running = bots;
      const progress = setInterval(
        () => void printProgress(io, children, running, false),
        PROGRESS_EVERY_MS,
      );
      const timer = durationS === null ? null : setTimeout(() => wake(), durationS * 1_000);
      await stopped;
      clearInterval(progress);
      if (timer !== null) clearTimeout(timer);
      await printProgress(io, children, running, interrupted);
    } finally {
      stopping = true;
      try {
        if (bots !== null) await bots.stop();
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        try {
          await stopAll(children);
        } finally {
          process.off('SIGHUP', onSignal);
        }
        io.out('devnet: stopped');
      }
    }
    // A run some validator did not last through (--duration in a script, say) is no success.
    const lost = children.filter((c) => c.lostWhileRunning).map((c) => c.name);
    if (lost.length > 0) {
      io.err(`devnet: ${lost.join(', ')} exited while the devnet ran (see node.log)`);
      return 1;
    }
    return 0;
  },
};

/** A validator's home in a devnet's directory. */
const HOME_ENTRY = /^validator-[0-9]+$/;

/** What a devnet writes in its directory: the validators' homes and the bots' keys. */
const isDevnetEntry = (name: string): boolean => HOME_ENTRY.test(name) || name === 'bots';

/**
 * Empties `dir` of an earlier devnet for a new chain. Anything else in it
 * refuses the start before anything is deleted: a --dir pointed at a folder
 * of one's own (`.zomma`, which holds the trader's key; a project) must not
 * be wiped with it.
 */
function clearForNewChain(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw configError('--dir', `cannot use ${dir} (${(error as NodeJS.ErrnoException).code})`);
  }
  const foreign = names.filter((name) => !isDevnetEntry(name)).sort();
  if (foreign.length > 0) {
    const shown = foreign.slice(0, 3).join(', ') + (foreign.length > 3 ? ', …' : '');
    throw configError(
      '--dir',
      `${dir} holds ${shown}, which no devnet wrote: a new chain deletes what the directory holds, so give a new or devnet-only --dir (nothing was deleted)`,
    );
  }
  for (const name of names) rmSync(join(dir, name), { recursive: true, force: true });
}

/** How many validator homes (validator-0, validator-1, …) `dir` holds a chain of; 0: none. */
function chainValidators(dir: string): number {
  let n = 0;
  while (existsSync(join(dir, `validator-${n}`, 'config.json'))) n++;
  return n;
}

/** DevnetStartFailed if a live process holds the lock of a home in `dir` (a devnet running there), or one holds no pid. */
function refuseIfRunning(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return;
  }
  // The homes only: anything else there is no node's (and a new chain refuses it).
  for (const name of names.filter((n) => HOME_ENTRY.test(n))) {
    let pid: number | null;
    try {
      pid = lockHolder(join(dir, name, 'data'));
    } catch (error) {
      // A lock holding no pid may be held: nothing is deleted or started on it.
      if (error instanceof StorageError && error.code === 'StorageLockUnreadable') {
        throw new ZommaError('DevnetStartFailed', `${name} of ${dir}: ${error.message}`);
      }
      throw error;
    }
    if (pid !== null) {
      throw new ZommaError(
        'DevnetStartFailed',
        `${name} of ${dir} is running (pid ${pid}): stop that devnet first (Ctrl-C in its terminal), or give this one another --dir (if that process is no node, delete ${join(dir, name, 'data', 'LOCK')})`,
      );
    }
  }
}

/** Whether this process could listen on "host:port" now (it stops listening at once). */
async function canListen(address: string): Promise<boolean> {
  const { host, port } = parseHostPort(address, 'address');
  const server = createServer();
  return new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

async function fetchJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  return res.json();
}

/**
 * A validator of the devnet did not come up: the reason is in its log (and
 * was relayed from its stderr). A chain resumed from disk may have been
 * written by an earlier, incompatible build: the hint says how to start over.
 */
function startFailed(child: Child, what: string, resumed: boolean): ZommaError {
  const hint = resumed
    ? '; if this chain was written by an earlier build of zomma, start a new one with --reset (npm start -- --reset)'
    : '';
  return new ZommaError(
    'DevnetStartFailed',
    `${child.name} ${what}; see ${join(child.home, 'node.log')}${hint}`,
  );
}

/** True once the validator answers; false if a stop was asked for (Ctrl-C) first. */
async function waitHealthy(
  child: Child,
  timeoutMs: number,
  resumed: boolean,
  interrupted: () => boolean,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (interrupted()) return false;
    if (child.exited) throw startFailed(child, 'exited while starting', resumed);
    try {
      await fetchJson(`http://${child.metrics}/health`);
      return true;
    } catch {
      if (Date.now() > deadline)
        throw startFailed(child, `did not start within ${timeoutMs} ms`, resumed);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** True once the API answers; false if a stop was asked for (Ctrl-C) first. */
async function waitApi(
  url: string,
  timeoutMs: number,
  interrupted: () => boolean,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (interrupted()) return false;
    try {
      const res = await fetch(`${url}/v1/status`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new ZommaError(
        'DevnetStartFailed',
        `the API at ${url} did not answer in ${timeoutMs} ms`,
      );
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function printProgress(
  io: Io,
  children: readonly Child[],
  bots: RunningBots | null,
  interrupted: boolean,
): Promise<void> {
  const parts = await Promise.all(
    children.map(async (c) => {
      // After Ctrl-C the validators stop too: one that no longer answers has
      // stopped, and the line says the height it was last seen at.
      const gone = interrupted ? 'stopped' : c.exited ? 'down' : 'not answering';
      const last = c.lastHeight === null ? '' : ` (last seen at h${c.lastHeight})`;
      if (c.exited) return `${c.name}: ${gone}${last}`;
      try {
        const s = (await fetchJson(`http://${c.metrics}/status`)) as {
          height: number;
          peers: number;
        };
        c.lastHeight = s.height;
        return `${c.name}: h${s.height} (${s.peers} peers)`;
      } catch {
        return `${c.name}: ${gone}${last}`;
      }
    }),
  );
  const s = bots?.stats;
  const trading =
    s === undefined
      ? ''
      : `  | quotes ${s.quotes}, takes ${s.takes} (${s.filledLots} lots filled), errors ${s.errors}`;
  io.out(`devnet: ${parts.join('  ')}${trading}`);
}

/** SIGTERM by PID, then SIGKILL for any that do not exit in time: nothing is left running. */
async function stopAll(children: readonly Child[]): Promise<void> {
  const exits = children.map(
    (c) =>
      new Promise<void>((resolve) => {
        if (c.exited) return resolve();
        c.process.once('exit', () => resolve());
        c.process.kill('SIGTERM');
        const force = setTimeout(() => {
          if (!c.exited) c.process.kill('SIGKILL');
        }, STOP_TIMEOUT_MS);
        c.process.once('exit', () => clearTimeout(force));
      }),
  );
  await Promise.all(exits);
}
