import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Reader, Writer, DecodeError } from '../../../src/codec/index.ts';
import {
  acceptNonce,
  checkNonce,
  readNonces,
  writeNonces,
} from '../../../src/exchange/tx/nonces.ts';
import { NONCE_AGE_MS_MAX, NONCE_FUTURE_MS_MAX, NONCE_WINDOW } from '../../../src/lib/limits.ts';

const T = 1_764_000_000_000;

test('a nonce is accepted once; a reuse is DuplicateNonce', () => {
  const w: number[] = [];
  assert.equal(acceptNonce(w, T, T), undefined);
  assert.equal(acceptNonce(w, T, T), 'DuplicateNonce');
  assert.equal(acceptNonce(w, T - 5, T), undefined); // out of order is fine while the window has room
  assert.deepEqual(w, [T - 5, T]);
});

test('nonces too old or too far ahead of block time are refused', () => {
  const w: number[] = [];
  assert.equal(checkNonce(w, T - NONCE_AGE_MS_MAX, T), 'StaleNonce');
  assert.equal(checkNonce(w, T - NONCE_AGE_MS_MAX + 1, T), undefined);
  assert.equal(checkNonce(w, T + NONCE_FUTURE_MS_MAX, T), 'FutureNonce');
  assert.equal(checkNonce(w, T + NONCE_FUTURE_MS_MAX - 1, T), undefined);
});

test('a full window refuses nonces at or below its smallest, and evicts the smallest', () => {
  const w: number[] = [];
  for (let i = 0; i < NONCE_WINDOW; i++) assert.equal(acceptNonce(w, T + i * 2, T), undefined);
  assert.equal(checkNonce(w, T, T), 'StaleNonce');
  assert.equal(checkNonce(w, T - 1, T), 'StaleNonce');
  assert.equal(acceptNonce(w, T + 1, T), undefined); // a gap above the smallest
  assert.equal(w.length, NONCE_WINDOW);
  assert.equal(w[0], T + 1);
  assert.equal(checkNonce(w, T + 2, T), 'DuplicateNonce');
});

/** The rule as stated, on a plain list: the model the window must agree with. */
function modelVerdict(accepted: number[], nonce: number, blockTimeMs: number): string | undefined {
  if (nonce <= blockTimeMs - NONCE_AGE_MS_MAX) return 'StaleNonce';
  if (nonce >= blockTimeMs + NONCE_FUTURE_MS_MAX) return 'FutureNonce';
  const top = [...accepted].sort((a, b) => b - a).slice(0, NONCE_WINDOW);
  if (top.length === NONCE_WINDOW && nonce <= top[top.length - 1]!) return 'StaleNonce';
  return top.includes(nonce) ? 'DuplicateNonce' : undefined;
}

test('property: agrees with the stated rule, and never accepts a nonce twice', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 0, max: 50 })), {
        maxLength: 400,
      }),
      (steps) => {
        const w: number[] = [];
        const accepted: number[] = [];
        const ever = new Set<number>();
        let blockTimeMs = T;
        for (const [offset, advance] of steps) {
          blockTimeMs += advance;
          const nonce = T + offset;
          const verdict = acceptNonce(w, nonce, blockTimeMs);
          assert.equal(verdict, modelVerdict(accepted, nonce, blockTimeMs));
          if (verdict === undefined) {
            assert.ok(!ever.has(nonce), 'accepted twice');
            ever.add(nonce);
            accepted.push(nonce);
          }
          assert.ok(w.length <= NONCE_WINDOW);
        }
      },
    ),
    { numRuns: 300 },
  );
});

function encodeWindow(w: readonly number[]): Uint8Array {
  const writer = new Writer();
  writeNonces(writer, w);
  return writer.finish();
}

function decodeWindow(bytes: Uint8Array): number[] {
  const r = new Reader(bytes);
  const w: number[] = [];
  readNonces(r, 'nonces', w);
  r.done('nonces');
  return w;
}

test('property: the snapshot encoding round-trips and is canonical', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), {
        maxLength: NONCE_WINDOW,
      }),
      fc.nat(),
      fc.integer({ min: 0, max: 255 }),
      (nonces, at, byte) => {
        const w: number[] = [];
        w.push(...nonces.sort((a, b) => a - b));
        const bytes = encodeWindow(w);
        assert.deepEqual(decodeWindow(bytes), w);
        const m = bytes.slice();
        m[at % m.length] = byte;
        try {
          assert.deepEqual(encodeWindow(decodeWindow(m)), m);
        } catch (e) {
          assert.ok(e instanceof DecodeError, String(e));
        }
      },
    ),
    { numRuns: 500 },
  );
  // a repeated nonce (gap 0) has no place in a window
  assert.throws(() => decodeWindow(Uint8Array.of(2, 5, 0)), DecodeError);
});
