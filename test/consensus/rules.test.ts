// Hand-scripted scenarios from Algorithm 1: one replica under test, every
// other validator played by the script (signing with its key).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encode } from '../../src/codec/wire.ts';
import { merkleRoot, sha256 } from '../../src/crypto/index.ts';
import { toHex, utf8 } from '../../src/lib/bytes.ts';
import {
  ZERO_HASH,
  messageCodec,
  proposalSignBytes,
  voteSignBytes,
} from '../../src/consensus/codec.ts';
import { Writer } from '../../src/codec/wire.ts';
import {
  Replica,
  blockHashOf,
  evidenceRoot,
  timeoutMs,
  DEFAULT_TIMEOUTS,
} from '../../src/consensus/replica.ts';
import { ValidatorSet } from '../../src/consensus/validators.ts';
import { SIGN_KIND_CONSENSUS } from '../../src/consensus/ports.ts';
import { STEP, VOTE_TYPE } from '../../src/consensus/types.ts';
import type { Block, Effect, Genesis, VoteType } from '../../src/consensus/types.ts';
import { CHAIN_ID, FAST_TIMEOUTS, FakeCrypto, TestApp, type TestKey } from './harness.ts';

const NOW = 1_000_000;

class Script {
  readonly crypto = new FakeCrypto();
  readonly keys: TestKey[];
  readonly genesis: Genesis;
  readonly set: ValidatorSet;
  readonly replica: Replica;
  readonly me: number;
  readonly app: TestApp;
  readonly out: Effect[] = [];
  private readonly w = new Writer();

  constructor(n: number, meKey: number) {
    this.keys = Array.from({ length: n }, (_, i) => this.crypto.key(i));
    this.genesis = {
      chainId: CHAIN_ID,
      genesisTimeMs: NOW,
      validators: this.keys.map((k) => ({ publicKey: k.publicKey, power: 10 })),
      appHash: sha256(utf8('genesis')),
    };
    this.set = ValidatorSet.fromUpdates(this.genesis.validators);
    this.app = new TestApp(this.genesis.appHash, 'me');
    this.replica = new Replica(
      { genesis: this.genesis, timeouts: FAST_TIMEOUTS },
      {
        signer: this.keys[meKey]!.signer,
        verifier: this.crypto,
        app: this.app,
        blocks: { load: () => null },
      },
    );
    this.me = this.set.indexOf(this.keys[meKey]!.publicKey);
    this.out.push(...this.replica.start([], NOW));
  }

  /** The key of the validator at set index i. */
  keyAt(i: number): TestKey {
    return this.keys.find((k) => toHex(k.publicKey) === toHex(this.set.validators[i]!.publicKey))!;
  }

  block(round: number, tag: string): Block {
    const txs = [utf8(tag)];
    return {
      header: {
        chainId: CHAIN_ID,
        height: 1,
        round,
        timeMs: NOW,
        proposerAddress: this.set.validators[this.set.proposer(round)]!.address,
        previousBlockHash: ZERO_HASH,
        previousAppHash: this.genesis.appHash,
        txsRoot: merkleRoot(txs),
        lastCommitHash: ZERO_HASH,
        evidenceHash: evidenceRoot([]),
        validatorsHash: this.set.hash,
      },
      txs,
      evidence: [],
      lastCommit: null,
    };
  }

  proposal(round: number, block: Block, polRound: number): Uint8Array {
    const hash = blockHashOf(block);
    const signer = this.keyAt(this.set.proposer(round)).signer;
    const signature = signer.sign(
      SIGN_KIND_CONSENSUS.proposal,
      proposalSignBytes(this.w, 1, round, polRound, hash),
    );
    return encode(messageCodec, {
      kind: 'proposal',
      proposal: { height: 1, round, polRound, blockHash: hash, signature },
      block,
    });
  }

  vote(type: VoteType, index: number, round: number, block: Block | null): Uint8Array {
    const hash = block === null ? null : blockHashOf(block);
    const extension =
      type === VOTE_TYPE.precommit && hash !== null ? utf8('ext x') : new Uint8Array(0);
    const timestampMs = type === VOTE_TYPE.precommit ? NOW + 1 : 0;
    const kind =
      type === VOTE_TYPE.prevote ? SIGN_KIND_CONSENSUS.prevote : SIGN_KIND_CONSENSUS.precommit;
    const signature = this.keyAt(index).signer.sign(
      kind,
      voteSignBytes(this.w, type, 1, round, hash, timestampMs, extension),
    );
    return encode(messageCodec, {
      kind: 'vote',
      vote: {
        type,
        height: 1,
        round,
        blockHash: hash,
        validatorIndex: index,
        timestampMs,
        extension,
        signature,
      },
    });
  }

