// `zomma stress`: replay price and volatility paths on a state snapshot
// through the real state machine and report liquidations, deleveraging, the
// insurance fund and bad debt (docs/stress.md). Also builds a state to stress.

import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  type Command,
  type CommandOptions,
  type Io,
  UsageError,
  checkFlagFile,
  writeFlagFile,
} from '../io.ts';
import {
  AMOUNT_QUOTE_MAX,
  STRESS_ACCOUNTS_MAX,
  STRESS_BLOCK_MS_MAX,
  STRESS_SCENARIO_BYTES_MAX,
} from '../../lib/limits.ts';
import { encodeSnapshot } from '../../exchange/index.ts';
import type { Exchange } from '../../exchange/index.ts';
import {
  BUILTIN_SCENARIOS,
  GENERATE_INSURANCE_QUOTE,
  GENERATE_OPTION_SHARE_PCT,
  ScenarioError,
  blockMsProblem,
  buildReport,
  builtinScenario,
  generateState,
  loadState,
  parseDecimal,
  parseScenario,
  reportHtml,
  reportJson,
  reportText,
  runStress,
  usd,
  withBlockMs,
} from '../../sim/stress/index.ts';
import type { GenerateSummary, Scenario } from '../../sim/stress/index.ts';

const USAGE = `zomma stress --state FILE --scenario NAME|FILE [--json] [--html FILE] [--no-check] [--block-ms MS]
       zomma stress --generate N [--seed S] [--insurance USD] [--option-share PCT] (--out FILE | --scenario NAME|FILE …)
       zomma stress generate --accounts N --out FILE [--seed S] [--insurance USD] [--option-share PCT]
       zomma stress --list

  --state FILE       an exchange snapshot: one written by --generate/--out, or a node's
                     .zomma/devnet/<validator>/data/snapshots/snapshot-<height>.snap
  --scenario S       a built-in (crash-40, gap-up-25, oracle-freeze, smile-freeze) or a JSON scenario file
  --json             print the report as one JSON object (money in quote units, 6 decimals)
  --html FILE        also write an HTML page with price and insurance-fund charts (inline SVG)
  --no-check         skip the whole-state invariant check after every block (faster on big states)
  --block-ms MS      sample the scenario at this block interval instead of its own (coarser: faster)
  --generate N       build a state of N funded accounts with leveraged long and short positions
  --option-share PCT percent of the generated pairs trading options and dated futures (default ${GENERATE_OPTION_SHARE_PCT};
                     0: perpetuals only, no listing)
  --accounts N       the same, for the generate subcommand
  --seed S           seed of the generated state (default 1)
  --insurance USD    insurance fund of the generated state (default ${usd(GENERATE_INSURANCE_QUOTE)})
  --out FILE         write the generated state's snapshot there
  --list             list the built-in scenarios`;

/**
 * A flag's integer in [min, max]. Every flag the generation or the run would
 * refuse is refused here, as a usage error naming the flag (exit 2), before
 * anything is built.
 */
function integer(
  value: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
  return n;
}

function insurance(value: string | undefined): bigint {
  if (value === undefined) return GENERATE_INSURANCE_QUOTE;
  let quote: bigint;
  try {
    quote = parseDecimal(value, 'insurance', 6);
  } catch {
    throw new UsageError('--insurance must be a non-negative amount in USD, e.g. 250000');
  }
  if (quote > AMOUNT_QUOTE_MAX) {
    throw new UsageError(`--insurance must be at most ${usd(AMOUNT_QUOTE_MAX)}`);
  }
  return quote;
}

function blockInterval(scenario: Scenario, value: string): Scenario {
  const blockMs = integer(value, 'block-ms', scenario.blockMs, 1, STRESS_BLOCK_MS_MAX);
  const problem = blockMsProblem(scenario, blockMs);
  if (problem !== undefined) throw new UsageError(`--block-ms ${value}: ${problem}`);
  return withBlockMs(scenario, blockMs);
}

