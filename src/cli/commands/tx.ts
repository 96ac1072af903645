// `zomma tx faucet|order|cancel|amend|agent|withdraw|transfer|deposit|gov-propose|gov-vote`: signs with the trader's key file and
// submits through the client SDK. By default it waits for the block and shows
// the final result (a rejection in a block, or a drop from the mempool before
// any block, shows the transaction and exits 1); --no-wait returns the hash as
// soon as the node admitted the transaction.

import { parseArgs } from 'node:util';
import { addressOfKey, TX_CODES, TX_DROP_CODES, ZommaApiError } from '../../api/client/index.ts';
import type { TxView, ZommaClient } from '../../api/client/index.ts';
import { parseAddress } from '../../crypto/index.ts';
import { placeOrder } from '../../exchange/tx/index.ts';
import type {
  Action,
  BuiltTx,
  FeeTierValues,
  GovProposal,
  OrderType,
  RiskValues,
  Side,
  TimeInForce,
} from '../../exchange/tx/index.ts';
import { toHex } from '../../lib/bytes.ts';
import { ZommaError } from '../../lib/errors.ts';
import type { Command, CommandOptions } from '../io.ts';
import { InputError, UsageError } from '../io.ts';
import { CLIENT_OPTIONS, clientOf, describeTx, keyOf, parseCount, parseDollars } from './query.ts';

const USAGE = [
  'zomma tx faucet DOLLARS',
  '       zomma tx order INSTRUMENT buy|sell SIZE_LOTS [--price TICKS] [--market] [--ioc|--fok|--post-only]',
  '                      [--reduce-only] [--client-id ID]',
  '                      (--market: IOC within the market slippage of the index; --price TICKS also caps it)',
  '       zomma tx cancel INSTRUMENT ORDER_ID | zomma tx cancel INSTRUMENT --client-id ID',
  '       zomma tx cancel --all [INSTRUMENT]',
  '       zomma tx amend INSTRUMENT ORDER_ID [--price TICKS] [--size LOTS]',
  "                      (--size: the order's whole new size, what it filled included)",
  '       zomma tx agent add AGENT_PUBLIC_KEY [--days N] [--name NAME]   (--days: until it expires, default 30)',
  '       zomma tx agent revoke AGENT_PUBLIC_KEY',
  '                      (an agent trades for the account: zomma tx order … --key-file AGENT.json --account ADDRESS;',
  '                      AGENT_PUBLIC_KEY: 64 hex digits, as zomma keys show --key-file AGENT.json prints it)',
  '       zomma tx withdraw DOLLARS DESTINATION   (DESTINATION: an address on the collateral chain)',
  '       zomma tx transfer DOLLARS TO_SUBACCOUNT   (from --subaccount, to another of your own)',
  '       zomma tx deposit DEPOSIT_ID ADDRESS DOLLARS [TO_SUBACCOUNT]',
  '                      (a validator attests a deposit seen on the collateral chain, signed with',
  '                      its key: --key-file HOME/key.json; validators holding 2/3 of the stake credit it)',
  '                      DEPOSIT_ID: 64 hex digits naming the deposit there; ADDRESS: 0x and 40 hex digits',
  '       zomma tx gov-propose PROPOSAL_ID halt-market|resume-market INSTRUMENT',
  '       zomma tx gov-propose PROPOSAL_ID halt-all|resume-all',
  '       zomma tx gov-propose PROPOSAL_ID set-market-risk INSTRUMENT initialMarginPpm=N maintenanceMarginPpm=N',
  '                      imfStepQuote=N imfStepPpm=N liquidationQuoteMaxPerBlock=N priceBandPpm=N|none',
  '                      openInterestCapLots=N|none',
  '                      (every value, amounts in quote units; none removes the band or the cap)',
  '       zomma tx gov-propose PROPOSAL_ID set-fee-tiers tier=VOLUME:MAKER_PPM:TAKER_PPM …',
  '                      (the whole new schedule, one tier= per tier in ascending VOLUME from 0:',
  '                      lifetime traded notional in quote units; a negative MAKER_PPM is a rebate)',
  '       zomma tx gov-vote PROPOSAL_ID',
  '                      (a validator proposes, which approves, or approves a proposal, signed with its',
  '                      key: --key-file HOME/key.json; approvals of more than 2/3 of the stake carry it)',
  '  options: [--node URL] [--key-file FILE] [--account ADDRESS] [--subaccount N] [--no-wait] [--json]',
  "  --account: the account an agent key signs for (default: the key's own address); an agent signs",
  '  order, cancel and amend only. A flag the transaction does not take is refused.',
  '  the key: --key-file FILE, which must exist (zomma keys new --out FILE), or by default',
  '  .zomma/key.json, which tx faucet creates if it is missing',
].join('\n');