  deliver(bytes: Uint8Array): void {
    this.out.push(...this.replica.onMessage('peer', bytes, NOW));
  }

  others(): number[] {
    return [0, 1, 2, 3].filter((i) => i !== this.me);
  }

  /** The replica's own vote of a type and round, as it broadcast it ('nil', a block hash, or undefined). */
  myVote(type: VoteType, round: number): string | undefined {
    for (const e of this.out) {
      if (e.kind !== 'broadcast') continue;
      const bytes = e.bytes;
      if (bytes[0] !== 1) continue;
      // Decode through the replica's codec to read the vote.
      const m = decodeMessage(bytes);
      if (m.kind === 'vote' && m.vote.type === type && m.vote.round === round) {
        return m.vote.blockHash === null ? 'nil' : toHex(m.vote.blockHash);
      }
    }
    return undefined;
  }

  fireTimeout(round: number, step: 0 | 1 | 2): void {
    this.out.push(...this.replica.onTimeout({ height: 1, round, step }, NOW));
  }
}

import { decode } from '../../src/codec/wire.ts';
function decodeMessage(bytes: Uint8Array) {
  return decode(messageCodec, bytes);
}

/** A validator other than the proposer of `round`, so the script plays the proposer. */
function scriptWithNonProposer(rounds: number[]): Script {
  for (let k = 0; k < 4; k++) {
    const s = new Script(4, k);
    if (rounds.every((r) => s.set.proposer(r) !== s.me)) return s;
  }
  throw new Error('no validator is never the proposer of those rounds');
}

test('line 22 and 36: prevote a fresh valid proposal, lock on 2f+1 prevotes and precommit it', () => {
  const s = scriptWithNonProposer([0]);
  const a = s.block(0, 'A');
  s.deliver(s.proposal(0, a, -1));
  assert.equal(s.myVote(VOTE_TYPE.prevote, 0), toHex(blockHashOf(a)));
  const [x, y] = s.others();
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, a));
  assert.equal(s.replica.lockedRound, 0);
  assert.equal(s.myVote(VOTE_TYPE.precommit, 0), toHex(blockHashOf(a)));
});

test('a replica locked in round 0 does not prevote another value in round 1 without a proof of lock, but does with one', () => {
  const s = scriptWithNonProposer([0, 1, 2]);
  const a = s.block(0, 'A');
  const [x, y, z] = s.others();
  s.deliver(s.proposal(0, a, -1));
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, a));
  assert.equal(s.replica.lockedRound, 0);
  // No decision: the others precommit nil; 2f+1 precommits of any kind start the precommit timeout.
  s.deliver(s.vote(VOTE_TYPE.precommit, x!, 0, null));
  s.deliver(s.vote(VOTE_TYPE.precommit, y!, 0, null));
  s.fireTimeout(0, STEP.precommit);
  assert.equal(s.replica.round, 1);
  // Round 1: the proposer (equivocating across rounds, or simply unaware) proposes B without a POL.
  const b = s.block(1, 'B');
  s.deliver(s.proposal(1, b, -1));
  assert.equal(s.myVote(VOTE_TYPE.prevote, 1), 'nil', 'locked on A: no prevote for B');
  // 2f+1 prevotes for B in round 1 (without us) form a proof of lock newer than ours.
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 1, b));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 1, b));
  s.deliver(s.vote(VOTE_TYPE.prevote, z!, 1, b));
  // Line 36 in the precommit step? We prevoted nil, so we are in prevote and 2f+1 prevotes for B lock B.
  assert.equal(s.replica.lockedRound, 1);
  assert.equal(s.myVote(VOTE_TYPE.precommit, 1), toHex(blockHashOf(b)));
});

