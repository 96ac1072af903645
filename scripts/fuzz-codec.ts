// Fuzzes the transaction decoder: seeded random transactions of every action
// type, encoded, then mutated (bit flips, byte sets, truncation, extension,
// insertion, deletion, length-field inflation) or replaced by random bytes.
// Every input must either fail with a DecodeError or decode to a value that
// re-encodes to exactly the input (canonicality). Anything else — another
// exception, a non-canonical success — is a finding. Prints one JSON line.
//
//   npm run fuzz [-- --count 1000000 --seed 1]

import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { DecodeError } from '../src/codec/index.ts';
import { decodeSignedTx, encodeSignedTx } from '../src/exchange/tx/codec.ts';
import type { Action, BatchableAction, GovProposal, SignedTx } from '../src/exchange/tx/types.ts';
import {
  GOV_PROPOSAL_KINDS,
  ORDER_TYPES,
  SIDES,
  STPS,
  TIME_IN_FORCES,
} from '../src/exchange/tx/types.ts';
import { Prng } from '../src/lib/prng.ts';
import { bytesEqual, toHex } from '../src/lib/bytes.ts';

const INSTRUMENTS = ['BTC-PERPETUAL', 'ETH-PERPETUAL', 'BTC-27DEC26', 'BTC-27DEC26-60000-C', ''];
const TEXTS = ['', 'a', 'mm-7-000123', 'é', '日本', '😀x', '0x' + 'ab'.repeat(15)];

function safeInt(p: Prng): number {
  switch (p.int(4)) {
    case 0:
      return p.int(128);
    case 1:
      return p.nextU32();
    case 2:
      return p.int(0x20_0000) * 0x1_0000_0000 + p.nextU32(); // up to 2^53 − 1
    default:
      return p.pick([0, 1, 127, 128, 16_383, 16_384, Number.MAX_SAFE_INTEGER]);
  }
}

function amount(p: Prng): bigint {
  return p.chance(1, 4)
    ? BigInt(p.nextU32() & 0x7fff_ffff) * 0x1_0000_0000n + BigInt(p.nextU32())
    : BigInt(safeInt(p));
}

function text(p: Prng): string {
  return p.chance(1, 2) ? p.pick(TEXTS) : p.pick(INSTRUMENTS);
}

function maybe<T>(p: Prng, make: () => T): T | undefined {
  return p.chance(1, 2) ? make() : undefined;
}

function withOptionals<T extends object>(base: T, extras: Record<string, unknown>): T {
  const out = { ...base } as Record<string, unknown>;
  for (const [k, v] of Object.entries(extras)) if (v !== undefined) out[k] = v;
  return out as T;
}

function batchable(p: Prng): BatchableAction {
  switch (p.int(12)) {
    case 0:
      return { kind: 'faucet', amountQuote: amount(p) };
    case 1:
      return {
        kind: 'attestDeposit',
        depositId: p.bytes(32),
        account: p.bytes(20),
        subaccount: p.int(256),
        amountQuote: amount(p),
      };
    case 2:
      return { kind: 'withdraw', amountQuote: amount(p), destination: text(p) };
    case 3:
      return {
        kind: 'transfer',
        fromSubaccount: p.int(256),
        toSubaccount: p.int(256),
        amountQuote: amount(p),
      };
    case 4:
      return withOptionals(
        {
          kind: 'placeOrder' as const,
          instrument: p.pick(INSTRUMENTS),
          side: p.pick(SIDES),
          type: p.pick(ORDER_TYPES),
          sizeLots: safeInt(p),
          timeInForce: p.pick(TIME_IN_FORCES),
          reduceOnly: p.chance(1, 2),
          stp: p.pick(STPS),
        },
        {
          priceTicks: maybe(p, () => safeInt(p)),
          clientOrderId: maybe(p, () => p.pick(TEXTS)),
          goodTilMs: maybe(p, () => safeInt(p)),
        },
      );
    case 5:
      return p.chance(1, 2)
        ? { kind: 'cancel', instrument: p.pick(INSTRUMENTS), orderId: safeInt(p) }
        : { kind: 'cancel', instrument: p.pick(INSTRUMENTS), clientOrderId: p.pick(TEXTS) };
    case 6:
      return withOptionals({ kind: 'cancelAll' as const }, { instrument: maybe(p, () => text(p)) });
    case 7:
      return withOptionals(
        { kind: 'amend' as const, instrument: p.pick(INSTRUMENTS), orderId: safeInt(p) },
        { priceTicks: maybe(p, () => safeInt(p)), sizeLots: maybe(p, () => safeInt(p)) },
      );
    case 8:
      return withOptionals(
        { kind: 'registerAgent' as const, agentPublicKey: p.bytes(32), expiresAtMs: safeInt(p) },
        { name: maybe(p, () => p.pick(TEXTS)) },
      );
    case 9:
      return { kind: 'revokeAgent', agentPublicKey: p.bytes(32) };
    case 10: {
      const kind = p.pick(GOV_PROPOSAL_KINDS);
      const proposal: GovProposal =
        kind === 'haltMarket' || kind === 'resumeMarket'
          ? { kind, instrument: p.pick(INSTRUMENTS) }
          : kind === 'setMarketRisk'
            ? {
                kind,
                instrument: p.pick(INSTRUMENTS),
                risk: withOptionals(
                  {
                    initialMarginPpm: p.int(1_000_001),
                    maintenanceMarginPpm: p.int(1_000_001),
                    imfStepQuote: amount(p),
                    imfStepPpm: p.int(1_000_001),
                    liquidationQuoteMaxPerBlock: amount(p),
                  },
                  {
                    priceBandPpm: maybe(p, () => p.int(1_000_001)),
                    openInterestCapLots: maybe(p, () => safeInt(p)),
                  },
                ),
              }
            : kind === 'setFeeTiers'
              ? {
                  kind,
                  tiers: Array.from({ length: p.int(17) }, () => ({
                    volumeQuoteMin: amount(p),
                    makerFeePpm: p.int(2_000_001) - 1_000_000,
                    takerFeePpm: p.int(1_000_001),
                  })),
                }
              : { kind };
      return { kind: 'govPropose', proposalId: safeInt(p), proposal };
    }
    default:
      return { kind: 'govVote', proposalId: safeInt(p), approve: p.chance(1, 2) };
  }
}