/** What run() gives util.parseArgs; main() names the nearest of them for an unknown option. */
const OPTIONS = {
  ...CLIENT_OPTIONS,
  subaccount: { type: 'string', default: '0' },
  'no-wait': { type: 'boolean', default: false },
  price: { type: 'string' },
  size: { type: 'string' },
  days: { type: 'string' },
  name: { type: 'string' },
  account: { type: 'string' },
  market: { type: 'boolean', default: false },
  ioc: { type: 'boolean', default: false },
  fok: { type: 'boolean', default: false },
  'post-only': { type: 'boolean', default: false },
  'reduce-only': { type: 'boolean', default: false },
  'client-id': { type: 'string' },
  all: { type: 'boolean', default: false },
} as const satisfies CommandOptions;

export const command: Command = {
  name: 'tx',
  options: OPTIONS,
  summary:
    'sign and send a transaction: faucet, order, cancel, amend, agent, withdraw, transfer, deposit, gov-propose, gov-vote',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    const [what, ...rest] = positionals;
    if (what === undefined) throw new UsageError('which transaction?');
    // Checked whatever the transaction, so a bad value is never silently ignored.
    const subaccount = parseCount(values.subaccount, '--subaccount', 0, 255);
    if (values.price !== undefined) parseCount(values.price, '--price');
    if (values.size !== undefined) parseCount(values.size, '--size');
    // Refused, not ignored: --size belongs to an amend (an order's size is its SIZE_LOTS).
    if (values.size !== undefined && what !== 'amend') {
      throw new UsageError(`--size is an amend's; tx ${what} does not take it`);
    }
    // Refused, not ignored: `tx faucet 1 000` would otherwise fund $1.
    const most =
      what === 'faucet'
        ? 1
        : what === 'order'
          ? 3
          : what === 'cancel' && (values.all || values['client-id'] !== undefined)
            ? 1
            : what === 'deposit'
              ? 4
              : what === 'gov-propose'
                ? // proposalOf refuses what its kind does not take (set-fee-tiers takes a tier= each).
                  Number.POSITIVE_INFINITY
                : what === 'gov-vote'
                  ? 1
                  : 2;
    if (rest.length > most) throw new UsageError(`unexpected argument '${rest[most]!}'`);
    for (const flag of ['days', 'name'] as const) {
      if (values[flag] !== undefined && !(what === 'agent' && rest[0] === 'add')) {
        throw new UsageError(`--${flag} is an agent add's; tx ${what} does not take it`);
      }
    }
    // Refused, not ignored: `tx amend … --client-id ID` would amend ORDER_ID all the same.
    const takes = FLAGS_TAKEN[what];
    if (takes !== undefined) {
      for (const flag of ORDER_FLAGS) {
        const given = values[flag];
        if (given !== undefined && given !== false && !takes.includes(flag)) {
          throw new UsageError(`--${flag}: tx ${what} does not take it`);
        }
      }
    }
    const account =
      values.account === undefined ? undefined : addressArg(values.account, '--account');
    // Every argument is read before the key file is touched or the node asked.
    const action = actionOf(what, rest, values, subaccount);
    const client = clientOf(values.node);
    const key = keyOf(values['key-file'], io, what === 'faucet' && account === undefined);
    // An agent may place, cancel and amend only: anything else it signs would
    // be refused in its block (NotPermitted), its nonce spent.
    if (account !== undefined && !AGENT_ACTIONS.includes(what)) {
      const own = addressOfKey(key).toLowerCase();
      if (account !== own) {
        throw new UsageError(
          `--account: tx ${what} is signed by the account's own key, never an agent's ` +
            `(an agent places, cancels and amends only); this key's account is ${own}`,
        );
      }
    }
    const { chainId } = await client.status();
    const trader = client.trader(key, {
      subaccount,
      chainId,
      ...(account !== undefined ? { account } : {}),
    });
    let built: BuiltTx;
    try {
      built = await trader.build(action);
    } catch (error) {
      // The transaction's own rules (a name, an address, a bound): nothing was sent.
      if (error instanceof ZommaError) throw new InputError(error.code, error.message);
      throw error;
    }
    const wait = values['no-wait'] ? 'none' : 'commit';
    let tx: TxView;
    try {
      tx = await finalOf(client, () => client.submitTx(built.bytes, { wait }));
    } catch (error) {
      // No answer (the node stopped while it held the transaction, or hung):
      // it may have been admitted and still commit, and the hash is how to find out.
      if (error instanceof ZommaError && error.code === 'NodeUnreachable') {
        throw new ZommaError(
          error.code,
          `${error.message} (if it reached the node, it may still commit: zomma query tx ${toHex(built.hash)})`,
          { cause: error },
        );
      }
      throw error;
    }
    // The subaccount too: `--subaccount 4` acts on another balance than the default one.
    if (values.json) io.out(JSON.stringify({ account: trader.account, subaccount, ...tx }));
    else io.out(`account ${trader.account} subaccount ${subaccount}\n${describeTx(tx)}`);
    return tx.status === 'rejected' || tx.status === 'dropped' ? 1 : 0;
  },
};

