// The wire form of a setMarketRisk proposal: its pinned layout, round trips
// with and without the optional band and cap, malformed bytes refused with a
// DecodeError naming the field (a TxError Malformed at the node), and the
// stateless rules (genesis.ts checkRisk's own) refused as BadField naming it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DecodeError } from '../../../src/codec/index.ts';
import { keyPairFromSeed } from '../../../src/crypto/index.ts';
import {
  TxError,
  buildTx,
  checkTx,
  decodeSignedTx,
  encodeSignedTx,
  signTx,
} from '../../../src/exchange/tx/index.ts';
import type { Action, RiskValues } from '../../../src/exchange/tx/index.ts';
import { toHex } from '../../../src/lib/bytes.ts';

const CHAIN = 'zomma-devnet-1';
const validator = keyPairFromSeed(new Uint8Array(32).fill(4));
const NONCE = 1_764_000_000_000;

const RISK: RiskValues = {
  initialMarginPpm: 80_000,
  maintenanceMarginPpm: 50_000,
  imfStepQuote: 10_000_000_000_000n,
  imfStepPpm: 10_000,
  liquidationQuoteMaxPerBlock: 1_000_000_000_000n,
  priceBandPpm: 100_000,
  openInterestCapLots: 250_000,
};

function propose(risk: RiskValues, instrument = 'BTC-PERPETUAL'): Action {
  return {
    kind: 'govPropose',
    proposalId: 7,
    proposal: { kind: 'setMarketRisk', instrument, risk },
  };
}

function signed(action: Action): Uint8Array {
  const tx = signTx(
    {
      chainId: CHAIN,
      signer: validator.publicKey,
      account: validator.address,
      subaccount: 0,
      nonce: NONCE,
      action,
    },
    validator,
  );
  return encodeSignedTx(tx);
}

/** The action's bytes: after the envelope, before the signature. */
function actionBytes(bytes: Uint8Array): Uint8Array {
  const envelope = 1 + 1 + CHAIN.length + 32 + 20 + 1 + 6 + 1;
  return bytes.subarray(envelope, bytes.length - 64);
}

test('a setMarketRisk proposal has one pinned encoding, and decodes to what was built, with and without band and cap', () => {
  const bytes = signed(propose(RISK));
  // govPropose (11), id 7, setMarketRisk (4), the name, 80000, 50000, 10^13,
  // 10000, 10^12, band present 100000, cap present 250000.
  assert.equal(
    toHex(actionBytes(bytes)),
    '0b07040d4254432d50455250455455414c' +
      '80f104' +
      'd08603' +
      '80c0caf384a302' +
      '904e' +
      '80a094a58d1d' +
      '01a08d06' +
      '0190a10f',
  );
  const { priceBandPpm: _band, openInterestCapLots: _cap, ...bare } = RISK;
  for (const risk of [
    RISK,
    bare,
    { ...bare, priceBandPpm: 1 },
    { ...bare, openInterestCapLots: 1 },
  ]) {
    const built = buildTx({ chainId: CHAIN, key: validator, nonce: NONCE, action: propose(risk) });
    assert.deepStrictEqual(decodeSignedTx(built.bytes), built.tx);
    assert.deepStrictEqual(checkTx(built.bytes, CHAIN).tx.action, propose(risk));
  }
});

test('malformed setMarketRisk bytes are a DecodeError naming the field', () => {
  const bytes = signed(propose(RISK));
  const at = bytes.length - 64 - actionBytes(bytes).length;
  const name = 2 + 1 + 1 + 'BTC-PERPETUAL'.length; // tag, id, kind, length byte, name
  const field = (damaged: Uint8Array): string | undefined => {
    try {
      decodeSignedTx(damaged);
    } catch (e) {
      if (e instanceof DecodeError) return e.field;
      throw e;
    }
    return undefined;
  };
  // A fraction above 10^6: initialMarginPpm 1_000_001 (0x81 0x89 0x3d).
  const over = Uint8Array.of(
    ...bytes.subarray(0, at + name),
    0x81,
    0x89,
    0x3d,
    ...bytes.subarray(at + name + 3),
  );
  assert.equal(field(over), 'tx.action.govPropose.proposal.risk.initialMarginPpm');
  // A band flag that is neither 0 nor 1.
  const flagAt = bytes.length - 64 - 8;
  assert.equal(bytes[flagAt], 1);
  const flag = bytes.slice();
  flag[flagAt] = 2;
  assert.equal(field(flag), 'tx.action.govPropose.proposal.risk.priceBandPpm');
  // Cut inside the values.
  const cut = Uint8Array.of(...bytes.subarray(0, at + name + 4), ...new Uint8Array(64));
  assert.ok(field(cut)?.startsWith('tx.'), 'a truncated proposal is refused');
  // Every cut of the action's values is refused as a DecodeError, never anything else.
  for (let n = at; n < bytes.length - 64; n++) {
    assert.notEqual(
      field(Uint8Array.of(...bytes.subarray(0, n), ...bytes.subarray(bytes.length - 64))),
      undefined,
    );
  }
  // And at the node: Malformed.
  try {
    checkTx(over, CHAIN);
    assert.fail('accepted');
  } catch (e) {
    assert.ok(e instanceof TxError && e.code === 'Malformed', String(e));
  }
});

test('the stateless rules of risk parameters are BadField naming the field', () => {
  const at = 'tx.action.govPropose.proposal.risk';
  const cases: [RiskValues, string][] = [
    [{ ...RISK, maintenanceMarginPpm: 0 }, `${at}.maintenanceMarginPpm`],
    [{ ...RISK, maintenanceMarginPpm: 1_000_001 }, `${at}.maintenanceMarginPpm`],
    [{ ...RISK, initialMarginPpm: 49_999 }, `${at}.initialMarginPpm`],
    [{ ...RISK, initialMarginPpm: 2.5 }, `${at}.initialMarginPpm`],
    [{ ...RISK, imfStepQuote: 0n }, `${at}.imfStepQuote`],
    [{ ...RISK, imfStepQuote: 5 as unknown as bigint }, `${at}.imfStepQuote`],
    [{ ...RISK, imfStepPpm: -1 }, `${at}.imfStepPpm`],
    [{ ...RISK, liquidationQuoteMaxPerBlock: 0n }, `${at}.liquidationQuoteMaxPerBlock`],
    [{ ...RISK, priceBandPpm: 0 }, `${at}.priceBandPpm`],
    [{ ...RISK, priceBandPpm: 1_000_000 }, `${at}.priceBandPpm`],
    [{ ...RISK, openInterestCapLots: 0 }, `${at}.openInterestCapLots`],
  ];
  for (const [risk, field] of cases) {
    try {
      buildTx({ chainId: CHAIN, key: validator, nonce: NONCE, action: propose(risk) });
      assert.fail(`accepted: ${field}`);
    } catch (e) {
      assert.ok(e instanceof TxError, String(e));
      assert.deepEqual([e.code, e.field], ['BadField', field]);
    }
  }
  // Maintenance equal to initial is what genesis allows too.
  const equal = { ...RISK, initialMarginPpm: RISK.maintenanceMarginPpm };
  buildTx({ chainId: CHAIN, key: validator, nonce: NONCE, action: propose(equal) });
  // A bad instrument name.
  try {
    buildTx({ chainId: CHAIN, key: validator, nonce: NONCE, action: propose(RISK, 'btc') });
    assert.fail('accepted');
  } catch (e) {
    assert.ok(e instanceof TxError && e.field === 'tx.action.govPropose.proposal.instrument');
  }
});
