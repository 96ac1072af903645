// A restored state behaves identically: a random mix of every kind of action
// (orders of every time in force, reduce-only, self-trade modes, good-til
// times and client ids; amends, cancels, cancelAll; faucet, transfers,
// withdrawals; agents registered, used, expired and revoked; governance halts,
// resumes and changes of risk parameters; deposit attestations; evidence) over validators' oracle votes
// that now and then miss their quorum (staleness) and carry smiles for the
// listed expiries. After every block the node that ran from genesis and a
// node restored from a recent snapshot must give the same results, events and
// appHash, and each restore must re-encode to the same bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Block, BlockResult } from '../../src/exchange/index.ts';
import { Exchange } from '../../src/exchange/index.ts';
import { MS_PER_DAY, daysFromCivil } from '../../src/exchange/instruments/index.ts';
import type { OracleObservation } from '../../src/exchange/oracle/index.ts';
import { decodeSnapshot, encodeSnapshot } from '../../src/exchange/snapshot.ts';
import type { Action, SignedTx } from '../../src/exchange/tx/types.ts';
import type { Key } from './helpers.ts';
import { USDC, VALIDATORS, dailyListingGenesis, key, limit, replacer } from './helpers.ts';

const MINUTE_MS = 60_000;
const START_MS = daysFromCivil(2026, 3, 2) * MS_PER_DAY;
const FLAT_SVI = {
  a: 228_000_000_000_000n,
  b: 0n,
  rho: 0n,
  m: 0n,
  sigma: 100_000_000_000_000_000n,
};

function lcg(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    // The high bits: an LCG's low bits have short periods (the lowest alternates).
    return (s >>> 8) % n;
  };
}

function digestOf(r: BlockResult): string {
  return JSON.stringify({ results: r.results, events: r.events }, replacer);
}

