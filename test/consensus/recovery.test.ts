import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from '../../src/codec/wire.ts';
import { messageCodec, walRecordCodec } from '../../src/consensus/codec.ts';
import { Harness, equivocation } from './harness.ts';

test('a crash after any effect, then a restart from the durable WAL, never makes a replica sign twice', () => {
  // One run per crash point: replica 0 crashes right after its k-th effect, losing
  // every record after the last sync barrier (or keeping part of that tail), and
  // restarts at once. Every vote and proposal it ever released is checked.
  let points = 0;
  for (let k = 1; k <= 120; k++) {
    for (const keepUnsynced of [0, 2]) {
      // The WAL is cut at each synced checkpoint, as the node's is.
      const h = new Harness({ n: 4, seed: 100 + k, compactWal: keepUnsynced === 0 });
      let crashed = false;
      h.afterEffect = (node) => {
        if (crashed || node.index !== 0 || node.effectsDone !== k) return;
        crashed = true;
        h.crash(0, keepUnsynced);
      };
      h.startAll();
      assert.ok(h.run(() => crashed || h.minCommitted() >= 8));
      if (crashed) h.restart(0);
      assert.ok(
        h.run(() => h.minCommitted() >= 10),
        `crash point ${k}`,
      );
      assert.equal(h.doubleSigns, 0, `crash point ${k}`);
      assert.equal(h.nodes[0]!.replica.metrics.doubleSignRefused, 0, `crash point ${k}`);
      if (crashed) points++;
    }
  }
  assert.ok(points >= 200);
});

test('a replica replays its WAL and re-sends exactly what it signed', () => {
  const h = new Harness({ n: 4, seed: 7 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 3));
  h.crash(1);
  const before = h.released.size;
  h.restart(1);
  assert.ok(h.run(() => h.minCommitted() >= 12));
  assert.ok(h.released.size > before);
  assert.equal(h.doubleSigns, 0);
});

test('a replica down for 10,000 heights catches up from blocks with certificates', () => {
  const h = new Harness({ n: 4, seed: 8 });
  h.startAll();
  h.crash(3);
  assert.ok(h.run(() => h.minCommitted([0, 1, 2]) >= 10_000, 100_000_000));
  const target = h.minCommitted([0, 1, 2]);
  h.restart(3);
  assert.ok(h.run(() => h.height(3) >= target, 100_000_000));
  for (const height of [1, 5_000, target]) {
    assert.equal(h.nodes[3]!.committed.get(height), h.nodes[0]!.committed.get(height));
  }
  assert.deepEqual(h.nodes[3]!.app.appHash, h.nodes[0]!.app.results.get(h.height(3))!.appHash);
  // And it joins consensus again.
  const joined = h.minCommitted();
  assert.ok(h.run(() => h.minCommitted() >= joined + 5));
});

test('checkpoints are synced, so a log cut at each one restarts from it', () => {
  const h = new Harness({ n: 4, seed: 9, compactWal: true });
  let checkpoints = 0;
  let crashed = false;
  h.afterEffect = (node, effect) => {
    if (effect.kind !== 'persist' || effect.record[0] !== 0) return;
    assert.equal(effect.sync, true, 'a checkpoint is a sync barrier');
    checkpoints++;
    if (node.index === 2 && !crashed && node.app.height === 5) {
      crashed = true;
      // Only the checkpoint survives the cut: replay starts there.
      assert.equal(node.wal.length, 1);
      h.crash(2);
    }
  };
  h.startAll();
  assert.ok(h.run(() => crashed));
  h.restart(2);
  assert.equal(h.nodes[2]!.replica.height, 6);
  assert.ok(h.run(() => h.minCommitted() >= 12));
  assert.ok(checkpoints > 0);
  assert.equal(h.doubleSigns, 0);
});

test('timeouts are counted by step: none while all are up, a propose timeout per height a crashed validator should have proposed', () => {
  const h = new Harness({ n: 4, seed: 9 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 8));
  for (const node of h.nodes) {
    assert.deepEqual(node.replica.timeoutsFired, { propose: 0, prevote: 0, precommit: 0 });
  }
  h.crash(2);
  const from = h.minCommitted([0, 1, 3]);
  assert.ok(h.run(() => h.minCommitted([0, 1, 3]) >= from + 12));
  for (const i of [0, 1, 3]) {
    const fired = h.nodes[i]!.replica.timeoutsFired;
    // Round-robin: the crashed validator's turns come every four rounds, and each costs a round.
    assert.ok(fired.propose >= 2, `validator ${i}: ${JSON.stringify(fired)}`);
  }
});