/**
 * The transaction's view, a rejection in a block or a drop from the mempool
 * included: the SDK throws it (with the hash), but a person needs the hash and
 * the code, and --json one object. The node's answer to wait=commit does not
 * tell a rejection in a block from a drop before any block, and the drop codes
 * but Evicted are codes a block could give too (DuplicateNonce, …): the
 * transaction's view, looked up, tells them apart.
 */
async function finalOf(client: ZommaClient, submit: () => Promise<TxView>): Promise<TxView> {
  try {
    return await submit();
  } catch (error) {
    if (!(error instanceof ZommaApiError) || error.hash === undefined) throw error;
    if (error.code === 'CommitTimeout' || error.code === 'Evicted') {
      // It may still commit: the hash is how to find out, and is not in the node's message.
      throw withLookUp(error, error.hash);
    }
    let view: TxView | undefined;
    try {
      view = await client.tx(error.hash);
    } catch {
      view = undefined;
    }
    if (view?.status === 'rejected' || view?.status === 'dropped') return view;
    // Not looked up: only a transaction's code that no drop has says a block refused it.
    const code = TX_CODES.find((c) => c === error.code);
    if (code === undefined || (TX_DROP_CODES as readonly string[]).includes(code)) {
      throw withLookUp(error, error.hash);
    }
    return { hash: error.hash, status: 'rejected', code, message: error.message };
  }
}

/** The node's error, naming the transaction to look up (its message does not). */
function withLookUp(error: ZommaApiError, hash: string): ZommaApiError {
  return new ZommaApiError(error.status, {
    code: error.code,
    message: `${error.message} (zomma query tx ${hash})`,
    hash,
  });
}

