// Replay protection (docs/transactions.md, "Nonces"). Per account, the
// NONCE_WINDOW highest nonces accepted are remembered. A new nonce is accepted
// when it is
//   - within time of block time: blockTimeMs − NONCE_AGE_MS_MAX < nonce < blockTimeMs + NONCE_FUTURE_MS_MAX,
//   - not among the remembered ones, and
//   - above the smallest remembered one when the window is full.
// Unlike one counter per account, this lets many bots of one account submit in
// parallel, each with its own clock, as long as their nonces differ. A nonce
// once accepted can never be accepted again: while remembered it is a
// duplicate; once evicted it is at or below the window's smallest.
//
// Pure and integer-only. Cost: O(log W) to check, O(W) to accept (a splice in a
// small sorted array); W = NONCE_WINDOW.

import { NONCE_AGE_MS_MAX, NONCE_FUTURE_MS_MAX, NONCE_WINDOW } from '../../lib/limits.ts';
import { assert } from '../../lib/assert.ts';
import { divTrunc } from '../../lib/int.ts';
import type { Reader, Writer } from '../../codec/index.ts';

export type NonceRejection = 'DuplicateNonce' | 'StaleNonce' | 'FutureNonce';

// A window is a plain ascending array held by its owner (state.ts Principal):
// no object of its own between the address record and its nonces, which every
// transaction reads and the address leaf encodes.

/** Why a nonce is refused at this block time by the window `nonces`, or undefined if it may be accepted. */
export function checkNonce(
  nonces: readonly number[],
  nonce: number,
  blockTimeMs: number,
): NonceRejection | undefined {
  if (nonce <= blockTimeMs - NONCE_AGE_MS_MAX) return 'StaleNonce';
  if (nonce >= blockTimeMs + NONCE_FUTURE_MS_MAX) return 'FutureNonce';
  if (nonces.length === NONCE_WINDOW && nonce <= nonces[0]!) return 'StaleNonce';
  return search(nonces, nonce) >= 0 ? 'DuplicateNonce' : undefined;
}

/**
 * What a refused nonce is told, naming the bound it broke and, for a bound in
 * time, the block time it was judged at: `nonces` is the window checkNonce
 * read; `timeName` names that time (the mempool judges at the last block's).
 * A nonce is the signing time in ms since the epoch, so a nonce far from
 * block time most likely comes from a signer whose clock is off.
 */
export function nonceRefusalMessage(
  rejection: NonceRejection,
  nonces: readonly number[],
  nonce: number,
  blockTimeMs: number,
  timeName = 'block time',
): string {
  const unit = 'a nonce is the signing time in ms since the epoch and must be less than';
  if (rejection === 'FutureNonce') {
    return (
      `nonce ${nonce} is ${nonce - blockTimeMs} ms ahead of ${timeName} ${blockTimeMs}: ` +
      `${unit} ${durationText(NONCE_FUTURE_MS_MAX)} (NONCE_FUTURE_MS_MAX) ahead of it; ` +
      "the signer's clock is probably ahead"
    );
  }
  if (rejection === 'StaleNonce' && nonce <= blockTimeMs - NONCE_AGE_MS_MAX) {
    return (
      `nonce ${nonce} is ${blockTimeMs - nonce} ms behind ${timeName} ${blockTimeMs}: ` +
      `${unit} ${durationText(NONCE_AGE_MS_MAX)} (NONCE_AGE_MS_MAX) behind it; ` +
      "sign again with the current time (the signer's clock may be behind)"
    );
  }
  if (rejection === 'StaleNonce') {
    return (
      `nonce ${nonce} is not above ${nonces[0]}, the smallest of the signer's last ` +
      `${NONCE_WINDOW} nonces (NONCE_WINDOW): sign again with a later nonce`
    );
  }
  return `nonce ${nonce} is one the signer used already`;
}

/** A duration for messages: whole hours or minutes as such, else ms. */
function durationText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${divTrunc(ms, 3_600_000)} h`;
  if (ms % 60_000 === 0) return `${divTrunc(ms, 60_000)} min`;
  return `${ms} ms`;
}

/** Checks and, if accepted, remembers the nonce. */
export function acceptNonce(
  nonces: number[],
  nonce: number,
  blockTimeMs: number,
): NonceRejection | undefined {
  const rejection = checkNonce(nonces, nonce, blockTimeMs);
  if (rejection === undefined) recordNonce(nonces, nonce);
  return rejection;
}

/** Remembers a nonce that checkNonce accepted. */
export function recordNonce(nonces: number[], nonce: number): void {
  assert(Number.isSafeInteger(nonce) && nonce >= 0, 'nonce is a non-negative safe integer');
  const at = search(nonces, nonce);
  assert(at < 0, 'nonce recorded twice');
  // Nonces mostly rise: an append needs no splice (which also allocates the array it returns).
  if (-at - 1 === nonces.length) nonces.push(nonce);
  else nonces.splice(-at - 1, 0, nonce);
  if (nonces.length > NONCE_WINDOW) nonces.shift();
}

/** Count, then the first nonce, then each gap to the next (gaps ≥ 1, so one window has one encoding). */
export function writeNonces(w: Writer, nonces: readonly number[]): void {
  w.uvarint(nonces.length);
  let previous = 0;
  for (let i = 0; i < nonces.length; i++) {
    const nonce = nonces[i]!;
    w.uvarint(nonce - previous);
    previous = nonce;
  }
}

/** Reads a window written by writeNonces into `into` (empty); `field` names it in errors. */
export function readNonces(r: Reader, field: string, into: number[]): void {
  assert(into.length === 0, 'nonces read into an empty window');
  const n = r.uvarint(`${field}.length`, NONCE_WINDOW);
  let previous = 0;
  for (let i = 0; i < n; i++) {
    const gap = r.uvarint(`${field}[${i}]`);
    if (i > 0 && gap === 0) throw r.error(`${field}[${i}]`, 'nonces must ascend');
    const nonce = previous + gap;
    if (!Number.isSafeInteger(nonce)) throw r.error(`${field}[${i}]`, 'not a safe integer');
    into.push(nonce);
    previous = nonce;
  }
}

/** The index of x in ascending xs, or −(insertion point) − 1. */
function search(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  if (hi < 0 || x > xs[hi]!) return -xs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const y = xs[mid]!;
    if (y === x) return mid;
    if (y < x) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}