test('pending evidence outlives a restart right after the checkpoint that dropped the log before it', () => {
  // Validator 3's two prevotes at one height reach the others as evidence;
  // each crashes right after its next checkpoint (the WAL holds nothing
  // before it: the node's log rotates there) and restarts. The evidence was
  // only in memory and in an input before that checkpoint: a restart lost it,
  // and as it is sent once, the equivocation went unpunished for good.
  const h = new Harness({ n: 4, seed: 31, compactWal: true });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 3));
  const evidence = equivocation(h, 3, h.nodes[0]!.replica.height);
  const bytes = encode(messageCodec, { kind: 'evidence', evidence });
  const pendingAtCrash = new Map<number, number>();
  h.afterEffect = (node, effect) => {
    if (node.index === 3 || pendingAtCrash.has(node.index)) return;
    if (effect.kind !== 'persist' || effect.record[0] !== 0) return;
    if (node.replica.pendingEvidence === 0) return;
    pendingAtCrash.set(node.index, node.replica.pendingEvidence);
    h.crash(node.index);
  };
  for (const to of [0, 1, 2]) h.send(3, to, bytes);
  assert.ok(
    h.run(
      () =>
        pendingAtCrash.size === 3 ||
        h.nodes.some((n) => n.app.blocks.some((b) => b.evidence.length > 0)),
    ),
    'the holders crash after a checkpoint, the evidence still pending',
  );
  assert.equal(pendingAtCrash.size, 3, 'no block took it before');
  h.afterEffect = null;
  for (const i of [0, 1, 2]) {
    h.restart(i);
    assert.equal(
      h.nodes[i]!.replica.pendingEvidence,
      pendingAtCrash.get(i),
      `node ${i} kept its evidence`,
    );
  }
  assert.ok(
    h.run(() => h.nodes[0]!.app.blocks.some((b) => b.evidence.length > 0)),
    'a later block commits it',
  );
  const carrying = h.nodes[0]!.app.blocks.filter((b) => b.evidence.length > 0);
  assert.equal(carrying.length, 1, 'once');
});

test('evidence held by one node is sent again, so the others commit it though that node never gets a proposal through', () => {
  // Only node 0 hears of validator 3's equivocation (received evidence is not
  // relayed), and its proposals never reach anyone. It went out once, when
  // it came: the others never had it, and no block could ever carry it.
  const h = new Harness({ n: 4, seed: 32 });
  h.startAll();
  assert.ok(h.run(() => h.minCommitted() >= 3));
  const evidence = equivocation(h, 3, h.nodes[0]!.replica.height);
  h.filter = (from, _to, bytes) => !(from === 0 && decode(messageCodec, bytes).kind === 'proposal');
  h.send(3, 0, encode(messageCodec, { kind: 'evidence', evidence }));
  assert.ok(
    h.run(() => h.nodes[0]!.replica.pendingEvidence === 1),
    'node 0 pools it',
  );
  assert.equal(h.nodes[1]!.replica.pendingEvidence, 0);
  const start = h.minCommitted();
  assert.ok(
    h.run(
      () =>
        h.nodes[1]!.app.blocks.some((b) => b.evidence.length > 0) || h.minCommitted() >= start + 30,
    ),
    'the chain goes on (about 10 heights a gossip tick here)',
  );
  const carrying = h.nodes[1]!.app.blocks.filter((b) => b.evidence.length > 0);
  assert.equal(carrying.length, 1, 'a block of another proposer commits it, once');
  assert.equal(carrying[0]!.evidence[0]!.voteA.height, evidence.voteA.height);
});

