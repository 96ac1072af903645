import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Prng } from '../../src/lib/prng.ts';
import {
  CryptoError,
  SIGN_KIND,
  VerifyPool,
  keyPairFromSeed,
  sign,
  signedBytes,
  verifyRaw,
} from '../../src/crypto/index.ts';
import type { VerifyItem } from '../../src/crypto/index.ts';

const CHAIN = 'zomma-pool-test';
const keys = Array.from({ length: 8 }, (_, i) => keyPairFromSeed(new Uint8Array(32).fill(i + 1)));

/** A seeded mix of valid signatures and every way of being invalid. */
function mixedBatch(n: number, seed: number): VerifyItem[] {
  const prng = new Prng(seed);
  const items: VerifyItem[] = [];
  for (let i = 0; i < n; i++) {
    const key = keys[prng.nextU32() % keys.length]!;
    const message = new Uint8Array(prng.nextU32() % 300);
    for (let j = 0; j < message.length; j++) message[j] = prng.nextU32() & 0xff;
    const signature = sign(key, CHAIN, SIGN_KIND.tx, message);
    const item: VerifyItem = {
      publicKey: key.publicKey,
      message: signedBytes(CHAIN, SIGN_KIND.tx, message),
      signature,
    };
    switch (prng.nextU32() % 8) {
      case 0:
        item.signature = signature.slice();
        item.signature[prng.nextU32() % 64]! ^= 1;
        break;
      case 1:
        item.message = signedBytes(CHAIN, SIGN_KIND.prevote, message);
        break;
      case 2:
        item.publicKey = keys[(keys.indexOf(key) + 1) % keys.length]!.publicKey;
        break;
      case 3:
        item.signature = signature.subarray(0, 63);
        break;
      case 4:
        item.publicKey = new Uint8Array(31);
        break;
      default:
        break;
    }
    items.push(item);
  }
  return items;
}

test('verdicts come back in order and match single-thread verification', async () => {
  const pool = new VerifyPool({ workers: 2 });
  try {
    for (const [n, seed] of [
      [1, 1],
      [7, 2],
      [200, 3],
      [3000, 4],
    ] as const) {
      const items = mixedBatch(n, seed);
      const expected = items.map((x) => verifyRaw(x.publicKey, x.message, x.signature));
      assert.ok(expected.includes(true) || n < 5);
      assert.ok(expected.includes(false) || n < 5);
      assert.deepEqual(await pool.verifyBatch(items), expected, `batch of ${n}`);
    }
    assert.deepEqual(await pool.verifyBatch([]), []);
  } finally {
    await pool.close();
  }
});

test('concurrent batches each get their own verdicts', async () => {
  const pool = new VerifyPool({ workers: 2, queueBatchesMax: 16 });
  try {
    const batches = Array.from({ length: 12 }, (_, i) => mixedBatch(50 + 37 * i, 100 + i));
    const results = await Promise.all(batches.map((b) => pool.verifyBatch(b)));
    for (const [i, batch] of batches.entries()) {
      assert.deepEqual(
        results[i],
        batch.map((x) => verifyRaw(x.publicKey, x.message, x.signature)),
      );
    }
  } finally {
    await pool.close();
  }
});

test('garbage items are false, never an error', async () => {
  const pool = new VerifyPool({ workers: 1 });
  try {
    const good = mixedBatch(1, 5)[0]!;
    const items = [
      null,
      {},
      { publicKey: 'x', message: good.message, signature: good.signature },
      { publicKey: good.publicKey, message: 'hello', signature: good.signature },
      { publicKey: good.publicKey, message: good.message, signature: [1, 2, 3] },
      { publicKey: new Uint8Array(32), message: new Uint8Array(0), signature: new Uint8Array(64) },
      good,
    ] as unknown as VerifyItem[];
    const expected = [
      false,
      false,
      false,
      false,
      false,
      false,
      verifyRaw(good.publicKey, good.message, good.signature),
    ];
    assert.deepEqual(await pool.verifyBatch(items), expected);
  } finally {
    await pool.close();
  }
});

test('a full queue refuses with VerifyQueueFull; accepted batches still finish', async () => {
  const pool = new VerifyPool({ workers: 1, queueBatchesMax: 2 });
  try {
    const batch = mixedBatch(20, 6);
    const first = pool.verifyBatch(batch);
    const second = pool.verifyBatch(batch);
    await assert.rejects(
      pool.verifyBatch(batch),
      (e: unknown) => e instanceof CryptoError && e.code === 'VerifyQueueFull',
    );
    const expected = batch.map((x) => verifyRaw(x.publicKey, x.message, x.signature));
    assert.deepEqual(await first, expected);
    assert.deepEqual(await second, expected);
    // Room again once they are done.
    assert.deepEqual(await pool.verifyBatch(batch), expected);
  } finally {
    await pool.close();
  }
});

test('close finishes accepted batches, then refuses new ones', async () => {
  const pool = new VerifyPool({ workers: 2 });
  const batch = mixedBatch(500, 7);
  const pending = pool.verifyBatch(batch);
  const closing = pool.close();
  assert.deepEqual(
    await pending,
    batch.map((x) => verifyRaw(x.publicKey, x.message, x.signature)),
  );
  await closing;
  await assert.rejects(pool.verifyBatch(batch), /closed/);
  await pool.close();
});

test('the caller may reuse its buffers as soon as verifyBatch returns', async () => {
  const pool = new VerifyPool({ workers: 1 });
  try {
    const items = mixedBatch(100, 8);
    const expected = items.map((x) => verifyRaw(x.publicKey, x.message, x.signature));
    const pending = pool.verifyBatch(items);
    for (const item of items) item.message.fill(0);
    assert.deepEqual(await pending, expected);
  } finally {
    await pool.close();
  }
});

test('a worker that dies fails only its own batches, and a new worker takes its place', async () => {
  const pool = new VerifyPool({ workers: 1 });
  try {
    const batch = mixedBatch(300, 9);
    const expected = batch.map((x) => verifyRaw(x.publicKey, x.message, x.signature));
    const doomed = pool.verifyBatch(batch);
    // Reach in to kill the worker, as a native crash or an out-of-memory would.
    const slots = (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] })
      .slots;
    await slots[0]!.worker.terminate();
    await assert.rejects(doomed, /verify worker exited/);
    assert.deepEqual(await pool.verifyBatch(batch), expected);
  } finally {
    await pool.close();
  }
});

test('no ArrayBuffer is detached in the calling thread or a worker: batches travel copied, not transferred', () => {
  // V8's optimized typed-array code assumes no ArrayBuffer was ever detached
  // in its thread; the first detach throws that code away (pool.ts). Traced
  // by V8 once per thread; in a process of its own, so this one's state does not count.
  const child = spawnSync(
    process.execPath,
    [
      '--trace-protector-invalidation',
      '--import',
      'tsx',
      join(import.meta.dirname, 'fixtures', 'pool_detach.ts'),
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(child.status, 0, child.stderr);
  const lines = child.stdout.trim().split('\n');
  const start = lines.indexOf('start');
  const end = lines.indexOf('end');
  assert.ok(start >= 0 && end > start, child.stdout);
  assert.deepEqual(lines.slice(start + 1, end), [], 'nothing detached while the batch ran');
  assert.equal(lines.at(-1), 'all valid');
});
