import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addressOf,
  keyPairFromSeed,
  sha256,
  signedBytes,
  SIGN_KIND,
} from '../../../src/crypto/index.ts';
import {
  TxError,
  buildTx,
  checkTx,
  checkTxSignature,
  checkTxWithoutSignature,
  decodeSignedTx,
  encodeSignedTx,
  encodeUnsignedTx,
  placeOrder,
  signTx,
  txSignedBytes,
} from '../../../src/exchange/tx/index.ts';
import type { Action, SignedTx, TxErrorCode } from '../../../src/exchange/tx/index.ts';
import { TX_BYTES_MAX } from '../../../src/lib/limits.ts';

const CHAIN = 'zomma-devnet-1';
const master = keyPairFromSeed(new Uint8Array(32).fill(1));
const agent = keyPairFromSeed(new Uint8Array(32).fill(2));
const other = keyPairFromSeed(new Uint8Array(32).fill(3));
const NONCE = 1_764_000_000_000;

const order = placeOrder({
  instrument: 'BTC-PERPETUAL',
  side: 'buy',
  priceTicks: 9_712_350,
  sizeLots: 25,
  clientOrderId: 'mm-7_000123',
});

function rejection(run: () => unknown): { code: TxErrorCode; field: string | undefined } {
  try {
    run();
  } catch (e) {
    if (e instanceof TxError) return { code: e.code, field: e.field };
    throw e;
  }
  assert.fail('expected a TxError');
}

/** Signs any action without validating it first (as a hostile client would). */
function rawSigned(action: Action, key = master, account = master.address): Uint8Array {
  const tx = signTx(
    { chainId: CHAIN, signer: key.publicKey, account, subaccount: 0, nonce: NONCE, action },
    key,
  );
  return encodeSignedTx(tx);
}

test('a built order passes checkTx; its hash is sha256 of its bytes', () => {
  const built = buildTx({ chainId: CHAIN, key: master, nonce: NONCE, action: order });
  const { tx, hash } = checkTx(built.bytes, CHAIN);
  assert.deepStrictEqual(tx, built.tx);
  assert.deepEqual(hash, sha256(built.bytes));
  assert.deepEqual(hash, built.hash);
  assert.deepEqual(tx.account, addressOf(master.publicKey));
  assert.equal(tx.subaccount, 0);
});

test('the signature covers signedBytes(chainId, tx kind, unsigned encoding)', () => {
  const built = buildTx({
    chainId: CHAIN,
    key: master,
    nonce: NONCE,
    expiresAtMs: 5,
    action: order,
  });
  const fromTx = txSignedBytes(built.tx);
  const fromBytes = txSignedBytes(built.tx, built.bytes);
  const message = encodeUnsignedTx(built.tx);
  assert.deepEqual(fromTx.message, message);
  assert.deepEqual(fromBytes.message, message);
  assert.deepEqual(fromBytes.signedBytes, signedBytes(CHAIN, SIGN_KIND.tx, message));
  assert.deepEqual(fromBytes.publicKey, master.publicKey);
  assert.deepEqual(fromBytes.signature, built.tx.signature);
});

test('any changed byte breaks the transaction: Malformed, BadField or BadSignature', () => {
  const built = buildTx({ chainId: CHAIN, key: master, nonce: NONCE, action: order });
  fc.assert(
    fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (at, x) => {
      const m = built.bytes.slice();
      m[at % m.length]! ^= x;
      const { code } = rejection(() => checkTx(m, CHAIN));
      assert.ok(
        ['Malformed', 'BadField', 'BadSignature', 'WrongChain', 'AgentNotAllowed'].includes(code),
        code,
      );
    }),
    { numRuns: 300 },
  );
});

test('size, decoding and chain are checked before anything else', () => {
  assert.equal(rejection(() => checkTx(new Uint8Array(TX_BYTES_MAX + 1), CHAIN)).code, 'Oversize');
  const built = buildTx({ chainId: CHAIN, key: master, nonce: NONCE, action: order });
  const truncated = rejection(() => checkTx(built.bytes.subarray(0, 100), CHAIN));
  assert.equal(truncated.code, 'Malformed');
  assert.ok(truncated.field?.startsWith('tx.'));
  assert.deepEqual(
    rejection(() => checkTx(built.bytes, 'zomma-1')),
    {
      code: 'WrongChain',
      field: 'tx.chainId',
    },
  );
});