test('line 28: a re-proposal with a proof of lock from a round at or after our lock is prevoted', () => {
  const s = scriptWithNonProposer([0, 1, 2]);
  const a = s.block(0, 'A');
  const b = s.block(1, 'B');
  const [x, y, z] = s.others();
  // Lock on A in round 0.
  s.deliver(s.proposal(0, a, -1));
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.precommit, x!, 0, null));
  s.deliver(s.vote(VOTE_TYPE.precommit, y!, 0, null));
  s.fireTimeout(0, STEP.precommit);
  // Round 1: others prevote B (we are not shown the proposal), then time out.
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 1, b));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 1, b));
  s.deliver(s.vote(VOTE_TYPE.prevote, z!, 1, b));
  s.fireTimeout(1, STEP.propose);
  assert.equal(s.myVote(VOTE_TYPE.prevote, 1), 'nil');
  s.deliver(s.vote(VOTE_TYPE.precommit, x!, 1, null));
  s.deliver(s.vote(VOTE_TYPE.precommit, y!, 1, null));
  s.fireTimeout(1, STEP.prevote);
  s.fireTimeout(1, STEP.precommit);
  assert.equal(s.replica.round, 2);
  // Round 2: B re-proposed with polRound 1: our lock (round 0) is older, so we prevote B.
  s.deliver(s.proposal(2, b, 1));
  assert.equal(s.myVote(VOTE_TYPE.prevote, 2), toHex(blockHashOf(b)));
  // But a re-proposal whose POL round is older than our lock would not be (checked by the rule's guard).
  assert.equal(s.replica.lockedRound, 0);
});

test('line 55: f+1 of the stake in a higher round makes the replica skip to it', () => {
  const s = scriptWithNonProposer([]);
  const [x, y] = s.others();
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 7, null));
  assert.equal(s.replica.round, 0, 'one of four is not more than a third');
  s.deliver(s.vote(VOTE_TYPE.precommit, y!, 7, null));
  assert.equal(s.replica.round, 7);
});

test('line 49: 2f+1 precommits for a block decide it in any round', () => {
  const s = scriptWithNonProposer([0]);
  const a = s.block(0, 'A');
  s.deliver(s.proposal(0, a, -1));
  const [x, y, z] = s.others();
  for (const i of [x!, y!, z!]) s.deliver(s.vote(VOTE_TYPE.precommit, i, 0, a));
  const committed = s.out.find((e) => e.kind === 'committed');
  assert.ok(committed !== undefined && committed.kind === 'committed');
  assert.equal(toHex(committed.blockHash), toHex(blockHashOf(a)));
});

test('timeouts grow by delta per round and stop at the cap', () => {
  assert.equal(timeoutMs(DEFAULT_TIMEOUTS, STEP.propose, 0), DEFAULT_TIMEOUTS.proposeMs);
  assert.equal(
    timeoutMs(DEFAULT_TIMEOUTS, STEP.prevote, 3),
    DEFAULT_TIMEOUTS.prevoteMs + 3 * DEFAULT_TIMEOUTS.deltaMs,
  );
  assert.equal(timeoutMs(DEFAULT_TIMEOUTS, STEP.precommit, 1_000_000), DEFAULT_TIMEOUTS.maxMs);
  const s = scriptWithNonProposer([]);
  const delays = s.out.filter(
    (e) => e.kind === 'scheduleTimeout' && e.timeout.step === STEP.propose,
  );
  assert.deepEqual(
    delays.map((e) => (e.kind === 'scheduleTimeout' ? e.delayMs : 0)),
    [FAST_TIMEOUTS.proposeMs],
  );
});

test('proposers rotate in proportion to stake (weighted round robin)', () => {
  const crypto = new FakeCrypto();
  const powers = [1, 2, 3, 4, 10];
  let set = ValidatorSet.fromUpdates(
    powers.map((power, i) => ({ publicKey: crypto.key(i).publicKey, power })),
  );
  const counts = new Map<number, number>();
  for (let h = 0; h < 2_000; h++) {
    const p = set.validators[set.proposer(0)]!.power;
    counts.set(p, (counts.get(p) ?? 0) + 1);
    set = set.advanced();
  }
  for (const p of powers) assert.equal(counts.get(p), 100 * p);
  // Rounds within a height rotate too.
  const rounds = new Set(Array.from({ length: 20 }, (_, r) => set.proposer(r)));
  assert.equal(rounds.size, powers.length);
});

