// The divergence check against peers that send forged blocks of our next
// height: a chain made by the consensus harness (fake signatures), and a
// verifier that counts the signature checks it is asked for.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, encode } from '../../src/codec/wire.ts';
import type { CommittedBlock, Verifier } from '../../src/consensus/index.ts';
import {
  SIGN_KIND_CONSENSUS,
  VOTE_TYPE,
  blockHashOf,
  messageCodec,
  voteSignBytes,
} from '../../src/consensus/index.ts';
import { sha256 } from '../../src/crypto/index.ts';
import { bytesEqual, utf8 } from '../../src/lib/bytes.ts';
import { DivergenceWatch, checkCertifiedBlock } from '../../src/node/watch.ts';
import { Harness } from '../consensus/harness.ts';

const HEIGHT = 3;

function setup() {
  const h = new Harness({ n: 4, seed: 41 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= HEIGHT + 1));
  let checks = 0;
  const verifier: Verifier = {
    verify: (...args) => {
      checks++;
      return h.verifier.verify(...args);
    },
  };
  const replica = (height: number) => ({
    height,
    validators: h.nodes[0]!.replica.validators,
  });
  // Our state after each height differs from the chain's from here on.
  const app = (height: number) => ({ height, appHash: sha256(utf8(`ours ${height}`)) });
  return { h, verifier, checks: () => checks, replica, app };
}

/**
 * Block `height` with another state after the last, under a certificate whose
 * first precommit its validator (Byzantine) really signed and whose others are
 * the real block's: the check costs two signatures before it fails.
 */
function forged(h: Harness, height: number, salt: number): CommittedBlock {
  const real = h.nodes[0]!.store.get(height)!;
  const header = { ...real.block.header, previousAppHash: sha256(utf8(`forged ${salt}`)) };
  const block = { ...real.block, header };
  const hash = blockHashOf(block);
  const byzantine = real.commit.votes[0]!.validatorIndex;
  const votes = real.commit.votes.map((v) => {
    if (v.validatorIndex !== byzantine) return v;
    const bytes = voteSignBytes(
      new Writer(256),
      VOTE_TYPE.precommit,
      height,
      real.commit.round,
      hash,
      v.timestampMs,
      v.extension,
    );
    // Vote indices are positions in the set, which orders the keys by address.
    const publicKey = h.nodes[0]!.replica.validators.validators[byzantine]!.publicKey;
    const signer = h.keys.find((k) => bytesEqual(k.publicKey, publicKey))!.signer;
    return { ...v, signature: signer.sign(SIGN_KIND_CONSENSUS.precommit, bytes) };
  });
  return { block, commit: { ...real.commit, blockHash: hash, votes } };
}

function response(blocks: readonly CommittedBlock[]): Uint8Array {
  return encode(messageCodec, { kind: 'blockResponse', blocks });
}

test('the divergence check examines one block of our height per message: a response of many forged ones costs one certificate', () => {
  const s = setup();
  const many = response(Array.from({ length: 50 }, (_, i) => forged(s.h, HEIGHT, i)));
  assert.equal(checkCertifiedBlock(many, s.app(HEIGHT - 1), s.replica(HEIGHT), s.verifier), null);
  assert.equal(s.checks(), 2);
});

test('the divergence check is bounded per peer: once per height for a peer whose block was not certified; a certified block still halts', () => {
  const s = setup();
  const watch = new DivergenceWatch(s.verifier);
  const app = s.app(HEIGHT - 1);
  const replica = s.replica(HEIGHT);
  for (let i = 0; i < 20; i++) {
    assert.equal(watch.check('p1', response([forged(s.h, HEIGHT, i)]), app, replica), null);
  }
  assert.equal(s.checks(), 2, 'one certificate for the first, none for the others');
  // Another peer costs its own check, once.
  assert.equal(watch.check('p2', response([forged(s.h, HEIGHT, 0)]), app, replica), null);
  assert.equal(watch.check('p2', response([forged(s.h, HEIGHT, 1)]), app, replica), null);
  assert.equal(s.checks(), 4);
  assert.equal(watch.check('p3', response([forged(s.h, HEIGHT, 0)]), app, replica), null);
  assert.equal(s.checks(), 6);
  // At the next height the first peer is examined again.
  const next = s.replica(HEIGHT + 1);
  const nextApp = s.app(HEIGHT);
  assert.equal(watch.check('p1', response([forged(s.h, HEIGHT + 1, 0)]), nextApp, next), null);
  assert.equal(s.checks(), 8);
  // The chain's real block, certified, disagrees with our state: found.
  const real = s.h.nodes[0]!.store.get(HEIGHT + 1)!;
  const divergence = watch.check('p4', response([real]), nextApp, next);
  assert.ok(divergence !== null);
  assert.equal(divergence.height, HEIGHT);
  assert.deepEqual(divergence.chainAppHash, real.block.header.previousAppHash);
});

test('a peer the replica refuses is still examined, once per height: a real divergence met among buffered catch-up blocks gets the peer refused, and its certified block must still halt us', () => {
  const s = setup();
  const watch = new DivergenceWatch(s.verifier);
  // The replica applied the peer's buffered block of this height, found it
  // disagrees with our state, and refuses the peer's blocks from then on:
  // the watch does not ask.
  const real = s.h.nodes[0]!.store.get(HEIGHT)!;
  const divergence = watch.check('p1', response([real]), s.app(HEIGHT - 1), s.replica(HEIGHT));
  assert.ok(divergence !== null, 'the only peer we hear from is our only way to learn of it');
  assert.deepEqual(divergence.chainAppHash, real.block.header.previousAppHash);
});
