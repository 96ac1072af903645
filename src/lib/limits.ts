// Every limit in one place, named with its unit last (STYLE habit 4). Their
// relationships are asserted at the bottom, when the module loads.

import { assert } from './assert.ts';

// --- codec ------------------------------------------------------------------
/** Longest string field (instrument names, client order ids, memos). */
export const STRING_BYTES_MAX = 256;
/** Longest opaque byte field (vote extensions, key material). */
export const BYTES_FIELD_MAX = 64 * 1024;
/** Most elements in one array field (batch actions, block transactions). */
export const ARRAY_LENGTH_MAX = 10_000;

// --- transactions -----------------------------------------------------------
/** Largest encoded signed transaction. */
export const TX_BYTES_MAX = 16 * 1024;
/** Most actions in one batch transaction. */
export const BATCH_ACTIONS_MAX = 64;

// --- blocks and messages ------------------------------------------------------
/** Most transactions in one block. */
export const BLOCK_TXS_MAX = 10_000;
/** Largest encoded block. */
export const BLOCK_BYTES_MAX = 8 * 1024 * 1024;
/** Largest message between peers. */
export const MESSAGE_BYTES_MAX = BLOCK_BYTES_MAX + 1024 * 1024;

assert(TX_BYTES_MAX <= BLOCK_BYTES_MAX, 'a transaction must fit in a block');
assert(BLOCK_BYTES_MAX < MESSAGE_BYTES_MAX, 'a block must fit in a message');
assert(BATCH_ACTIONS_MAX <= ARRAY_LENGTH_MAX, 'a batch must fit in an array field');

// --- order book (src/exchange/book) ---------------------------------------------
/** Most resting orders one market's book holds; bounds a decoded book snapshot. */
export const BOOK_ORDERS_MAX = 4_000_000;
/** Most price levels one depth query returns. */
export const BOOK_DEPTH_LEVELS_MAX = 10_000;
