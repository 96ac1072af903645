import { test } from 'node:test';
import assert from 'node:assert/strict';
import type {
  Block as ConsensusBlock,
  CommitCertificate,
  DuplicateVoteEvidence,
  Header,
  Vote,
} from '../../src/consensus/index.ts';
import { VOTE_TYPE, ValidatorSet } from '../../src/consensus/index.ts';
import { devnetGenesis } from '../../src/exchange/index.ts';
import { AssertionError } from '../../src/lib/assert.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { ExchangeApp } from '../../src/node/app.ts';
import { SignatureCache } from '../../src/node/mempool/sigcache.ts';
import { consensusGenesisOf } from '../../src/node/node.ts';
import { testKey } from './helpers.ts';

const keys = [0, 1, 2, 3].map(testKey);
const genesis = {
  ...devnetGenesis(keys.map((k) => k.publicKey)),
  oracle: undefined,
  listing: undefined,
};
const consensusGenesis = consensusGenesisOf(genesis);
const genesisSet = ValidatorSet.fromUpdates(consensusGenesis.validators);
/** Each devnet validator's voting power: its stake in quote units. */
const DEVNET_POWER = Number(genesis.validators[0]!.stake);

function app(): ExchangeApp {
  return new ExchangeApp({
    genesis,
    consensusGenesis,
    signatures: new SignatureCache(),
    prices: null,
    nowMs: () => 0,
    checkInvariants: true,
  });
}

function vote(height: number, validatorIndex: number, blockHash: Uint8Array | null): Vote {
  return {
    type: VOTE_TYPE.prevote,
    height,
    round: 0,
    blockHash,
    validatorIndex,
    timestampMs: 0,
    extension: new Uint8Array(0),
    signature: new Uint8Array(64),
  };
}

/** The app does not check evidence (the replica did): it reads who and when. */
function evidence(height: number, validatorIndex: number): DuplicateVoteEvidence {
  return { voteA: vote(height, validatorIndex, null), voteB: vote(height, validatorIndex, null) };
}

function block(height: number, items: DuplicateVoteEvidence[]): ConsensusBlock {
  const header = {
    chainId: genesis.chainId,
    height,
    round: 0,
    timeMs: height * 1_000,
    proposerAddress: new Uint8Array(20),
    previousBlockHash: new Uint8Array(32),
    previousAppHash: new Uint8Array(32),
    txsRoot: new Uint8Array(32),
    lastCommitHash: new Uint8Array(32),
    evidenceHash: new Uint8Array(32),
    validatorsHash: new Uint8Array(32),
  } satisfies Header;
  return { header, txs: [], evidence: items, lastCommit: null };
}

const commit = null as unknown as CommitCertificate;

test('committed evidence jails the offender, who leaves the set deciding H+2', () => {
  const a = app();
  a.finalizeBlock(block(1, []), commit);
  const offender = genesisSet.validators[2]!.publicKey;
  const misbehavior = [
    { publicKey: offender, power: DEVNET_POWER, height: 1, round: 0, type: VOTE_TYPE.prevote },
  ];
  assert.deepEqual(a.misbehaviorOf(block(2, [evidence(1, 2)])), misbehavior);
  const result = a.finalizeBlock(block(2, [evidence(1, 2)]), commit, misbehavior);
  assert.deepEqual(result.validatorUpdates, [{ publicKey: offender, power: 0 }]);
  assert.equal(a.lastExecuted!.exchange.events[0]!.type, 'validatorJailed');
  assert.equal(a.validatorSetAt(3).size, 4, 'the set deciding H+1 was already fixed');
  assert.equal(a.validatorSetAt(4).size, 3);
  assert.equal(a.validatorSetAt(4).indexOf(offender), -1);
  // What consensus computes from the same update, to the member.
  assert.deepEqual(a.validatorSetAt(4).hash, genesisSet.withUpdates(result.validatorUpdates).hash);
  assert.equal(a.validatorSetAt(1), a.validatorSetAt(3), 'sets are remembered');
  // Evidence at a later height names members by index into that height's (smaller) set.
  a.finalizeBlock(block(3, []), commit);
  a.finalizeBlock(block(4, []), commit);
  const next = a.validatorSetAt(4).validators[2]!.publicKey;
  assert.notEqual(toHex(next), toHex(offender));
  const r = a.finalizeBlock(block(5, [evidence(4, 2), evidence(1, 2)]), commit);
  assert.deepEqual(r.validatorUpdates, [{ publicKey: next, power: 0 }], 'the old offender once');
});

test('the node refuses to go on when the replica and the exchange name different offenders', () => {
  const a = app();
  const wrong = [
    {
      publicKey: genesisSet.validators[1]!.publicKey,
      power: DEVNET_POWER,
      height: 1,
      round: 0,
      type: VOTE_TYPE.prevote,
    },
  ];
  assert.throws(() => a.finalizeBlock(block(1, [evidence(1, 0)]), commit, wrong), AssertionError);
});

test('a node restored from a snapshot derives the same sets', () => {
  const a = app();
  a.finalizeBlock(block(1, []), commit);
  a.finalizeBlock(block(2, [evidence(1, 0)]), commit);
  const b = ExchangeApp.fromSnapshot(a['options'], a.encodeSnapshot());
  assert.deepEqual(b.appHash, a.appHash);
  for (const h of [1, 2, 3, 4, 5])
    assert.deepEqual(b.validatorSetAt(h).hash, a.validatorSetAt(h).hash);
});
