import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BatchableAction } from '../../src/exchange/tx/index.ts';
import { placeOrder } from '../../src/exchange/tx/index.ts';
import { BATCH_ACTIONS_MAX } from '../../src/lib/limits.ts';
import { packBatches } from '../../src/node/bots/bots.ts';

function group(instrument: string, orders: number): BatchableAction[] {
  const actions: BatchableAction[] = [{ kind: 'cancelAll', instrument }];
  for (let i = 0; i < orders; i++) {
    actions.push(
      placeOrder({
        instrument,
        side: 'buy',
        priceTicks: 100 - i,
        sizeLots: 1,
        timeInForce: 'postOnly',
      }),
    );
  }
  return actions;
}

test('the maker packs whole instrument groups into batches of at most BATCH_ACTIONS_MAX actions', () => {
  const groups = Array.from({ length: 88 }, (_, i) => group(`I${i}`, 6));
  const batches = packBatches(groups);
  const perBatch = Math.floor(BATCH_ACTIONS_MAX / 7);
  assert.equal(batches.length, Math.ceil(88 / perBatch));
  for (const b of batches) {
    assert.ok(b.length <= BATCH_ACTIONS_MAX);
    // Each group stays whole and in order: its cancelAll comes first, then its own orders.
    for (let i = 0; i < b.length; i += 7) {
      assert.equal(b[i]!.kind, 'cancelAll');
      const name = (b[i] as { instrument: string }).instrument;
      assert.ok(b.slice(i, i + 7).every((a) => (a as { instrument: string }).instrument === name));
    }
  }
  assert.deepEqual(batches.flat(), groups.flat());
  assert.deepEqual(packBatches([]), []);
});