test('a signature by another key, or over other bytes, is BadSignature', () => {
  const built = buildTx({ chainId: CHAIN, key: master, nonce: NONCE, action: order });
  const forged: SignedTx = { ...built.tx, signature: signTx(built.tx, other).signature };
  assert.equal(rejection(() => checkTx(encodeSignedTx(forged), CHAIN)).code, 'BadSignature');
  const checked = checkTxWithoutSignature(encodeSignedTx(forged), CHAIN);
  assert.equal(rejection(() => checkTxSignature(checked)).code, 'BadSignature');
});

test('an agent may trade for the account but not withdraw, transfer or manage agents', () => {
  const trade = buildTx({
    chainId: CHAIN,
    key: agent,
    account: master.address,
    nonce: NONCE,
    action: order,
  });
  assert.deepEqual(checkTx(trade.bytes, CHAIN).tx.account, master.address);
  const forbidden: Action[] = [
    { kind: 'withdraw', amountQuote: 1n, destination: '0xabc' },
    { kind: 'transfer', fromSubaccount: 0, toSubaccount: 1, amountQuote: 1n },
    { kind: 'registerAgent', agentPublicKey: other.publicKey, expiresAtMs: 1 },
    { kind: 'revokeAgent', agentPublicKey: other.publicKey },
    { kind: 'batch', actions: [order, { kind: 'withdraw', amountQuote: 1n, destination: 'x' }] },
  ];
  for (const action of forbidden) {
    assert.deepEqual(
      rejection(() => checkTx(rawSigned(action, agent), CHAIN)),
      {
        code: 'AgentNotAllowed',
        field: 'tx.signer',
      },
    );
    assert.equal(
      rejection(() =>
        buildTx({ chainId: CHAIN, key: agent, account: master.address, nonce: NONCE, action }),
      ).code,
      'AgentNotAllowed',
    );
    // the account's own key may
    checkTx(rawSigned(action), CHAIN);
  }
});

test('field rules name the field', () => {
  const cases: [Action, string][] = [
    [{ ...order, sizeLots: 0 }, 'tx.action.placeOrder.sizeLots'],
    [{ ...order, instrument: 'btc-perpetual' }, 'tx.action.placeOrder.instrument'],
    [{ ...order, clientOrderId: 'has space' }, 'tx.action.placeOrder.clientOrderId'],
    [
      placeOrder({ instrument: 'BTC-PERPETUAL', side: 'buy', sizeLots: 1 }),
      'tx.action.placeOrder.priceTicks',
    ],
    [
      placeOrder({
        instrument: 'BTC-PERPETUAL',
        side: 'buy',
        sizeLots: 1,
        type: 'market',
        timeInForce: 'GTC',
      }),
      'tx.action.placeOrder.timeInForce',
    ],
    [{ ...order, timeInForce: 'IOC', goodTilMs: 10 }, 'tx.action.placeOrder.goodTilMs'],
    [{ kind: 'faucet', amountQuote: 0n }, 'tx.action.faucet.amountQuote'],
    [{ kind: 'withdraw', amountQuote: 5n, destination: 'a b' }, 'tx.action.withdraw.destination'],
    [
      { kind: 'transfer', fromSubaccount: 2, toSubaccount: 2, amountQuote: 5n },
      'tx.action.transfer.toSubaccount',
    ],
    [{ kind: 'amend', instrument: 'ETH-PERPETUAL', orderId: 4 }, 'tx.action.amend'],
    [{ kind: 'batch', actions: [] }, 'tx.action.batch.actions'],
    [
      { kind: 'batch', actions: [order, { ...order, sizeLots: 0 }] },
      'tx.action.batch.actions[1].placeOrder.sizeLots',
    ],
    [
      { kind: 'registerAgent', agentPublicKey: master.publicKey, expiresAtMs: 9 },
      'tx.action.registerAgent.agentPublicKey',
    ],
    [
      { kind: 'govPropose', proposalId: 1, proposal: { kind: 'haltMarket', instrument: '' } },
      'tx.action.govPropose.proposal.instrument',
    ],
  ];
  for (const [action, field] of cases) {
    assert.deepEqual(
      rejection(() => checkTx(rawSigned(action), CHAIN)),
      { code: 'BadField', field },
      field,
    );
    assert.deepEqual(
      rejection(() => buildTx({ chainId: CHAIN, key: master, nonce: NONCE, action })),
      {
        code: 'BadField',
        field,
      },
    );
  }
  assert.equal(
    rejection(() => buildTx({ chainId: CHAIN, key: master, nonce: 0, action: order })).field,
    'tx.nonce',
  );
});

