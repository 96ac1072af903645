import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode, encode } from '../../src/codec/wire.ts';
import { TX_BYTES_MAX } from '../../src/lib/limits.ts';
import { messageCodec } from '../../src/consensus/codec.ts';
import { utf8 } from '../../src/lib/bytes.ts';
import type { Effect } from '../../src/consensus/types.ts';
import { Harness } from './harness.ts';

// The catch-up buffer's eviction (onBlockResponse). Helpers as in catchup.test.ts.

function largeTxCount(height: number): number {
  return 290 + ((height * 7) % 5) * 17;
}

/** 4 replicas with large blocks (three fill a peer's share), replica 3 cut off at height 1. */
function runLargeWithLagging(height: number): Harness {
  const h = new Harness({ n: 4, seed: 36, compactWal: true });
  const tx = new Uint8Array(TX_BYTES_MAX);
  for (const node of h.nodes) {
    const small = node.app.prepareProposal.bind(node.app);
    node.app.prepareProposal = (at, round) =>
      at > height
        ? small(at, round)
        : [
            utf8(`${at}/${round} from ${node.index}`),
            ...new Array<Uint8Array>(largeTxCount(at)).fill(tx),
          ];
  }
  let reached = false;
  h.filter = (from, to, bytes) => {
    const m = decode(messageCodec, bytes);
    if (from === 1 && to === 0 && m.kind === 'vote' && m.vote.height === height) reached = true;
    return from !== 3 && to !== 3;
  };
  h.startAll();
  assert.ok(
    h.run(() => reached),
    `the others reach height ${height}`,
  );
  assert.equal(h.nodes[3]!.replica.height, 1);
  return h;
}

function responseOf(h: Harness, heights: readonly number[]): Uint8Array {
  const blocks = heights.map((height) => h.nodes[0]!.store.get(height)!);
  return encode(messageCodec, { kind: 'blockResponse', blocks });
}

function persistedBytes(effects: readonly Effect[]): number {
  let bytes = 0;
  for (const e of effects) if (e.kind === 'persist') bytes += e.record.length;
  return bytes;
}

test('a sole serving peer whose share is full of blocks past a gap, unasked blocks of it refused, still brings the gap: catch-up goes on', () => {
  const h = runLargeWithLagging(20);
  const lagging = h.nodes[3]!;
  const t = h.nowMs;
  // p0's real blocks arrive out of order, unasked (pushes, or late answers):
  // 10 to 12 fill its share; 9, 8 and 7 find it full and, unasked, push out
  // nothing (a faulty peer could otherwise have its far blocks logged again
  // at every height): dropped.
  for (const height of [10, 11, 12]) {
    assert.ok(
      persistedBytes(lagging.replica.onMessage('p0', responseOf(h, [height]), t)) > 0,
      `${height} kept`,
    );
  }
  for (const height of [9, 8, 7]) {
    assert.equal(
      persistedBytes(lagging.replica.onMessage('p0', responseOf(h, [height]), t)),
      0,
      `${height} dropped`,
    );
  }
  // Block 1, the one the node needs, pushes out p0's blocks above it: without
  // it they are never applied, and nothing else would free p0's share.
  let requests = 0;
  h.filter = (from, to, bytes) => {
    if (from === 3 && to === 0 && decode(messageCodec, bytes).kind === 'blockRequest') requests++;
    return (from !== 3 && to !== 3) || (from === 0 && to === 3) || (from === 3 && to === 0);
  };
  h.run(() => lagging.replica.height > 1, 20_000);
  assert.ok(requests > 0, `${requests} requests were sent`);
  assert.ok(
    lagging.replica.height > 1,
    `replica 3 stuck at height ${lagging.replica.height} after ${requests} requests`,
  );
});
