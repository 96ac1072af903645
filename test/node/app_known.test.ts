// A proposal's transactions that the node's mempool already holds (the same
// bytes, admitted after the same stateless checks and this node's signature
// check) are taken from it, not decoded, hashed and checked again; any other
// bytes are checked in full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Block } from '../../src/consensus/index.ts';
import { buildTx } from '../../src/exchange/tx/index.ts';
import type { SignedTx } from '../../src/exchange/tx/index.ts';
import { ExchangeApp } from '../../src/node/app.ts';
import { SignatureCache } from '../../src/node/mempool/sigcache.ts';
import { consensusGenesisOf } from '../../src/node/node.ts';
import { Harness, limit } from '../exchange/helpers.ts';
import { testKey } from './helpers.ts';

test('a proposal transaction the mempool holds is taken from it; other bytes are checked in full', () => {
  const h = new Harness();
  const { tx, bytes: held } = buildTx({
    chainId: h.ex.state.genesis.chainId,
    key: testKey(1),
    nonce: h.timeMs + 1,
    action: limit('BTC-PERPETUAL', 'buy', 400_000, 1),
  });
  // Bytes the pool vouches for although their signature is wrong: taken as
  // held, so nothing about them is checked again here.
  const vouched = Uint8Array.from(held);
  vouched[vouched.length - 1]! ^= 1;
  const asked: Uint8Array[] = [];
  const known = (raw: Uint8Array): { tx: SignedTx; hash: string } | undefined => {
    asked.push(raw);
    return Buffer.from(raw).equals(vouched) ? { tx, hash: 'ab' } : undefined;
  };
  const genesis = h.ex.state.genesis;
  const app = new ExchangeApp(
    {
      genesis,
      consensusGenesis: consensusGenesisOf(genesis),
      signatures: new SignatureCache(),
      known,
      prices: null,
      nowMs: () => 0,
    },
    h.ex,
  );
  const proposal = (txs: Uint8Array[]) => ({ txs }) as unknown as Block;
  assert.equal(app.processProposal(proposal([vouched])), true, 'held: not checked again');
  assert.deepEqual(asked, [vouched]);
  // Not held: decoded and its signature checked (the original verifies, the flipped copy not).
  assert.equal(app.processProposal(proposal([Uint8Array.from(held)])), true);
  const forged = Uint8Array.from(vouched);
  forged[0]! ^= 1;
  assert.equal(app.processProposal(proposal([forged])), false);
});