test('buildTx refuses, as a BadField naming it, a number the encoding cannot hold', () => {
  const build = (fields: { subaccount?: number; nonce?: number; action?: Action }) => () =>
    buildTx({ chainId: CHAIN, key: master, nonce: NONCE, action: order, ...fields });
  const cases: [() => unknown, string][] = [
    [build({ subaccount: 256 }), 'tx.subaccount'],
    [build({ subaccount: -1 }), 'tx.subaccount'],
    [build({ subaccount: 0.5 }), 'tx.subaccount'],
    [build({ nonce: 1.5 }), 'tx.nonce'],
    [build({ nonce: 2 ** 53 }), 'tx.nonce'],
    [build({ action: { ...order, sizeLots: 2.5 } }), 'tx.action.placeOrder.sizeLots'],
    [build({ action: { ...order, priceTicks: 1e300 } }), 'tx.action.placeOrder.priceTicks'],
    [
      build({
        action: { kind: 'transfer', fromSubaccount: 0, toSubaccount: 300, amountQuote: 5n },
      }),
      'tx.action.transfer.toSubaccount',
    ],
    [
      build({ action: { kind: 'transfer', fromSubaccount: -2, toSubaccount: 1, amountQuote: 5n } }),
      'tx.action.transfer.fromSubaccount',
    ],
    [
      build({ action: { kind: 'cancel', instrument: 'BTC-PERPETUAL', orderId: -1 } }),
      'tx.action.cancel.orderId',
    ],
    [
      build({ action: { kind: 'amend', instrument: 'BTC-PERPETUAL', orderId: 0.5, sizeLots: 1 } }),
      'tx.action.amend.orderId',
    ],
  ];
  for (const [attempt, field] of cases) {
    assert.deepEqual(rejection(attempt), { code: 'BadField', field }, field);
  }
});