test('garbage from peers is counted and dropped, never thrown', () => {
  const s = scriptWithNonProposer([0]);
  const valid = [
    s.proposal(0, s.block(0, 'A'), -1),
    s.vote(VOTE_TYPE.prevote, s.others()[0]!, 0, s.block(0, 'A')),
  ];
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc
          .tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 }))
          .map(([bytes, at, b]) => {
            const copy = bytes.slice();
            copy[at % copy.length] = b;
            return copy;
          }),
      ),
      (bytes) => {
        const before = Object.values(s.replica.metrics).reduce((a, b) => a + b, 0);
        s.replica.onMessage('evil', bytes, NOW);
        const after = Object.values(s.replica.metrics).reduce((a, b) => a + b, 0);
        // Either a counted drop, or a well-formed message the replica accepted.
        assert.ok(after >= before);
      },
    ),
    { seed: 42, numRuns: 2_000 },
  );
  const m = s.replica.metrics;
  assert.ok(m.decode > 0);
  assert.ok(m.badSignature > 0 || m.invalidBlock > 0);
  // Oversize, wrong chain and an unknown validator are refused too.
  s.replica.onMessage('evil', new Uint8Array(10 * 1024 * 1024), NOW);
  assert.equal(m.oversize, 1);
});

test("the gossip timer relays the polka of the valid round (every signer's prevote), and runs one timer across heights", () => {
  const s = scriptWithNonProposer([0, 1]);
  const a = s.block(0, 'A');
  const [x, y] = s.others();
  s.deliver(s.proposal(0, a, -1));
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, a));
  assert.equal(s.replica.validRound, 0);
  s.deliver(s.vote(VOTE_TYPE.precommit, x!, 0, null));
  s.deliver(s.vote(VOTE_TYPE.precommit, y!, 0, null));
  s.fireTimeout(0, STEP.precommit);
  assert.equal(s.replica.round, 1);
  const gossip = s.out.filter((e) => e.kind === 'scheduleTimeout' && e.timeout.step === 3);
  assert.equal(gossip.length, 1, 'one gossip timer at a time');
  const key = gossip[0]!.kind === 'scheduleTimeout' ? gossip[0]!.timeout : null;
  const before = s.out.length;
  s.out.push(...s.replica.onTimeout(key!, NOW + 1_000));
  const relayed = new Set<number>();
  for (const e of s.out.slice(before)) {
    if (e.kind !== 'broadcast') continue;
    const m = decodeMessage(e.bytes);
    if (m.kind === 'vote' && m.vote.type === VOTE_TYPE.prevote && m.vote.round === 0) {
      assert.equal(toHex(m.vote.blockHash!), toHex(blockHashOf(a)));
      relayed.add(m.vote.validatorIndex);
    }
  }
  assert.deepEqual(
    [...relayed].sort(),
    [s.me, x!, y!].sort(),
    'the 2f+1 signed prevotes, as signed',
  );
  // The timer was re-armed once; the first key is now stale.
  const rearmed = s.out.slice(before).filter((e) => e.kind === 'scheduleTimeout');
  assert.equal(rearmed.length, 1);
  s.replica.onTimeout(key!, NOW + 2_000);
  assert.equal(s.replica.metrics.staleTimeout, 1);
});

test("an equivocator's second prevote counts for its value: a polka heard through a relay locks", () => {
  const s = scriptWithNonProposer([0]);
  const a = s.block(0, 'A');
  const [x, , z] = s.others();
  s.deliver(s.proposal(0, a, -1));
  // z's nil prevote arrives first; its prevote for A (relayed by whoever saw the polka) later.
  s.deliver(s.vote(VOTE_TYPE.prevote, z!, 0, null));
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
  assert.equal(s.replica.lockedRound, -1, 'two prevotes for A so far');
  s.deliver(s.vote(VOTE_TYPE.prevote, z!, 0, a));
  assert.equal(s.replica.lockedRound, 0, 'me, x and z prevoted A: a polka');
  assert.equal(s.replica.pendingEvidence, 1, 'and z is caught');
  // The relayed vote heard again is a plain duplicate, dropped before any check.
  const duplicates = s.replica.metrics.duplicateVote;
  s.deliver(s.vote(VOTE_TYPE.prevote, z!, 0, a));
  assert.equal(s.replica.metrics.duplicateVote, duplicates + 1);
  assert.equal(s.replica.pendingEvidence, 1);
});