/** The action the arguments ask for; a UsageError for any that does not parse. */
function actionOf(
  what: string,
  rest: readonly string[],
  values: Parameters<typeof orderOf>[1] & {
    all: boolean;
    size?: string | undefined;
    days?: string | undefined;
    name?: string | undefined;
  },
  subaccount: number,
): Action {
  switch (what) {
    case 'faucet':
      return { kind: 'faucet', amountQuote: parseDollars(need(rest[0], 'DOLLARS'), 'DOLLARS') };
    case 'order':
      return placeOrder(orderOf(rest, values));
    case 'cancel': {
      if (values.all) {
        return rest[0] === undefined
          ? { kind: 'cancelAll' }
          : { kind: 'cancelAll', instrument: rest[0] };
      }
      const instrument = need(rest[0], 'INSTRUMENT');
      return values['client-id'] !== undefined
        ? { kind: 'cancel', instrument, clientOrderId: values['client-id'] }
        : { kind: 'cancel', instrument, orderId: parseCount(rest[1], 'ORDER_ID') };
    }
    case 'amend': {
      const instrument = need(rest[0], 'INSTRUMENT');
      const orderId = parseCount(need(rest[1], 'ORDER_ID'), 'ORDER_ID');
      if (values.price === undefined && values.size === undefined) {
        throw new UsageError('an amend changes --price TICKS, --size LOTS or both');
      }
      return {
        kind: 'amend',
        instrument,
        orderId,
        ...(values.price !== undefined ? { priceTicks: parseCount(values.price, '--price') } : {}),
        ...(values.size !== undefined ? { sizeLots: parseCount(values.size, '--size') } : {}),
      };
    }
    case 'agent': {
      const verb = need(rest[0], 'add|revoke');
      if (verb !== 'add' && verb !== 'revoke') {
        throw new UsageError(`tx agent ${verb}: add or revoke`);
      }
      const text = need(rest[1], 'AGENT_PUBLIC_KEY');
      if (!/^(0x)?[0-9a-fA-F]{64}$/.test(text)) {
        throw new UsageError(
          'AGENT_PUBLIC_KEY must be 64 hex digits (zomma keys show --key-file AGENT.json prints it)',
        );
      }
      const agentPublicKey = Uint8Array.from(Buffer.from(text.replace(/^0x/, ''), 'hex'));
      if (verb === 'revoke') return { kind: 'revokeAgent', agentPublicKey };
      const days = parseCount(
        values.days ?? String(AGENT_DAYS_DEFAULT),
        '--days',
        1,
        AGENT_DAYS_MAX,
      );
      return {
        kind: 'registerAgent',
        agentPublicKey,
        expiresAtMs: Date.now() + days * DAY_MS,
        ...(values.name !== undefined ? { name: values.name } : {}),
      };
    }
    case 'withdraw':
      return {
        kind: 'withdraw',
        amountQuote: parseDollars(need(rest[0], 'DOLLARS'), 'DOLLARS'),
        destination: need(rest[1], 'DESTINATION'),
      };
    case 'transfer': {
      const amountQuote = parseDollars(need(rest[0], 'DOLLARS'), 'DOLLARS');
      const to = parseCount(need(rest[1], 'TO_SUBACCOUNT'), 'TO_SUBACCOUNT', 0, 255);
      if (to === subaccount)
        throw new UsageError('TO_SUBACCOUNT is the --subaccount it comes from');
      return { kind: 'transfer', fromSubaccount: subaccount, toSubaccount: to, amountQuote };
    }
    case 'deposit': {
      const depositId = need(rest[0], 'DEPOSIT_ID');
      if (!/^(0x)?[0-9a-fA-F]{64}$/.test(depositId)) {
        throw new UsageError('DEPOSIT_ID must be 64 hex digits (32 bytes), 0x allowed');
      }
      const address = need(rest[1], 'ADDRESS');
      let account: Uint8Array;
      try {
        account = parseAddress(address);
      } catch (error) {
        if (error instanceof ZommaError) throw new UsageError(`ADDRESS: ${error.message}`);
        throw error;
      }
      return {
        kind: 'attestDeposit',
        depositId: Uint8Array.from(Buffer.from(depositId.replace(/^0x/, ''), 'hex')),
        account,
        subaccount: rest[3] === undefined ? 0 : parseCount(rest[3], 'TO_SUBACCOUNT', 0, 255),
        amountQuote: parseDollars(need(rest[2], 'DOLLARS'), 'DOLLARS'),
      };
    }
    case 'gov-propose':
      return proposalOf(rest);
    case 'gov-vote':
      return {
        kind: 'govVote',
        proposalId: parseCount(need(rest[0], 'PROPOSAL_ID'), 'PROPOSAL_ID', 0),
        approve: true,
      };
    default:
      throw new UsageError(`unknown transaction '${what}'`);
  }
}

