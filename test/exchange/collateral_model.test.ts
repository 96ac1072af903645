// The collateral paths against the reference model (collateral_reference.ts):
// deposit attestations with Byzantine attesters and jailings, the faucet cap,
// withdrawals and transfers racing leveraged trades and liquidations.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCollateralModel } from './collateral_reference.ts';

for (const seed of [1, 2, 3]) {
  test(`collateral model, seed ${seed}`, () => {
    const stats = runCollateralModel(seed, 120);
    assert.ok(stats.credits > 0, `seed ${seed}: some deposits were credited`);
  });
}