function run(seed: number, blocks: number): Record<string, number> {
  const rnd = lcg(seed);
  const g = dailyListingGenesis(START_MS);
  const main = new Exchange(g, { checkInvariants: true });
  let copy = decodeSnapshot(encodeSnapshot(main), { checkInvariants: true });
  const traders = [0, 1, 2, 3, 4, 5].map((i) => key(`diff-${seed}-${i}`));
  const agents = traders.map((_, i) => key(`diff-agent-${seed}-${i}`));
  const counts: Record<string, number> = {};
  let timeMs = START_MS;
  let nonce = 0;
  let btc = 50_000n * USDC;
  let eth = 3_000n * USDC;
  let proposalId = 0;
  let depositId = 0;
  const tx = (from: Key, action: Action, signer: Key = from, subaccount = 0): SignedTx => ({
    chainId: g.chainId,
    signer: signer.publicKey,
    account: from.address,
    subaccount,
    nonce: timeMs + ++nonce,
    action,
    signature: new Uint8Array(64),
  });
  const orders: { id: number; instrument: string; owner: number; sub: number; cid?: string }[] = [];
  for (let b = 0; b < blocks; b++) {
    timeMs += rnd(5) === 0 ? 40 * MINUTE_MS : 1_000 + rnd(20_000);
    if (rnd(3) === 0) btc += BigInt(rnd(2_001) - 1_000) * USDC;
    if (rnd(3) === 0) eth += BigInt(rnd(61) - 30) * USDC;
    const state = main.state;
    const live = state.markets.filter((m) => !m.retired && m.markTicks > 0);
    const txs: SignedTx[] = [];
    const n = b < 3 ? 0 : rnd(16);
    if (b === 1) {
      for (let i = 0; i < traders.length; i++) {
        txs.push(tx(traders[i]!, { kind: 'faucet', amountQuote: 200_000n * USDC }));
        txs.push(tx(traders[i]!, { kind: 'faucet', amountQuote: 50_000n * USDC }, traders[i], 1));
      }
    }
    for (let i = 0; i < n && live.length > 0; i++) {
      const who = rnd(traders.length);
      const trader = traders[who]!;
      const sub = rnd(4) === 0 ? 1 : 0;
      const signer = rnd(3) === 0 ? agents[who]! : trader;
      // Mostly in the perpetuals, so that books fill and orders cross; the rest in any live market.
      const m = rnd(3) !== 0 ? state.markets[rnd(2)]! : live[rnd(live.length)]!;
      const name = m.params.instrument;
      const r = rnd(100);
      let action: Action;
      if (r < 45) {
        const side = rnd(2) === 0 ? 'buy' : 'sell';
        // Around the mark, half of them through it.
        const width = Math.max(2, Math.floor(m.markTicks / 300));
        const price = Math.max(1, m.markTicks + rnd(2 * width + 1) - width);
        const tifs = ['GTC', 'GTC', 'IOC', 'FOK', 'postOnly'] as const;
        const tif = tifs[rnd(tifs.length)]!;
        const stps = ['cancelResting', 'cancelIncoming', 'cancelBoth'] as const;
        const extra: Parameters<typeof limit>[4] = {
          timeInForce: tif,
          stp: stps[rnd(3)]!,
          reduceOnly: tif !== 'postOnly' && rnd(6) === 0,
        };
        if ((tif === 'GTC' || tif === 'postOnly') && rnd(3) === 0)
          extra.goodTilMs = timeMs + 1 + rnd(60_000);
        if (rnd(3) === 0) extra.clientOrderId = `c${rnd(6)}`;
        if (rnd(8) === 0) {
          action = {
            kind: 'placeOrder',
            instrument: name,
            side,
            type: 'market',
            sizeLots: 1 + rnd(5),
            timeInForce: rnd(2) === 0 ? 'IOC' : 'FOK',
            reduceOnly: rnd(3) === 0,
            stp: 'cancelResting',
          };
        } else action = limit(name, side, price, 1 + rnd(8), extra);
      } else if (r < 60 && orders.length > 0) {
        const o = orders[rnd(orders.length)]!;
        const priceTicks = Math.max(
          1,
          (state.marketByName.get(o.instrument)?.markTicks ?? 2) - 1 + rnd(3),
        );
        action = {
          kind: 'amend',
          instrument: o.instrument,
          orderId: o.id,
          ...(rnd(2) === 0 ? { sizeLots: 1 + rnd(6) } : { priceTicks }),
        };
        txs.push(
          tx(traders[o.owner]!, action, rnd(2) === 0 ? agents[o.owner] : traders[o.owner], o.sub),
        );
        continue;
      } else if (r < 70 && orders.length > 0) {
        const o = orders[rnd(orders.length)]!;
        action =
          o.cid !== undefined && rnd(2) === 0
            ? { kind: 'cancel', instrument: o.instrument, clientOrderId: o.cid }
            : { kind: 'cancel', instrument: o.instrument, orderId: o.id };
        txs.push(tx(traders[o.owner]!, action, traders[o.owner], o.sub));
        continue;
      } else if (r < 73) {
        action = rnd(2) === 0 ? { kind: 'cancelAll' } : { kind: 'cancelAll', instrument: name };
      } else if (r < 77) {
        action = {
          kind: 'transfer',
          fromSubaccount: sub,
          toSubaccount: 1 - sub,
          amountQuote: BigInt(1 + rnd(5_000)) * USDC,
        };
      } else if (r < 80) {
        action = {
          kind: 'withdraw',
          amountQuote: BigInt(1 + rnd(2_000)) * USDC,
          destination: 'dest',
        };
      } else if (r < 83) {
        action = { kind: 'faucet', amountQuote: BigInt(1 + rnd(1_000)) * USDC };
      } else if (r < 88) {
        action = {
          kind: 'registerAgent',
          agentPublicKey: agents[who]!.publicKey,
          expiresAtMs: timeMs + rnd(120_000),
        };
        txs.push(tx(trader, action));
        continue;
      } else if (r < 90) {
        txs.push(tx(trader, { kind: 'revokeAgent', agentPublicKey: agents[who]!.publicKey }));
        continue;
      } else if (r < 97) {
        // A few deposits at a time, each attested by validators in turn (now and then with a wrong amount).
        const v = VALIDATORS[rnd(VALIDATORS.length)]!;
        const d = depositId + rnd(3);
        if (rnd(4) === 0) depositId++;
        const id = new Uint8Array(32);
        id[0] = seed;
        id[1] = d;
        action = {
          kind: 'attestDeposit',
          depositId: id,
          account: traders[d % traders.length]!.address,
          subaccount: d % 2,
          amountQuote: BigInt(1 + (d % 3) + (rnd(8) === 0 ? 1 : 0)) * 1_000n * USDC,
        };
        txs.push(tx(v, action));
        continue;
      } else {
        const v = VALIDATORS[rnd(VALIDATORS.length)]!;
        if (rnd(3) === 0 || proposalId === 0) {
          const kinds = [
            'haltMarket',
            'resumeMarket',
            'resumeMarket',
            'haltAll',
            'resumeAll',
            'resumeAll',
            'setMarketRisk',
          ] as const;
          const kind = kinds[rnd(kinds.length)]!;
          // Risk parameters up and down around the genesis ones (3% / 5%), a
          // band and a cap now and then; on an option, refused.
          const maintenanceMarginPpm = [10_000, 30_000, 60_000][rnd(3)]!;
          const risk = {
            initialMarginPpm: maintenanceMarginPpm + [0, 20_000, 50_000][rnd(3)]!,
            maintenanceMarginPpm,
            imfStepQuote: BigInt(1 + rnd(3)) * 100_000n * USDC,
            imfStepPpm: rnd(3) * 5_000,
            liquidationQuoteMaxPerBlock: BigInt(1 + rnd(4)) * 20_000n * USDC,
            ...(rnd(2) === 0 ? { priceBandPpm: 20_000 + rnd(3) * 40_000 } : {}),
            ...(rnd(3) === 0 ? { openInterestCapLots: 50 + rnd(500) } : {}),
          };
          action = {
            kind: 'govPropose',
            proposalId: ++proposalId,
            proposal:
              kind === 'haltMarket' || kind === 'resumeMarket'
                ? { kind, instrument: name }
                : kind === 'setMarketRisk'
                  ? { kind, instrument: name, risk }
                  : { kind },
          };
        } else
          action = {
            kind: 'govVote',
            proposalId: Math.max(1, proposalId - rnd(2)),
            approve: rnd(5) !== 0,
          };
        txs.push(tx(v, action));
        continue;
      }
      txs.push(tx(trader, action, signer, sub));
    }
    // Three of four validators sign most blocks; now and then only two (a quorum while the
    // others' carried observations are fresh, none after the long gaps: stale after a while).
    const voters = rnd(6) === 0 ? 2 : 3 + rnd(2);
    const dayMs = Math.floor(timeMs / MS_PER_DAY) * MS_PER_DAY;
    const smiles = [0, 1, 2].map((d) => ({
      underlying: 'BTC',
      expiryMs: dayMs + d * MS_PER_DAY + 8 * 60 * MINUTE_MS,
      svi: FLAT_SVI,
    }));
    const observation = (i: number): OracleObservation => ({
      timeMs: timeMs - rnd(2_000),
      prices: [
        { underlying: 'BTC', priceQuote: btc + BigInt(i) * USDC },
        { underlying: 'ETH', priceQuote: eth },
      ],
      smiles: smiles.filter((s) => s.expiryMs > timeMs),
    });
    const block: Block = {
      height: main.state.height + 1,
      timeMs,
      proposer: VALIDATORS[0]!.publicKey,
      txs,
      oracle: {},
      oracleVotes: {
        // Every member, the ones that did not sign without an observation: theirs are carried.
        votes: VALIDATORS.map((v, i) => ({
          validatorIndex: i,
          publicKey: v.publicKey,
          stake: 100n,
          observation: i < voters ? observation(i) : null,
        })),
        totalStake: 400n,
      },
      ...(rnd(150) === 0 ? { evidence: [{ publicKey: VALIDATORS[3]!.publicKey, height: b }] } : {}),
    };
    const a = main.finalizeBlock(block);
    const c = copy.finalizeBlock(block);
    assert.equal(digestOf(c), digestOf(a), `seed ${seed}: results or events differ at block ${b}`);
    assert.deepEqual(c.appHash, a.appHash, `seed ${seed}: appHash differs at block ${b}`);
    a.results.forEach((tr, i) => {
      if (!tr.ok) counts[`tx:${tr.code}`] = (counts[`tx:${tr.code}`] ?? 0) + 1;
      for (const x of tr.actions) {
        if (x.ok && 'order' in x && x.order !== undefined) {
          counts.fills = (counts.fills ?? 0) + x.order.fills.length;
          const status = `status:${x.order.status}:${x.order.reason}`;
          counts[status] = (counts[status] ?? 0) + 1;
        }
        const key = x.ok ? x.kind : `${x.kind}:${x.code}`;
        counts[key] = (counts[key] ?? 0) + 1;
        if (x.ok && x.kind === 'placeOrder' && x.order?.status === 'rested') {
          const t = txs[i]!;
          if (t.action.kind !== 'placeOrder') continue;
          const owner = traders.findIndex((k) => k.address === t.account);
          const entry = {
            id: x.order.orderId,
            instrument: t.action.instrument,
            owner,
            sub: t.subaccount,
          };
          orders.push(
            t.action.clientOrderId === undefined
              ? entry
              : { ...entry, cid: t.action.clientOrderId },
          );
        }
      }
    });
    for (const e of a.events) counts[`event:${e.type}`] = (counts[`event:${e.type}`] ?? 0) + 1;
    if (orders.length > 40) orders.splice(0, orders.length - 40);
    if (b % 7 === 6) {
      const bytes = encodeSnapshot(main);
      copy = decodeSnapshot(bytes, { checkInvariants: true });
      assert.deepEqual(copy.appHash, main.appHash);
      assert.equal(
        createHash('sha256').update(encodeSnapshot(copy)).digest('hex'),
        createHash('sha256').update(bytes).digest('hex'),
      );
    }
  }
  return counts;
}

test('a node restored from a snapshot gives the same results, events and appHash as the one that ran, over every kind of action', () => {
  const total: Record<string, number> = {};
  for (const seed of [1, 2, 3]) {
    for (const [k, v] of Object.entries(run(seed, 220))) total[k] = (total[k] ?? 0) + v;
  }
  // The mix reached what it is meant to reach.
  for (const k of [
    'placeOrder',
    'amend',
    'cancel',
    'transfer',
    'withdraw',
    'attestDeposit',
    'govPropose',
    'event:marketSettled',
    'event:orderExpired',
    'event:depositCredited',
    'placeOrder:OracleStale',
    'fills',
    'event:marketHalted',
    'event:marketResumed',
    'event:marketRiskChanged',
    'tx:NotPermitted',
    'status:cancelled:SelfTrade',
    'status:cancelled:FokUnfillable',
    'event:auctionStarted',
  ]) {
    assert.ok((total[k] ?? 0) > 0, `${k}: ${JSON.stringify(total)}`);
  }
});