function action(p: Prng): Action {
  if (!p.chance(1, 10)) return batchable(p);
  return { kind: 'batch', actions: Array.from({ length: p.int(6) }, () => batchable(p)) };
}

export function randomTx(p: Prng): SignedTx {
  return withOptionals(
    {
      chainId: p.pick(['zomma-devnet-1', 'zomma-1', '', 'é']),
      signer: p.bytes(32),
      account: p.bytes(20),
      subaccount: p.int(256),
      nonce: safeInt(p),
      action: action(p),
      signature: p.bytes(64),
    },
    { expiresAtMs: maybe(p, () => safeInt(p)) },
  );
}

/** One way of damaging a valid encoding. */
function mutate(p: Prng, b: Uint8Array): Uint8Array {
  const i = p.int(b.length);
  switch (p.int(8)) {
    case 0: {
      const m = b.slice();
      m[i]! ^= 1 << p.int(8);
      return m;
    }
    case 1: {
      const m = b.slice();
      m[i] = p.int(256);
      return m;
    }
    case 2:
      return b.slice(0, i);
    case 3: {
      const m = new Uint8Array(b.length + 1 + p.int(8));
      m.set(b);
      m.set(p.bytes(m.length - b.length), b.length);
      return m;
    }
    case 4: {
      const m = new Uint8Array(b.length + 1);
      m.set(b.subarray(0, i));
      m[i] = p.int(256);
      m.set(b.subarray(i), i + 1);
      return m;
    }
    case 5: {
      const m = new Uint8Array(b.length - 1);
      m.set(b.subarray(0, i));
      m.set(b.subarray(i + 1), i);
      return m;
    }
    case 6: {
      // Length-field inflation: a large varint where a length or count may sit.
      const inflated = p.pick([
        [0x80, 0x01],
        [0xff, 0x7f],
        [0xff, 0xff, 0x03],
        [0xff, 0xff, 0xff, 0xff, 0x0f],
      ]);
      const m = new Uint8Array(b.length - 1 + inflated.length);
      m.set(b.subarray(0, i));
      m.set(inflated, i);
      m.set(b.subarray(i + 1), i + inflated.length);
      return m;
    }
    default:
      return p.chance(1, 2) ? p.bytes(p.int(256)) : Uint8Array.of(1, ...p.bytes(p.int(256)));
  }
}

export interface FuzzSummary {
  fuzz: 'codec';
  seed: number;
  count: number;
  valid: number;
  decodeErrors: number;
  canonicalSuccesses: number;
  findings: number;
  firstFinding?: { input: string; problem: string };
}

/** Runs `count` inputs from `seed`; never throws, reports findings instead. */
export function runFuzz(count: number, seed: number): FuzzSummary {
  const p = new Prng(seed);
  const summary: FuzzSummary = {
    fuzz: 'codec',
    seed,
    count,
    valid: 0,
    decodeErrors: 0,
    canonicalSuccesses: 0,
    findings: 0,
  };
  const finding = (input: Uint8Array, problem: string): void => {
    summary.findings++;
    summary.firstFinding ??= { input: toHex(input), problem };
  };
  let tx = randomTx(p);
  let encoded = encodeSignedTx(tx);
  for (let n = 0; n < count; n++) {
    // A fresh valid transaction every 16 inputs; mutations of it in between.
    if (n % 16 === 0) {
      tx = randomTx(p);
      encoded = encodeSignedTx(tx);
      try {
        if (!bytesEqual(encodeSignedTx(decodeSignedTx(encoded)), encoded)) {
          finding(encoded, 'a valid transaction does not round-trip');
        }
        summary.valid++;
      } catch (e) {
        finding(encoded, `a valid transaction failed to decode: ${String(e)}`);
      }
      continue;
    }
    const input = mutate(p, encoded);
    try {
      const decoded = decodeSignedTx(input);
      if (bytesEqual(encodeSignedTx(decoded), input)) summary.canonicalSuccesses++;
      else finding(input, 'decoded but re-encodes differently (not canonical)');
    } catch (e) {
      if (e instanceof DecodeError) summary.decodeErrors++;
      else finding(input, `threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    }
  }
  return summary;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '1000000' },
      seed: { type: 'string', default: '1' },
    },
  });
  const count = Number(values.count);
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(count) || count < 0 || !Number.isSafeInteger(seed)) {
    console.error('usage: npm run fuzz -- [--count N] [--seed S]');
    process.exit(2);
  }
  const startedMs = performance.now();
  const summary = runFuzz(count, seed);
  const elapsedMs = Math.round(performance.now() - startedMs);
  console.log(JSON.stringify({ ...summary, elapsedMs }));
  if (summary.findings > 0) process.exit(1);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href)
  main();
