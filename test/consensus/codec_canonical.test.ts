// Canonical encodings of what replicas send each other: every value has one
// encoding, and every byte string that decodes is that encoding of its value.
// A second encoding of a vote, proposal or block would give one value two
// hashes (a block hash names the header's bytes; evidence and certificates are
// hashed as encoded), so mutated and random bytes must either fail with a
// DecodeError or re-encode to exactly themselves.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DecodeError, decode, encode } from '../../src/codec/wire.ts';
import type { Codec } from '../../src/codec/wire.ts';
import {
  blockCodec,
  commitCodec,
  committedBlockCodec,
  evidenceCodec,
  headerCodec,
  messageCodec,
  proposalCodec,
  voteCodec,
} from '../../src/consensus/codec.ts';
import type {
  Block,
  CommitCertificate,
  CommitVote,
  DuplicateVoteEvidence,
  Header,
  Message,
  Proposal,
  Vote,
} from '../../src/consensus/types.ts';
import { VOTE_TYPE } from '../../src/consensus/types.ts';
import { ROUND_MAX, VALIDATORS_MAX } from '../../src/lib/limits.ts';

const bytesOf = (n: number): fc.Arbitrary<Uint8Array> =>
  fc.uint8Array({ minLength: n, maxLength: n });
const hash = bytesOf(32);
const safe = fc.oneof(
  fc.nat(200),
  fc.nat(),
  fc.constantFrom(127, 128, 16_383, 16_384, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
);
const height = safe.map((h) => Math.max(1, h));
const round = fc.oneof(fc.nat(5), fc.integer({ min: 0, max: ROUND_MAX }));
const index = fc.nat(VALIDATORS_MAX - 1);
const extension = fc.uint8Array({ minLength: 1, maxLength: 40 });

const vote: fc.Arbitrary<Vote> = fc
  .record({
    precommit: fc.boolean(),
    height,
    round,
    blockHash: fc.option(hash, { nil: null }),
    validatorIndex: index,
    timestampMs: safe,
    extension: fc.option(extension, { nil: null }),
    signature: bytesOf(64),
  })
  .map(({ precommit, extension: ext, timestampMs, ...v }) => ({
    ...v,
    type: precommit ? VOTE_TYPE.precommit : VOTE_TYPE.prevote,
    // A prevote carries no timestamp or extension; a nil vote no extension.
    timestampMs: precommit ? timestampMs : 0,
    extension: precommit && v.blockHash !== null && ext !== null ? ext : new Uint8Array(0),
  }));

const commitVote: fc.Arbitrary<CommitVote> = fc.record({
  validatorIndex: index,
  timestampMs: safe,
  extension: fc.uint8Array({ maxLength: 40 }),
  signature: bytesOf(64),
});

const commit: fc.Arbitrary<CommitCertificate> = fc
  .record({
    height,
    round,
    blockHash: hash,
    votes: fc.uniqueArray(commitVote, { maxLength: 6, selector: (v) => v.validatorIndex }),
  })
  .map((c) => ({ ...c, votes: [...c.votes].sort((a, b) => a.validatorIndex - b.validatorIndex) }));

const evidence: fc.Arbitrary<DuplicateVoteEvidence> = fc.record({ voteA: vote, voteB: vote });

const header: fc.Arbitrary<Header> = fc.record({
  chainId: fc.oneof(fc.constant('zomma-devnet-1'), fc.string({ maxLength: 20 })),
  height,
  round,
  timeMs: safe,
  proposerAddress: fc.uint8Array({ maxLength: 64 }),
  previousBlockHash: hash,
  previousAppHash: fc.uint8Array({ maxLength: 64 }),
  txsRoot: hash,
  lastCommitHash: hash,
  evidenceHash: hash,
  validatorsHash: hash,
});

const block: fc.Arbitrary<Block> = fc.record({
  header,
  txs: fc.array(fc.uint8Array({ maxLength: 30 }), { maxLength: 4 }),
  evidence: fc.array(evidence, { maxLength: 2 }),
  lastCommit: fc.option(commit, { nil: null }),
});

const proposal: fc.Arbitrary<Proposal> = fc
  .record({ height, round, pol: fc.nat(), blockHash: hash, signature: bytesOf(64) })
  .map(({ pol, ...p }) => ({ ...p, polRound: p.round === 0 ? -1 : (pol % (p.round + 1)) - 1 }));

const message: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ kind: fc.constant('proposal' as const), proposal, block }),
  fc.record({ kind: fc.constant('vote' as const), vote }),
  fc.record({ kind: fc.constant('evidence' as const), evidence }),
  fc.record({
    kind: fc.constant('blockRequest' as const),
    fromHeight: height,
    count: fc.integer({ min: 1, max: 64 }),
  }),
  fc.record({ kind: fc.constant('blockBusy' as const), fromHeight: height }),
  fc.record({
    kind: fc.constant('blockResponse' as const),
    blocks: fc.array(fc.record({ block, commit }), { maxLength: 2 }),
  }),
);