test('a checkpoint round-trips with pending evidence, with and without a pause, in one encoding', () => {
  const h = new Harness({ n: 4, seed: 1 });
  const state = h.nodes[0]!.replica.chainState;
  const evidence = [equivocation(h, 3, 1), equivocation(h, 2, 1)];
  const records = [
    { kind: 'checkpoint', state, evidence },
    { kind: 'checkpoint', state, signingPausedUntil: 7, evidence },
  ] as const;
  for (const record of records) {
    assert.deepEqual(decode(walRecordCodec, encode(walRecordCodec, record)), record);
  }
  const plain = encode(walRecordCodec, { kind: 'checkpoint', state });
  // No pause, then no evidence: written as nothing.
  assert.throws(
    () => decode(walRecordCodec, Uint8Array.of(...plain, 0, 0)),
    /no evidence is written as none/,
  );
});

test('a checkpoint round-trips the height its committed evidence starts from (state sync), alone or with a pause and evidence, in one encoding', () => {
  const h = new Harness({ n: 4, seed: 1 });
  const state = { ...h.nodes[0]!.replica.chainState, height: 5, committedEvidenceFrom: 6 };
  const evidence = [equivocation(h, 3, 1)];
  const records = [
    { kind: 'checkpoint', state },
    { kind: 'checkpoint', state, signingPausedUntil: 7 },
    { kind: 'checkpoint', state, evidence },
    { kind: 'checkpoint', state, signingPausedUntil: 7, evidence },
  ] as const;
  for (const record of records) {
    assert.deepEqual(decode(walRecordCodec, encode(walRecordCodec, record)), record);
  }
  // From height 1 on is every block's evidence: written as no field, never as 1.
  const { committedEvidenceFrom: _, ...complete } = state;
  const plain = encode(walRecordCodec, { kind: 'checkpoint', state: complete });
  assert.throws(() => decode(walRecordCodec, Uint8Array.of(...plain, 0, 0, 1)), /not a height/);
  // Nor a height the state has not reached.
  assert.throws(() => decode(walRecordCodec, Uint8Array.of(...plain, 0, 0, 7)), /not a height/);
  assert.equal(
    decode(walRecordCodec, Uint8Array.of(...plain, 0, 0, 6)).kind,
    'checkpoint',
    'the next height is the latest',
  );
  assert.throws(() =>
    encode(walRecordCodec, { kind: 'checkpoint', state: { ...state, committedEvidenceFrom: 1 } }),
  );
});

test('a checkpoint round-trips the offences of its committed evidence, known or not, in one encoding; one written before them reads with none known', () => {
  const h = new Harness({ n: 4, seed: 1 });
  const base = h.nodes[0]!.replica.chainState;
  const key3 = h.keys[3]!.publicKey;
  const hash = (b: number) => new Uint8Array(32).fill(b);
  const unknown = { height: 4, hash: hash(1) };
  const known = { height: 5, hash: hash(2), offence: { publicKey: key3, height: 3 } };
  const state = { ...base, height: 5, committedEvidence: [unknown, known] };
  const evidence = [equivocation(h, 3, 1)];
  const records = [
    { kind: 'checkpoint', state },
    { kind: 'checkpoint', state, signingPausedUntil: 7 },
    { kind: 'checkpoint', state, evidence },
    { kind: 'checkpoint', state: { ...state, committedEvidenceFrom: 6 } },
    {
      kind: 'checkpoint',
      state: { ...state, committedEvidenceFrom: 6 },
      signingPausedUntil: 7,
      evidence,
    },
  ] as const;
  for (const record of records) {
    assert.deepEqual(decode(walRecordCodec, encode(walRecordCodec, record)), record);
  }
  // Without a known offence nothing is written after the state: what builds before wrote.
  const before = { ...state, committedEvidence: [unknown, { height: 5, hash: hash(2) }] };
  const plain = encode(walRecordCodec, { kind: 'checkpoint', state: before });
  assert.deepEqual(decode(walRecordCodec, plain), { kind: 'checkpoint', state: before });
  // No offence known, or a committedEvidenceFrom of none with nothing after it, is not written.
  assert.throws(
    () => decode(walRecordCodec, Uint8Array.of(...plain, 0, 0, 0)),
    /before the offences/,
  );
  assert.throws(
    () => decode(walRecordCodec, Uint8Array.of(...plain, 0, 0, 0, 0, 0)),
    /no offence known/,
  );
});