/** setMarketRisk's values, each given as KEY=VALUE (docs/exchange.md, "Risk parameters by governance"). */
const RISK_KEYS = [
  'initialMarginPpm',
  'maintenanceMarginPpm',
  'imfStepQuote',
  'imfStepPpm',
  'liquidationQuoteMaxPerBlock',
  'priceBandPpm',
  'openInterestCapLots',
] as const;

/**
 * One tier of set-fee-tiers: tier=VOLUME:MAKER_PPM:TAKER_PPM, VOLUME a whole
 * number of quote units, the fees integers (the maker's may be negative).
 * The rules of the schedule together (ascending from 0, the bounds, rebates
 * within the smallest taker fee) are the transaction's checks, before sending.
 */
function feeTierOf(arg: string): FeeTierValues {
  const m = /^tier=(\d+):(-?\d+):(\d+)$/.exec(arg);
  if (m === null) {
    throw new UsageError(
      `'${arg}': expected tier=VOLUME:MAKER_PPM:TAKER_PPM (whole numbers; MAKER_PPM may be negative)`,
    );
  }
  const ppm = (text: string, name: string): number => {
    const x = Number(text);
    if (!Number.isSafeInteger(x)) throw new UsageError(`'${arg}': ${name} out of range`);
    return x;
  };
  return {
    volumeQuoteMin: BigInt(m[1]!),
    makerFeePpm: ppm(m[2]!, 'MAKER_PPM'),
    takerFeePpm: ppm(m[3]!, 'TAKER_PPM'),
  };
}

function proposalOf(rest: readonly string[]): Action {
  const proposalId = parseCount(need(rest[0], 'PROPOSAL_ID'), 'PROPOSAL_ID', 0);
  const kind = need(rest[1], 'the proposal');
  let proposal: GovProposal;
  const at = (n: number): Action => {
    if (rest.length > n) throw new UsageError(`unexpected argument '${rest[n]!}'`);
    return { kind: 'govPropose', proposalId, proposal };
  };
  switch (kind) {
    case 'halt-all':
    case 'resume-all':
      proposal = { kind: kind === 'halt-all' ? 'haltAll' : 'resumeAll' };
      return at(2);
    case 'halt-market':
    case 'resume-market':
      proposal = {
        kind: kind === 'halt-market' ? 'haltMarket' : 'resumeMarket',
        instrument: need(rest[2], 'INSTRUMENT'),
      };
      return at(3);
    case 'set-market-risk': {
      const instrument = need(rest[2], 'INSTRUMENT');
      const given = new Map<string, string>();
      for (const pair of rest.slice(3)) {
        const eq = pair.indexOf('=');
        const name = eq < 0 ? pair : pair.slice(0, eq);
        if (eq < 0 || !(RISK_KEYS as readonly string[]).includes(name)) {
          throw new UsageError(`'${pair}': expected one of ${RISK_KEYS.join(', ')} as KEY=VALUE`);
        }
        if (given.has(name)) throw new UsageError(`${name} is given twice`);
        given.set(name, pair.slice(eq + 1));
      }
      // Every value: one left out would not keep the market's (a proposal carries them all).
      for (const name of RISK_KEYS) {
        if (!given.has(name)) throw new UsageError(`${name}=… is required (every value is)`);
      }
      const ppm = (name: string, min: number, max = 1_000_000): number =>
        parseCount(given.get(name), name, min, max);
      const quote = (name: string): bigint => {
        const text = given.get(name)!;
        if (!/^\d+$/.test(text) || BigInt(text) < 1n) {
          throw new UsageError(`${name} must be a whole number of quote units ≥ 1`);
        }
        return BigInt(text);
      };
      const risk: RiskValues = {
        initialMarginPpm: ppm('initialMarginPpm', 1),
        maintenanceMarginPpm: ppm('maintenanceMarginPpm', 1),
        imfStepQuote: quote('imfStepQuote'),
        imfStepPpm: ppm('imfStepPpm', 0),
        liquidationQuoteMaxPerBlock: quote('liquidationQuoteMaxPerBlock'),
      };
      if (given.get('priceBandPpm') !== 'none') {
        risk.priceBandPpm = ppm('priceBandPpm', 1, 999_999);
      }
      if (given.get('openInterestCapLots') !== 'none') {
        risk.openInterestCapLots = parseCount(
          given.get('openInterestCapLots'),
          'openInterestCapLots',
        );
      }
      proposal = { kind: 'setMarketRisk', instrument, risk };
      return at(3 + RISK_KEYS.length);
    }
    case 'set-fee-tiers':
      proposal = { kind: 'setFeeTiers', tiers: rest.slice(2).map(feeTierOf) };
      if (proposal.tiers.length === 0) {
        throw new UsageError('tier=VOLUME:MAKER_PPM:TAKER_PPM is required (one per tier)');
      }
      return at(rest.length);
    default:
      throw new UsageError(
        `unknown proposal '${kind}': halt-market, resume-market, halt-all, resume-all, set-market-risk or set-fee-tiers`,
      );
  }
}