/** The decoded value, or undefined for a DecodeError; any other exception fails the test. */
function tryDecode<T>(codec: Codec<T>, bytes: Uint8Array): T | undefined {
  try {
    return decode(codec, bytes);
  } catch (e) {
    if (e instanceof DecodeError) return undefined;
    throw e;
  }
}

const MUTATIONS = ['set', 'flip', 'truncate', 'extend', 'insert', 'delete'] as const;

function mutate(b: Uint8Array, at: number, byte: number, how: (typeof MUTATIONS)[number]) {
  const i = b.length === 0 ? 0 : at % b.length;
  if (how === 'set' && b.length > 0) {
    const m = b.slice();
    m[i] = byte;
    return m;
  }
  if (how === 'flip' && b.length > 0) {
    const m = b.slice();
    m[i]! ^= 1 << (byte & 7);
    return m;
  }
  if (how === 'truncate') return b.slice(0, i);
  if (how === 'insert') return Uint8Array.of(...b.subarray(0, i), byte, ...b.subarray(i));
  if (how === 'delete') return Uint8Array.of(...b.subarray(0, i), ...b.subarray(i + 1));
  return Uint8Array.of(...b, byte);
}

function checkCodec<T>(name: string, codec: Codec<T>, arb: fc.Arbitrary<T>, runs: number): void {
  test(`${name}: decode(encode(x)) = x, and mutated bytes fail with DecodeError or re-encode to themselves`, () => {
    fc.assert(
      fc.property(
        arb,
        fc.nat(),
        fc.nat(255),
        fc.constantFrom(...MUTATIONS),
        (raw, at, byte, how) => {
          // fast-check's records have no prototype; decoded values are plain objects.
          const x = structuredClone(raw);
          const bytes = encode(codec, x);
          assert.deepStrictEqual(decode(codec, bytes), x);
          const m = mutate(bytes, at, byte, how);
          const y = tryDecode(codec, m);
          if (y !== undefined) assert.deepEqual(encode(codec, y), m);
        },
      ),
      { numRuns: runs, seed: 61 },
    );
  });
}

checkCodec('vote', voteCodec, vote, 3000);
checkCodec('proposal', proposalCodec, proposal, 2000);
checkCodec('commit certificate', commitCodec, commit, 2000);
checkCodec('evidence', evidenceCodec, evidence, 1000);
checkCodec('header', headerCodec, header, 2000);
checkCodec('block', blockCodec, block, 1000);
checkCodec('committed block', committedBlockCodec, fc.record({ block, commit }), 500);
checkCodec('message', messageCodec, message, 2000);

test('random bytes behind each message tag fail with DecodeError or re-encode to themselves', () => {
  fc.assert(
    // Tags 0 to 5: proposal, vote, evidence, blockRequest, blockResponse, blockBusy.
    fc.property(fc.nat(5), fc.uint8Array({ maxLength: 200 }), (tag, rest) => {
      const m = Uint8Array.of(tag, ...rest);
      const y = tryDecode(messageCodec, m);
      if (y !== undefined) assert.deepEqual(encode(messageCodec, y), m);
    }),
    { numRuns: 5000, seed: 62 },
  );
});