test("a commit certificate may hold an equivocator's precommit for the block", () => {
  const s = scriptWithNonProposer([0]);
  const a = s.block(0, 'A');
  const [x, y, z] = s.others();
  s.deliver(s.proposal(0, a, -1));
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.precommit, z!, 0, null));
  s.deliver(s.vote(VOTE_TYPE.precommit, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.precommit, z!, 0, a));
  const finalize = s.out.find((e) => e.kind === 'finalizeBlock');
  assert.ok(finalize !== undefined && finalize.kind === 'finalizeBlock', 'decided');
  assert.deepEqual(
    finalize.commit.votes.map((v) => v.validatorIndex),
    [s.me, x!, z!].sort((p, q) => p - q),
  );
});

test('a proposal whose body a relay swapped (header intact) is refused before it takes the round: the real one is still prevoted', () => {
  const s = scriptWithNonProposer([0]);
  const a = s.block(0, 'A');
  const real = s.proposal(0, a, -1);
  const signed = decodeMessage(real);
  assert.ok(signed.kind === 'proposal');
  // Same header (so the same hash the proposer signed), another body.
  const swapped = encode(messageCodec, {
    kind: 'proposal',
    proposal: signed.proposal,
    block: { ...a, txs: [utf8('not A')] },
  });
  s.deliver(swapped);
  assert.equal(
    s.myVote(VOTE_TYPE.prevote, 0),
    undefined,
    'no vote on a body the proposer never signed',
  );
  assert.equal(s.replica.metrics.invalidBlock, 1);
  s.deliver(real);
  assert.equal(s.myVote(VOTE_TYPE.prevote, 0), toHex(blockHashOf(a)));
});

test('line 55: a proposal counts among the f+1 speaking in a higher round', () => {
  let s: Script | null = null;
  let x = -1;
  for (let k = 0; k < 4 && s === null; k++) {
    const c = new Script(4, k);
    const other = c.others().find((i) => i !== c.set.proposer(3));
    if (c.set.proposer(3) !== c.me && other !== undefined) {
      s = c;
      x = other;
    }
  }
  assert.ok(s !== null);
  s.deliver(s.vote(VOTE_TYPE.prevote, x, 3, null));
  assert.equal(s.replica.round, 0, 'one of four is not more than a third');
  s.deliver(s.proposal(3, s.block(3, 'C'), -1));
  assert.equal(s.replica.round, 3, 'the proposer of round 3 and x speak there: f+1');
  assert.equal(s.myVote(VOTE_TYPE.prevote, 3), toHex(blockHashOf(s.block(3, 'C'))));
});

test('a peer that re-sends a vote of a round we left is sent our votes of that round: it may still wait there for our lost precommit', () => {
  const s = scriptWithNonProposer([0, 1]);
  const [x, y] = s.others();
  s.fireTimeout(0, STEP.propose);
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, null));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, null));
  assert.equal(s.myVote(VOTE_TYPE.precommit, 0), 'nil');
  const precommitX = s.vote(VOTE_TYPE.precommit, x!, 0, null);
  s.deliver(precommitX);
  s.deliver(s.vote(VOTE_TYPE.precommit, y!, 0, null));
  s.fireTimeout(0, STEP.precommit);
  assert.equal(s.replica.round, 1);
  // x's gossip timer re-sends its round-0 precommit: x is still in round 0.
  const before = s.out.length;
  s.deliver(precommitX);
  const sent = s.out
    .slice(before)
    .flatMap((e) => (e.kind === 'send' && e.to === 'peer' ? [decodeMessage(e.bytes)] : []));
  assert.ok(
    sent.some(
      (m) =>
        m.kind === 'vote' &&
        m.vote.round === 0 &&
        m.vote.type === VOTE_TYPE.precommit &&
        m.vote.validatorIndex === s.me,
    ),
    'our precommit of round 0 goes back to it',
  );
});

