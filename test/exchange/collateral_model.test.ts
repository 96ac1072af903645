// The collateral paths against the reference model written from the docs
// (collateral_reference.ts): deposit attestations with Byzantine attesters
// and jailings, the faucet cap (and no faucet off devnet), withdrawals and
// transfers racing leveraged trades and liquidations, snapshots mid-run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCollateralModel } from './collateral_reference.ts';

const RUNS: { seed: number; devnet: boolean }[] = [
  { seed: 5, devnet: true },
  { seed: 15, devnet: true },
  { seed: 11, devnet: true },
  { seed: 30, devnet: true },
  { seed: 2, devnet: false },
  { seed: 9, devnet: false },
];

for (const { seed, devnet } of RUNS) {
  test(`collateral model, seed ${seed}${devnet ? '' : ', no faucet'}`, () => {
    const stats = runCollateralModel(seed, 150, devnet);
    const count = (code: string) => stats.codes.get(code) ?? 0;
    assert.ok(stats.credits > 0, `seed ${seed}: some deposits were credited`);
    assert.ok(stats.jailings > 0, `seed ${seed}: some validators were jailed`);
    assert.ok(stats.liquidations > 0, `seed ${seed}: some accounts were liquidated`);
    assert.equal(stats.restores, 2, `seed ${seed}: restored twice`);
    assert.ok(count('withdraw:ok') > 0, `seed ${seed}: some withdrawals went through`);
    assert.ok(
      count('withdraw:WithdrawalsPaused') + count('transfer:TransfersPaused') > 0,
      `seed ${seed}: some outflows were paused`,
    );
    assert.ok(
      stats.pausedThrough > 0,
      `seed ${seed}: a transfer into a sibling below zero passed a pause`,
    );
    assert.ok(count('attestDeposit:AlreadyCredited') > 0, `seed ${seed}: late attestations`);
    assert.ok(
      count('attestDeposit:DuplicateAttestation') > 0,
      `seed ${seed}: repeated attestations`,
    );
    if (!devnet) assert.ok(count('faucet:ok') === 0, `seed ${seed}: no faucet off devnet`);
    else assert.ok(count('faucet:FaucetCapExceeded') > 0, `seed ${seed}: draws past the cap`);
  });
}
