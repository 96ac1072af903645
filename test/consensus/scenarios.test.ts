import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, decode, encode } from '../../src/codec/wire.ts';
import { sha256 } from '../../src/crypto/index.ts';
import { utf8 } from '../../src/lib/bytes.ts';
import { messageCodec, voteSignBytes } from '../../src/consensus/codec.ts';
import { SIGN_KIND_CONSENSUS } from '../../src/consensus/ports.ts';
import { VOTE_TYPE } from '../../src/consensus/types.ts';
import { ValidatorSet } from '../../src/consensus/validators.ts';
import { Harness } from './harness.ts';

test('an equivocating validator: its two prevotes become evidence, committed once, handed to the app', () => {
  const h = new Harness({ n: 4, seed: 11 });
  h.startAll();
  // Validator 3 signs, beside each real prevote at height 5, a conflicting one.
  const height = 5;
  const index = h.nodes[0]!.replica.validators.indexOf(h.keys[3]!.publicKey);
  const blockHash = sha256(utf8('another block'));
  const signature = h.keys[3]!.signer.sign(
    SIGN_KIND_CONSENSUS.prevote,
    voteSignBytes(new Writer(), VOTE_TYPE.prevote, height, 0, blockHash, 0, new Uint8Array(0)),
  );
  const fake = encode(messageCodec, {
    kind: 'vote',
    vote: {
      type: VOTE_TYPE.prevote,
      height,
      round: 0,
      blockHash,
      validatorIndex: index,
      timestampMs: 0,
      extension: new Uint8Array(0),
      signature,
    },
  });
  h.filter = (from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (
      from === 3 &&
      m.kind === 'vote' &&
      m.vote.type === VOTE_TYPE.prevote &&
      m.vote.height === height
    ) {
      h.filter = null;
      for (const i of [0, 1, 2]) if (i !== to) h.send(3, i, fake);
      h.send(3, to, fake);
    }
    return true;
  };
  assert.ok(h.run(() => h.minCommitted() >= height + 6));
  const withEvidence = h.nodes[0]!.app.blocks.filter((b) => b.evidence.length > 0);
  assert.equal(withEvidence.length, 1, 'included exactly once');
  const e = withEvidence[0]!.evidence[0]!;
  assert.equal(e.voteA.validatorIndex, index);
  assert.equal(e.voteA.height, height);
  assert.ok(h.nodes.slice(0, 3).every((n) => n.evidenceSeen.length >= 1));
  for (const n of h.nodes) assert.equal(n.replica.pendingEvidence, 0);
});

test('validator-set changes returned for height H take effect at H+2', () => {
  const h = new Harness({ n: 4, seed: 12, spareKeys: 1 });
  const H = 5;
  for (const n of h.nodes) n.app.updatesAt.set(H, [{ publicKey: h.keys[4]!.publicKey, power: 5 }]);
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= H + 5));
  const blocks = h.nodes[0]!.app.blocks;
  const before = ValidatorSet.fromUpdates(h.genesis.validators).hash.join();
  const hashAt = (height: number) => blocks[height - 1]!.header.validatorsHash.join();
  assert.equal(hashAt(H), before);
  assert.equal(hashAt(H + 1), before);
  assert.notEqual(hashAt(H + 2), before);
  assert.equal(hashAt(H + 3), hashAt(H + 2));
  assert.equal(h.nodes[0]!.replica.validators.size, 5);
  // The last commit of H+3 is signed by the five-member set (the new one never votes: it has no node).
  assert.ok(blocks[H + 3]!.lastCommit!.votes.every((v) => v.validatorIndex < 5));
});

test('with real Ed25519 signatures the replicas agree too', () => {
  const h = new Harness({ n: 4, seed: 13, crypto: 'ed25519' });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 20));
  for (let height = 1; height <= 20; height++) {
    assert.equal(new Set(h.nodes.map((n) => n.committed.get(height))).size, 1);
  }
});