test('a replica restarted from the synced part of its WAL keeps its lock: it prevotes nil on another value without a proof of lock', () => {
  const s = scriptWithNonProposer([0, 1]);
  const a = s.block(0, 'A');
  const [x, y] = s.others();
  s.deliver(s.proposal(0, a, -1));
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, a));
  assert.equal(s.replica.lockedRound, 0);
  // What survives a crash right after the precommit: every record up to the last sync.
  const persisted = s.out.flatMap((e) => (e.kind === 'persist' ? [e] : []));
  let durable = 0;
  persisted.forEach((e, i) => {
    if (e.sync) durable = i + 1;
  });
  const restarted = new Replica(
    { genesis: s.genesis, timeouts: FAST_TIMEOUTS },
    {
      signer: s.keyAt(s.me).signer,
      verifier: s.crypto,
      app: s.app,
      blocks: { load: () => null },
    },
  );
  const out: Effect[] = [];
  out.push(
    ...restarted.start(
      persisted.slice(0, durable).map((e) => e.record),
      NOW,
    ),
  );
  assert.equal(restarted.lockedRound, 0);
  assert.equal(toHex(restarted.lockedBlockHash!), toHex(blockHashOf(a)));
  for (const i of [x!, y!]) {
    out.push(...restarted.onMessage('peer', s.vote(VOTE_TYPE.precommit, i, 0, null), NOW));
  }
  out.push(...restarted.onTimeout({ height: 1, round: 0, step: STEP.precommit }, NOW));
  assert.equal(restarted.round, 1);
  out.push(...restarted.onMessage('peer', s.proposal(1, s.block(1, 'B'), -1), NOW));
  const prevotes = out.flatMap((e) => {
    if (e.kind !== 'broadcast') return [];
    const m = decodeMessage(e.bytes);
    return m.kind === 'vote' && m.vote.type === VOTE_TYPE.prevote && m.vote.round === 1
      ? [m.vote.blockHash]
      : [];
  });
  assert.deepEqual(prevotes, [null], 'locked on A: nil on B');
});

test('line 28: a re-proposal whose proof of lock is older than our lock, for another value, is prevoted nil', () => {
  const s = scriptWithNonProposer([0, 1, 2]);
  const a = s.block(0, 'A');
  const b = s.block(1, 'B');
  const [x, y, z] = s.others();
  // Round 0: a polka for A (us, x, y): locked on A.
  s.deliver(s.proposal(0, a, -1));
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, a));
  assert.equal(s.replica.lockedRound, 0);
  s.deliver(s.vote(VOTE_TYPE.precommit, x!, 0, null));
  s.deliver(s.vote(VOTE_TYPE.precommit, y!, 0, null));
  s.fireTimeout(0, STEP.precommit);
  // Round 1: B without a proof of lock (nil from us), then a polka for B: locked on B in round 1.
  s.deliver(s.proposal(1, b, -1));
  assert.equal(s.myVote(VOTE_TYPE.prevote, 1), 'nil');
  for (const i of [x!, y!, z!]) s.deliver(s.vote(VOTE_TYPE.prevote, i, 1, b));
  assert.equal(s.replica.lockedRound, 1);
  assert.equal(toHex(s.replica.lockedBlockHash!), toHex(blockHashOf(b)));
  s.deliver(s.vote(VOTE_TYPE.precommit, x!, 1, null));
  s.deliver(s.vote(VOTE_TYPE.precommit, y!, 1, null));
  s.fireTimeout(1, STEP.precommit);
  assert.equal(s.replica.round, 2);
  // Round 2: A again, with its round-0 polka as proof: older than our lock on B.
  s.deliver(s.proposal(2, a, 0));
  assert.equal(s.myVote(VOTE_TYPE.prevote, 2), 'nil');
  assert.equal(s.replica.lockedRound, 1, 'the lock stays');
});

// --- height 2: the certificate and evidence a block carries ----------------------

import { commitHashOf, makeEvidence } from '../../src/consensus/replica.ts';
import type { CommitCertificate, DuplicateVoteEvidence, Vote } from '../../src/consensus/types.ts';

