// The node's oracle input across a validator-set change: each block's votes
// are read in the set that decided its lastCommit (app.ts oracleVotesOf with
// validatorSetAt(height − 1)), so every carried observation stays with the
// validator that signed it, and a node restored from a snapshot carries the
// same (docs/derivatives.md, "Carried observations").
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
import { DEVNET_ORACLE, devnetGenesis } from '../../src/exchange/index.ts';
import { bytesKey } from '../../src/exchange/keys.ts';
import { encodeObservation } from '../../src/exchange/oracle/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { ExchangeApp } from '../../src/node/app.ts';
import { SignatureCache } from '../../src/node/mempool/sigcache.ts';
import { consensusGenesisOf } from '../../src/node/node.ts';
import { testKey } from './helpers.ts';

const keys = [0, 1, 2, 3].map(testKey);
const genesis = { ...devnetGenesis(keys.map((k) => k.publicKey)), genesisTimeMs: 1_000_000 };
const consensusGenesis = consensusGenesisOf(genesis);
const genesisSet = ValidatorSet.fromUpdates(consensusGenesis.validators);
const timeOf = (height: number) => genesis.genesisTimeMs + height * 1_000;
/** Each validator's own BTC price, so an observation names who made it. */
const btcOf = (publicKey: Uint8Array) => 60_000_000_000n + BigInt(publicKey[0]!) * 1_000n;

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

function prevote(height: number, validatorIndex: number): Vote {
  return {
    type: VOTE_TYPE.prevote,
    height,
    round: 0,
    blockHash: null,
    validatorIndex,
    timestampMs: 0,
    extension: new Uint8Array(0),
    signature: new Uint8Array(64),
  };
}

/** The app does not check evidence or signatures (the replica did): it reads who, when and what. */
function evidence(height: number, validatorIndex: number): DuplicateVoteEvidence {
  return { voteA: prevote(height, validatorIndex), voteB: prevote(height, validatorIndex) };
}

/** A certificate for `height`, indexed in `set` (the set deciding it), signed by `signers` (keys). */
function certificate(
  height: number,
  set: ValidatorSet,
  signers: readonly Uint8Array[],
): CommitCertificate {
  const votes = set.validators.flatMap((v, validatorIndex) => {
    if (!signers.some((k) => toHex(k) === toHex(v.publicKey))) return [];
    const extension = encodeObservation({
      timeMs: timeOf(height + 1),
      prices: [{ underlying: 'BTC', priceQuote: btcOf(v.publicKey) }],
      smiles: [],
    });
    return [
      { validatorIndex, timestampMs: timeOf(height + 1), extension, signature: new Uint8Array(64) },
    ];
  });
  return { height, round: 0, blockHash: new Uint8Array(32), votes };
}

function block(
  height: number,
  lastCommit: CommitCertificate | null,
  items: DuplicateVoteEvidence[] = [],
): ConsensusBlock {
  const header = {
    chainId: genesis.chainId,
    height,
    round: 0,
    timeMs: timeOf(height),
    proposerAddress: new Uint8Array(20),
    previousBlockHash: new Uint8Array(32),
    previousAppHash: new Uint8Array(32),
    txsRoot: new Uint8Array(32),
    lastCommitHash: new Uint8Array(32),
    evidenceHash: new Uint8Array(32),
    validatorsHash: new Uint8Array(32),
  } satisfies Header;
  return { header, txs: [], evidence: items, lastCommit };
}

test('carried observations follow the set deciding each certificate through a jailing, and a restored node carries the same', () => {
  assert.ok(DEVNET_ORACLE.freshnessMs >= 10_000, 'observations stay fresh over this test');
  // Jailed by the block at J: in the sets deciding J and J + 1, out of the set deciding J + 2.
  const J = 3;
  const offender = genesisSet.validators[1]!.publicKey;
  const after = genesisSet.withUpdates([{ publicKey: offender, power: 0 }]);
  const setDeciding = (height: number) => (height < J + 2 ? genesisSet : after);
  // Each certificate holds a different subset, so most entries are carried, not fresh.
  const all = genesisSet.validators.map((v) => v.publicKey);
  const signersOf = (height: number) => all.filter((_, i) => (i + height) % 3 !== 0);
  const live = app();
  let restored: ExchangeApp | null = null;
  const seen = new Map<string, number>();
  for (let h = 1; h <= J + 4; h++) {
    const lastCommit = h === 1 ? null : certificate(h - 1, setDeciding(h - 1), signersOf(h - 1));
    const b = block(h, lastCommit, h === J ? [evidence(J - 1, 1)] : []);
    const hash = toHex(live.finalizeBlock(b, lastCommit!).appHash);
    if (restored !== null) {
      assert.equal(toHex(restored.finalizeBlock(b, lastCommit!).appHash), hash, `height ${h}`);
    }
    if (h === J) {
      assert.equal(live.validatorSetAt(J + 1).size, 4);
      assert.equal(live.validatorSetAt(J + 2).hash.toString(), after.hash.toString());
    }
    for (const v of lastCommit?.votes ?? [])
      seen.set(bytesKey(setDeciding(h - 1).validators[v.validatorIndex]!.publicKey), h);
    const carried = live.exchange.state.oracle!.carried;
    // Exactly the members of the certificate's set that signed one (all within freshnessMs).
    const members = setDeciding(h - 1).validators.map((v) => bytesKey(v.publicKey));
    assert.deepEqual(
      [...carried.keys()],
      members.filter((k) => seen.has(k)).sort(),
      `carried after height ${h}`,
    );
    // Each entry is its own validator's observation (an index read in the wrong set would swap them).
    for (const c of carried.values()) {
      assert.equal(c.observation.prices[0]!.priceQuote, btcOf(c.publicKey));
    }
    if (h === J + 3) {
      assert.equal(carried.has(bytesKey(offender)), false, 'out of the set deciding J + 2');
    }
    if (h === J) {
      restored = ExchangeApp.fromSnapshot(live['options'], live.encodeSnapshot());
      assert.equal(toHex(restored.appHash), hash);
    }
  }
});