test('buildTx refuses, as a BadField naming it, a string, enum, flag or byte field the encoding cannot hold', () => {
  // A client in plain JavaScript can pass anything. Before, an unknown side or
  // order type was encoded as sell or market (the encoder tested only for
  // 'buy' and 'limit'), a string flag as true, a fractional number amount was
  // truncated, and an oversize string or a short key reached the encoder's
  // assertion instead of a TxError.
  const build = (fields: { chainId?: string; account?: Uint8Array; action?: unknown }) => () =>
    buildTx({
      chainId: CHAIN,
      key: master,
      nonce: NONCE,
      ...fields,
      action: (fields.action ?? order) as Action,
    });
  const place = (extra: Record<string, unknown>): unknown => ({ ...order, ...extra });
  const key31 = new Uint8Array(31);
  const cases: [() => unknown, string][] = [
    [build({ action: place({ side: 'Buy' }) }), 'tx.action.placeOrder.side'],
    [build({ action: place({ type: 'LIMIT' }) }), 'tx.action.placeOrder.type'],
    [build({ action: place({ timeInForce: 'gtc' }) }), 'tx.action.placeOrder.timeInForce'],
    [build({ action: place({ stp: 'none' }) }), 'tx.action.placeOrder.stp'],
    [build({ action: place({ reduceOnly: 'false' }) }), 'tx.action.placeOrder.reduceOnly'],
    [
      build({ action: place({ clientOrderId: 'a'.repeat(37) }) }),
      'tx.action.placeOrder.clientOrderId',
    ],
    [build({ action: place({ instrument: 'B'.repeat(49) }) }), 'tx.action.placeOrder.instrument'],
    [build({ action: { kind: 'faucet', amountQuote: 1.5 } }), 'tx.action.faucet.amountQuote'],
    [
      build({ action: { kind: 'withdraw', amountQuote: 5n, destination: 'x'.repeat(129) } }),
      'tx.action.withdraw.destination',
    ],
    [
      build({
        action: {
          kind: 'registerAgent',
          agentPublicKey: agent.publicKey,
          expiresAtMs: 5,
          name: 'n'.repeat(33),
        },
      }),
      'tx.action.registerAgent.name',
    ],
    [
      build({ action: { kind: 'revokeAgent', agentPublicKey: key31 } }),
      'tx.action.revokeAgent.agentPublicKey',
    ],
    [
      build({
        action: {
          kind: 'attestDeposit',
          depositId: key31,
          account: master.address,
          subaccount: 0,
          amountQuote: 5n,
        },
      }),
      'tx.action.attestDeposit.depositId',
    ],
    [
      build({
        action: {
          kind: 'attestDeposit',
          depositId: new Uint8Array(32),
          account: key31,
          subaccount: 0,
          amountQuote: 5n,
        },
      }),
      'tx.action.attestDeposit.account',
    ],
    [
      build({ action: { kind: 'cancelAll', instrument: 'B'.repeat(49) } }),
      'tx.action.cancelAll.instrument',
    ],
    [
      build({
        action: { kind: 'cancel', instrument: 'BTC-PERPETUAL', clientOrderId: 'c'.repeat(37) },
      }),
      'tx.action.cancel.clientOrderId',
    ],
    [
      build({ action: { kind: 'govVote', proposalId: 1, approve: 1 } }),
      'tx.action.govVote.approve',
    ],
    [
      build({
        action: { kind: 'govPropose', proposalId: 1, proposal: { kind: 'haltEverything' } },
      }),
      'tx.action.govPropose.proposal.kind',
    ],
    [build({ action: { kind: 'teleport' } }), 'tx.action.kind'],
    [
      build({ action: { kind: 'batch', actions: [{ kind: 'teleport' }] } }),
      'tx.action.batch.actions[0].kind',
    ],
    [build({ account: key31 }), 'tx.account'],
    [build({ chainId: 'z'.repeat(65) }), 'tx.chainId'],
  ];
  for (const [attempt, field] of cases) {
    assert.deepEqual(rejection(attempt), { code: 'BadField', field }, field);
  }
});

test('valid actions of every kind pass', () => {
  const valid: Action[] = [
    { kind: 'faucet', amountQuote: 1_000_000_000n },
    {
      kind: 'attestDeposit',
      depositId: new Uint8Array(32),
      account: other.address,
      subaccount: 1,
      amountQuote: 7n,
    },
    { kind: 'withdraw', amountQuote: 5n, destination: '0xabcdef' },
    { kind: 'transfer', fromSubaccount: 0, toSubaccount: 1, amountQuote: 5n },
    order,
    placeOrder({ instrument: 'BTC-27DEC26-60000-C', side: 'sell', sizeLots: 3, type: 'market' }),
    { kind: 'cancel', instrument: 'BTC-PERPETUAL', orderId: 0 },
    { kind: 'cancel', instrument: 'BTC-PERPETUAL', clientOrderId: 'abc' },
    { kind: 'cancelAll' },
    { kind: 'cancelAll', instrument: 'ETH-PERPETUAL' },
    { kind: 'amend', instrument: 'ETH-PERPETUAL', orderId: 4, sizeLots: 2 },
    { kind: 'batch', actions: [order, { kind: 'cancelAll' }] },
    { kind: 'registerAgent', agentPublicKey: agent.publicKey, expiresAtMs: 9, name: 'bot 1' },
    { kind: 'revokeAgent', agentPublicKey: agent.publicKey },
    { kind: 'govPropose', proposalId: 1, proposal: { kind: 'haltAll' } },
    { kind: 'govVote', proposalId: 1, approve: true },
  ];
  for (const action of valid) {
    const built = buildTx({ chainId: CHAIN, key: master, nonce: NONCE, subaccount: 9, action });
    assert.deepStrictEqual(checkTx(built.bytes, CHAIN).tx, built.tx);
    assert.deepStrictEqual(decodeSignedTx(built.bytes), built.tx);
  }
});