/** A script past height 1 (A decided in round 0), where it is not the proposer of height 2's round 0. */
function atHeight2(): { s: Script; a: Block; appHash: Uint8Array; commit: CommitCertificate } {
  for (let k = 0; k < 4; k++) {
    const s = new Script(4, k);
    if (s.set.proposer(0) === s.me || s.set.advanced().proposer(0) === s.me) continue;
    const a = s.block(0, 'A');
    const [x, y, z] = s.others();
    s.deliver(s.proposal(0, a, -1));
    s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
    s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, a));
    for (const i of [x!, y!, z!]) s.deliver(s.vote(VOTE_TYPE.precommit, i, 0, a));
    const decided = s.out.find((e) => e.kind === 'finalizeBlock');
    assert.ok(decided !== undefined && decided.kind === 'finalizeBlock');
    const result = s.app.finalizeBlock(decided.block, decided.commit);
    s.out.push(...s.replica.onBlockExecuted(1, result, NOW));
    assert.equal(s.replica.height, 2);
    const votes = [x!, y!, z!]
      .sort((p, q) => p - q)
      .map((i) => {
        const m = decodeMessage(s.vote(VOTE_TYPE.precommit, i, 0, a));
        assert.ok(m.kind === 'vote');
        const v = m.vote;
        return {
          validatorIndex: v.validatorIndex,
          timestampMs: v.timestampMs,
          extension: v.extension,
          signature: v.signature,
        };
      });
    const commit = { height: 1, round: 0, blockHash: blockHashOf(a), votes };
    return { s, a, appHash: result.appHash, commit };
  }
  throw new Error('no validator that proposes neither height');
}

/** The replica's prevote at height 2, round 0, for a proposal of a block with this certificate and evidence. */
function prevoteAtHeight2(
  h: ReturnType<typeof atHeight2>,
  lastCommit: CommitCertificate,
  evidence: readonly DuplicateVoteEvidence[] = [],
): string | undefined {
  const { s, a, appHash } = h;
  const set2 = s.set.advanced();
  const txs = [utf8('B')];
  const block: Block = {
    header: {
      chainId: CHAIN_ID,
      height: 2,
      round: 0,
      timeMs: NOW + 1,
      proposerAddress: set2.validators[set2.proposer(0)]!.address,
      previousBlockHash: blockHashOf(a),
      previousAppHash: appHash,
      txsRoot: merkleRoot(txs),
      lastCommitHash: commitHashOf(lastCommit),
      evidenceHash: evidenceRoot(evidence),
      validatorsHash: set2.hash,
    },
    txs,
    evidence,
    lastCommit,
  };
  const hash = blockHashOf(block);
  const signature = s
    .keyAt(set2.proposer(0))
    .signer.sign(SIGN_KIND_CONSENSUS.proposal, proposalSignBytes(new Writer(), 2, 0, -1, hash));
  const from = s.out.length;
  s.deliver(
    encode(messageCodec, {
      kind: 'proposal',
      proposal: { height: 2, round: 0, polRound: -1, blockHash: hash, signature },
      block,
    }),
  );
  for (const e of s.out.slice(from)) {
    if (e.kind !== 'broadcast') continue;
    const m = decodeMessage(e.bytes);
    if (m.kind === 'vote' && m.vote.height === 2 && m.vote.type === VOTE_TYPE.prevote) {
      return m.vote.blockHash === null ? 'nil' : toHex(m.vote.blockHash);
    }
  }
  return undefined;
}

test('a block is prevoted only if its lastCommit is a certificate of more than 2/3 of the last height, each precommit signed for that block and round', () => {
  const good = atHeight2();
  assert.notEqual(prevoteAtHeight2(good, good.commit), 'nil', 'the real certificate');
  const cases: [string, (c: CommitCertificate) => CommitCertificate][] = [
    ['two thirds exactly (not more)', (c) => ({ ...c, votes: c.votes.slice(0, 2) })],
    ['another round than the votes signed', (c) => ({ ...c, round: 1 })],
    ['another block', (c) => ({ ...c, blockHash: sha256(utf8('other')) })],
    ['another height', (c) => ({ ...c, height: 2 })],
    [
      'a vote whose time was changed after signing',
      (c) => ({
        ...c,
        votes: c.votes.map((v, i) => (i === 0 ? { ...v, timestampMs: NOW + 9 } : v)),
      }),
    ],
    [
      'a vote whose extension was changed after signing',
      (c) => ({
        ...c,
        votes: c.votes.map((v, i) => (i === 0 ? { ...v, extension: utf8('ext y') } : v)),
      }),
    ],
  ];
  for (const [name, tamper] of cases) {
    const h = atHeight2();
    assert.equal(prevoteAtHeight2(h, tamper(h.commit)), 'nil', name);
    assert.ok(h.s.replica.metrics.badCertificate >= 1, name);
  }
});