function readScenario(spec: string): Scenario {
  const builtin = builtinScenario(spec);
  if (builtin !== undefined) return builtin;
  let text: string;
  try {
    if (statSync(spec).size > STRESS_SCENARIO_BYTES_MAX) {
      throw new ScenarioError('scenario', `file larger than ${STRESS_SCENARIO_BYTES_MAX} bytes`);
    }
    text = readFileSync(spec, 'utf8');
  } catch (error) {
    if (error instanceof ScenarioError) throw error;
    throw new UsageError(
      `--scenario ${spec}: neither a built-in (${Object.keys(BUILTIN_SCENARIOS).join(', ')}) nor a readable file`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ScenarioError('scenario', `not JSON: ${(error as Error).message}`);
  }
  return parseScenario(json);
}

function readState(path: string, check: boolean): Exchange {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch {
    // As a --scenario that is no readable file: a usage error (exit 2); a
    // state file read but not decodable is the input's error (exit 1).
    throw new UsageError(`--state ${path}: not a readable file`);
  }
  return loadState(bytes, { checkInvariants: check }).exchange;
}

function generated(
  io: Io,
  summary: GenerateSummary,
  out: string | undefined,
  quiet: boolean,
): void {
  if (quiet) return;
  io.err(
    `generated ${summary.accounts} accounts (${summary.withPositions} with positions, open interest ${usd(summary.openInterestQuote)}; ${summary.optionAccounts} holding ${summary.optionLots} option lots, ${summary.futureAccounts} a dated future, ${summary.listedMarkets} listed markets) in ${summary.blocks} blocks` +
      (out === undefined ? '' : `; snapshot written to ${out}`),
  );
}

/** What run() gives util.parseArgs; main() names the nearest of them for an unknown option. */
const OPTIONS = {
  state: { type: 'string' },
  scenario: { type: 'string' },
  json: { type: 'boolean' },
  html: { type: 'string' },
  'no-check': { type: 'boolean' },
  generate: { type: 'string' },
  accounts: { type: 'string' },
  seed: { type: 'string' },
  insurance: { type: 'string' },
  out: { type: 'string' },
  list: { type: 'boolean' },
  'block-ms': { type: 'string' },
  'option-share': { type: 'string' },
} as const satisfies CommandOptions;

export const command: Command = {
  name: 'stress',
  options: OPTIONS,
  summary: 'replay price paths on a state snapshot: liquidations, deleveraging, insurance fund',
  usage: USAGE,
  async run(args, io) {
    const sub = args[0] === 'generate';
    const { values, positionals } = parseArgs({
      args: sub ? args.slice(1) : args,
      strict: true,
      allowPositionals: true,
      options: OPTIONS,
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
    if (values.list === true) {
      // Anything beside it would be silently dropped: a run asked for would not
      // happen, and --json would still get the table.
      const other = Object.keys(values).find((name) => name !== 'list');
      if (sub || other !== undefined) {
        throw new UsageError(`--list takes no other option (${sub ? 'generate' : `--${other}`})`);
      }
      for (const [name, json] of Object.entries(BUILTIN_SCENARIOS)) {
        io.out(`${name.padEnd(14)}  ${(json as { description: string }).description}`);
      }
      return 0;
    }
    const check = values['no-check'] !== true;
    if (sub && values.generate !== undefined) throw new UsageError('generate takes --accounts N');
    if (!sub && values.accounts !== undefined) {
      throw new UsageError('--accounts goes with generate: use --generate N');
    }
    const accountsArg = sub ? values.accounts : values.generate;
    if (sub && accountsArg === undefined) throw new UsageError('generate needs --accounts N');
    if (sub && values.out === undefined) throw new UsageError('generate needs --out FILE');
    if (sub && values.scenario !== undefined) {
      throw new UsageError('generate does not run scenarios: use --generate N --scenario …');
    }
    // A state built and dropped would cost the generation and show nothing.
    if (
      !sub &&
      accountsArg !== undefined &&
      values.out === undefined &&
      values.scenario === undefined
    ) {
      throw new UsageError('--generate N needs --out FILE or --scenario NAME|FILE');
    }
    if (accountsArg !== undefined && values.state !== undefined) {
      throw new UsageError('--state and --generate are exclusive');
    }
    // Options only generation reads: with --state they would be silently ignored.
    if (accountsArg === undefined) {
      for (const name of ['seed', 'insurance', 'option-share', 'out'] as const) {
        if (values[name] !== undefined) throw new UsageError(`--${name} goes with --generate N`);
      }
    }
    // Options only a run reads: a generation with no scenario would write no
    // page, print no report and check nothing, and say nothing of it.
    if (values.scenario === undefined) {
      for (const name of ['html', 'json', 'no-check', 'block-ms'] as const) {
        if (values[name] !== undefined) {
          throw new UsageError(`--${name} goes with --scenario NAME|FILE (a run's report)`);
        }
      }
    }

    // Every flag's value, the scenario and where the output goes are checked
    // before a state is built or read: a typo should not cost a generation
    // of thousands of accounts, nor a run.
    const accounts =
      accountsArg === undefined
        ? undefined
        : integer(accountsArg, sub ? 'accounts' : 'generate', 0, 2, STRESS_ACCOUNTS_MAX);
    const seed = integer(values.seed, 'seed', 1, 0, Number.MAX_SAFE_INTEGER);
    const insuranceQuote = insurance(values.insurance);
    const optionSharePct = integer(
      values['option-share'],
      'option-share',
      GENERATE_OPTION_SHARE_PCT,
      0,
      100,
    );
    if (values.out !== undefined) checkFlagFile('out', values.out);
    if (values.html !== undefined) checkFlagFile('html', values.html);
    const own = values.scenario === undefined ? undefined : readScenario(values.scenario);
    const blockMs = values['block-ms'];
    const scenario = own === undefined || blockMs === undefined ? own : blockInterval(own, blockMs);

    let exchange: Exchange;
    if (accounts !== undefined) {
      const result = generateState({ accounts, seed, insuranceQuote, optionSharePct });
      exchange = result.exchange;
      if (values.out !== undefined) writeFlagFile('out', values.out, encodeSnapshot(exchange));
      generated(io, result.summary, values.out, values.json === true);
      if (scenario === undefined) return 0;
    } else {
      if (values.state === undefined) throw new UsageError('give --state FILE or --generate N');
      if (scenario === undefined) throw new UsageError('give --scenario NAME|FILE');
      exchange = readState(values.state, check);
    }
    const report = buildReport(runStress(exchange, scenario, { checkInvariants: check }));
    if (values.html !== undefined) writeFlagFile('html', values.html, reportHtml(report));
    io.out(values.json === true ? reportJson(report) : reportText(report));
    return 0;
  },
};