/** The order flags, each taken by the transactions FLAGS_TAKEN names (--size, --days, --name above). */
const ORDER_FLAGS = [
  'price',
  'market',
  'ioc',
  'fok',
  'post-only',
  'reduce-only',
  'client-id',
  'all',
] as const;
const FLAGS_TAKEN: Record<string, readonly (typeof ORDER_FLAGS)[number][]> = {
  faucet: [],
  order: ['price', 'market', 'ioc', 'fok', 'post-only', 'reduce-only', 'client-id'],
  cancel: ['client-id', 'all'],
  amend: ['price'],
  agent: [],
  withdraw: [],
  transfer: [],
  deposit: [],
  'gov-propose': [],
  'gov-vote': [],
};
/** What an agent key may sign for its account (docs/exchange.md, "Agent keys"). */
const AGENT_ACTIONS: readonly string[] = ['order', 'cancel', 'amend'];

/** How long `tx agent add` lets an agent trade unless --days says otherwise. */
const AGENT_DAYS_DEFAULT = 30;
/** A bound on --days that keeps the expiry a safe integer of ms (about 27 years). */
const AGENT_DAYS_MAX = 10_000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** An address argument (0x and 40 hex digits), in lower case; a UsageError otherwise. */
function addressArg(text: string, name: string): string {
  try {
    parseAddress(text);
  } catch (error) {
    if (error instanceof ZommaError) throw new UsageError(`${name}: ${error.message}`);
    throw error;
  }
  return text.toLowerCase();
}

function need(value: string | undefined, name: string): string {
  if (value === undefined) throw new UsageError(`${name} is required`);
  return value;
}

function orderOf(
  rest: readonly string[],
  values: {
    price?: string | undefined;
    market: boolean;
    ioc: boolean;
    fok: boolean;
    'post-only': boolean;
    'reduce-only': boolean;
    'client-id'?: string | undefined;
  },
) {
  const instrument = need(rest[0], 'INSTRUMENT');
  const side = need(rest[1], 'buy|sell');
  if (side !== 'buy' && side !== 'sell') throw new UsageError('the side is buy or sell');
  const sizeLots = parseCount(rest[2], 'SIZE_LOTS');
  const type: OrderType = values.market ? 'market' : 'limit';
  if (type === 'limit' && values.price === undefined) {
    throw new UsageError('a limit order needs --price TICKS (or --market)');
  }
  const tifs = [values.ioc, values.fok, values['post-only']].filter(Boolean).length;
  if (tifs > 1) throw new UsageError('at most one of --ioc, --fok, --post-only');
  const timeInForce: TimeInForce = values.ioc
    ? 'IOC'
    : values.fok
      ? 'FOK'
      : values['post-only']
        ? 'postOnly'
        : type === 'market'
          ? 'IOC'
          : 'GTC';
  return {
    instrument,
    side: side as Side,
    sizeLots,
    type,
    timeInForce,
    reduceOnly: values['reduce-only'],
    ...(values.price !== undefined ? { priceTicks: parseCount(values.price, '--price') } : {}),
    ...(values['client-id'] !== undefined ? { clientOrderId: values['client-id'] } : {}),
  };
}