test('evidence in a block: two validly signed votes of one validator for different values, in canonical order; anything else refuses the block', () => {
  const sign = (s: Script, index: number, round: number, hash: Uint8Array | null): Vote => ({
    type: VOTE_TYPE.prevote,
    height: 1,
    round,
    blockHash: hash,
    validatorIndex: index,
    timestampMs: 0,
    extension: new Uint8Array(0),
    signature: s
      .keyAt(index)
      .signer.sign(
        SIGN_KIND_CONSENSUS.prevote,
        voteSignBytes(new Writer(), VOTE_TYPE.prevote, 1, round, hash, 0, new Uint8Array(0)),
      ),
  });
  const good = atHeight2();
  const [x] = good.s.others();
  const valid = makeEvidence(sign(good.s, x!, 3, null), sign(good.s, x!, 3, sha256(utf8('v'))));
  assert.notEqual(prevoteAtHeight2(good, good.commit, [valid]), 'nil', 'real evidence');
  const cases: [string, (e: DuplicateVoteEvidence, s: Script) => DuplicateVoteEvidence[]][] = [
    ['votes of two rounds', (e, s) => [makeEvidence(e.voteA, sign(s, x!, 4, sha256(utf8('v'))))]],
    ['out of canonical order', (e) => [{ voteA: e.voteB, voteB: e.voteA }]],
    ['the same evidence twice', (e) => [e, e]],
    [
      'a signature of another validator',
      (e) => [{ ...e, voteB: { ...e.voteB, validatorIndex: (x! + 1) % 4 } }],
    ],
  ];
  for (const [name, make] of cases) {
    const h = atHeight2();
    const e = makeEvidence(sign(h.s, x!, 3, null), sign(h.s, x!, 3, sha256(utf8('v'))));
    assert.equal(prevoteAtHeight2(h, h.commit, make(e, h.s)), 'nil', name);
    assert.ok(h.s.replica.metrics.badEvidence >= 1, name);
  }
});

test('decided and waiting for execution: a late precommit for the block joins the certificate the next block carries; others do not', () => {
  const s = scriptWithNonProposer([0]);
  const a = s.block(0, 'A');
  const [x, y, z] = s.others();
  s.deliver(s.proposal(0, a, -1));
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.precommit, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.precommit, y!, 0, a));
  const finalize = s.out.find((e) => e.kind === 'finalizeBlock');
  assert.ok(finalize !== undefined && finalize.kind === 'finalizeBlock', 'decided');
  const deciders = [s.me, x!, y!].sort((p, q) => p - q);
  assert.deepEqual(
    finalize.commit.votes.map((v) => v.validatorIndex),
    deciders,
  );
  // Not for the block, or from another round: dropped.
  s.deliver(s.vote(VOTE_TYPE.precommit, z!, 1, a));
  s.deliver(s.vote(VOTE_TYPE.precommit, z!, 0, s.block(0, 'B')));
  // A forged signature: dropped.
  const late = s.vote(VOTE_TYPE.precommit, z!, 0, a);
  const forged = late.slice();
  forged[forged.length - 1]! ^= 1;
  s.deliver(forged);
  s.out.push(
    ...s.replica.onBlockExecuted(1, { appHash: new Uint8Array(32), validatorUpdates: [] }, NOW),
  );
  assert.deepEqual(
    s.replica.chainState.lastCommit!.votes.map((v) => v.validatorIndex),
    deciders,
  );
});

test('a late precommit for the decided block, before execution, is in the next height certificate', () => {
  const s = scriptWithNonProposer([0]);
  const a = s.block(0, 'A');
  const [x, y, z] = s.others();
  s.deliver(s.proposal(0, a, -1));
  s.deliver(s.vote(VOTE_TYPE.prevote, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.prevote, y!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.precommit, x!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.precommit, y!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.precommit, z!, 0, a));
  s.deliver(s.vote(VOTE_TYPE.precommit, z!, 0, a));
  s.out.push(
    ...s.replica.onBlockExecuted(1, { appHash: new Uint8Array(32), validatorUpdates: [] }, NOW),
  );
  const commit = s.replica.chainState.lastCommit!;
  assert.deepEqual(
    commit.votes.map((v) => v.validatorIndex),
    [0, 1, 2, 3],
  );
  const joined = commit.votes.find((v) => v.validatorIndex === z)!;
  assert.equal(new TextDecoder().decode(joined.extension), 'ext x', 'with its extension');
});
