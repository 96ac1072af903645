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
/**
 * Peer messages the node loop holds while a WAL sync runs on the thread
 * pool (consensus inputs wait for it): past this many bytes the newest are
 * dropped, as a lost message is, and re-gossip makes up for them. Bounds
 * what a long disk stall times many peers' traffic can pile up.
 */
export const LOOP_QUEUED_MESSAGE_BYTES_MAX = 8 * MESSAGE_BYTES_MAX;
/**
 * What each held message counts against LOOP_QUEUED_MESSAGE_BYTES_MAX on top
 * of its bytes: its input and views take a few hundred bytes whatever its
 * size, and empty or tiny messages counted by their bytes alone had no bound.
 */
export const LOOP_QUEUED_MESSAGE_OVERHEAD_BYTES = 512;

assert(TX_BYTES_MAX <= BLOCK_BYTES_MAX, 'a transaction must fit in a block');
assert(BLOCK_BYTES_MAX < MESSAGE_BYTES_MAX, 'a block must fit in a message');
assert(BATCH_ACTIONS_MAX <= ARRAY_LENGTH_MAX, 'a batch must fit in an array field');

// --- order book (src/exchange/book) ---------------------------------------------
/** Most resting orders one market's book holds; bounds a decoded book snapshot. */
export const BOOK_ORDERS_MAX = 4_000_000;
/** Most price levels one depth query returns. */
export const BOOK_DEPTH_LEVELS_MAX = 10_000;
/** Emptied price levels one book side keeps for reuse (memory only, not state). */
export const LEVEL_SPARES_MAX = 1024;
/** Order records of departed orders one book keeps for reuse (memory only, not state). */
export const ORDER_SPARES_MAX = 65_536;

// --- transaction fields and nonces (src/exchange/tx, docs/transactions.md) ----
// (The chain id's length is CHAIN_ID_BYTES_MAX and the nonce window's limits are
// NONCE_WINDOW, NONCE_AGE_MS_MAX and NONCE_FUTURE_MS_MAX, in later sections.)
/** Longest instrument name, e.g. 'BTC-27DEC26-60000-C'. */
export const INSTRUMENT_BYTES_MAX = 48;
/** Longest client order id (a UUID's 36 characters). */
export const CLIENT_ORDER_ID_BYTES_MAX = 36;
/** Longest withdrawal destination (an address on another chain). */
export const WITHDRAW_DESTINATION_BYTES_MAX = 128;
/** Longest agent name. */
export const AGENT_NAME_BYTES_MAX = 32;
/** Largest quote amount in one action (quote units, 6 decimals): 2^63 − 1. */
export const AMOUNT_QUOTE_MAX = (1n << 63n) - 1n;
/** Largest price in ticks and size in lots: safe integers, so products go through bigint. */
export const PRICE_TICKS_MAX = Number.MAX_SAFE_INTEGER;
export const SIZE_LOTS_MAX = Number.MAX_SAFE_INTEGER;
/**
 * Largest index in ticks: an oracle price (up to 2^96 quote units) saturates
 * here, so that the mark's band, a market order's slippage bound and the mark
 * itself (each under twice the index) stay safe integers.
 */
export const INDEX_TICKS_MAX = Math.floor(PRICE_TICKS_MAX / 2);

assert(CLIENT_ORDER_ID_BYTES_MAX <= STRING_BYTES_MAX, 'a client order id is a string field');
assert(INSTRUMENT_BYTES_MAX <= STRING_BYTES_MAX, 'an instrument name is a string field');
assert(WITHDRAW_DESTINATION_BYTES_MAX <= STRING_BYTES_MAX, 'a destination is a string field');

// --- exchange state machine (src/exchange) ------------------------------------
/** Most markets one genesis lists. */
export const GENESIS_MARKETS_MAX = 64;
/** Most fee tiers one genesis lists. */
export const FEE_TIERS_MAX = 16;
/** Most validators one genesis lists. */
export const GENESIS_VALIDATORS_MAX = 256;
/** Most agent keys one address may have registered at once. */
export const AGENTS_PER_ADDRESS_MAX = 16;
/** Most accounts (address × subaccount) one state holds; bounds a decoded snapshot. */
export const ACCOUNTS_MAX = 10_000_000;
/**
 * Most deposits awaiting attestation at once. Each validator may attest at
 * most its share, PENDING_DEPOSITS_MAX / validators, of those still pending
 * (attest_deposit.ts), so that no validator's attestations crowd out another's.
 */
export const PENDING_DEPOSITS_MAX = 100_000;
/**
 * Proposals not yet executed that one validator may have approved (governance.ts):
 * a proposal that never gathers 2/3 of stake stays forever, so without this one
 * validator could grow the state (and every snapshot) without bound.
 */
export const PROPOSALS_PENDING_PER_VALIDATOR_MAX = 1_000;
/** Most proposals, executed or not, one state holds; bounds a decoded snapshot. */
export const PROPOSALS_MAX = 1_000_000;
assert(
  GENESIS_VALIDATORS_MAX * PROPOSALS_PENDING_PER_VALIDATOR_MAX < PROPOSALS_MAX,
  'every validator at its cap of pending proposals leaves room for executed ones',
);
/**
 * Most accounts liquidated in one block (the rest wait for the next block): a
 * liquidation that does nothing but cancel the account's orders (no fill,
 * nothing paid, no auction started, no deleveraging queue run) takes no place.
 */
export const LIQUIDATIONS_PER_BLOCK_MAX = 1_000;
/**
 * Most liquidations one block attempts, those that close nothing included
 * (docs/exchange.md, "Liquidation and deleveraging"): bounds the block's
 * liquidation work whatever accounts wait on options no one can take.
 */
export const LIQUIDATION_ATTEMPTS_PER_BLOCK_MAX = 4 * LIQUIDATIONS_PER_BLOCK_MAX;
/**
 * Rounds of an auction's uncross that may cancel insolvent orders and compute
 * again; past them the rest are screened at their own limit prices, which
 * needs no further round (docs/exchange.md, "Volatility auctions"). Bounds the
 * uncross at (rounds + 2) × O(n log n) whatever orders are lined up to turn
 * insolvent one after another.
 */
export const AUCTION_UNCROSS_ROUNDS_MAX = 8;
/** Most premium samples of one funding interval (genesis: fundingIntervalMs / fundingSampleMs). */
export const FUNDING_SAMPLES_PER_INTERVAL_MAX = 10_080;
/** Funding: the interest term may move the rate at most this far from the premium (ppm per interval). */
export const FUNDING_INTEREST_BAND_PPM = 500;
/**
 * Largest premium sample (ppm of the index): a bid far above a small index
 * (a few ticks) would otherwise give a sample, and an interval's sum of
 * samples, beyond a safe integer; at this bound the sum of a whole interval's
 * samples stays one. Far above any funding cap or mark band, so it changes
 * neither unless samples of both signs mix.
 */
export const PREMIUM_SAMPLE_PPM_MAX = Math.floor(
  Number.MAX_SAFE_INTEGER / FUNDING_SAMPLES_PER_INTERVAL_MAX,
);
/** Signer → address memo entries kept by one exchange (derived data, cleared when full). */
export const ADDRESS_CACHE_ENTRIES_MAX = 200_000;

// --- nonces (src/exchange/tx/nonces.ts, docs/transactions.md) -----------------
/** Highest nonces remembered per address (docs/transactions.md, "Nonces"). */
export const NONCE_WINDOW = 100;
/** A nonce must be above blockTime − this (ms). */
export const NONCE_AGE_MS_MAX = 24 * 3_600_000;
/** A nonce must be below blockTime + this (ms). */
export const NONCE_FUTURE_MS_MAX = 3_600_000;

// --- option math (src/math) ---------------------------------------------------
// Values at the math scale (10^18 = 1.0) carry the suffix WAD.
/** Longest decimal string the math module parses. */
export const MATH_DECIMAL_CHARS_MAX = 64;
/** Largest spot, strike or option price: 10^15 quote units. */
export const MATH_PRICE_WAD_MAX = 10n ** 33n;
/** Largest ratio between spot and strike, either way round. */
export const MATH_MONEYNESS_MAX = 1_000_000n;
/** Lowest volatility: 0.01% a year (below it the total variance loses digits). */
export const MATH_VOL_WAD_MIN = 10n ** 14n;
/** Highest volatility: 1000% a year. */
export const MATH_VOL_WAD_MAX = 10n * 10n ** 18n;
/** Shortest time to expiry: 10^-8 years, about a third of a second. */
export const MATH_TIME_YEARS_WAD_MIN = 10n ** 10n;
/** Longest time to expiry: 30 years. */
export const MATH_TIME_YEARS_WAD_MAX = 30n * 10n ** 18n;
/** Largest absolute interest rate: 100% a year. */
export const MATH_RATE_WAD_MAX = 10n ** 18n;
/** Largest argument of the public exp (e^100 is about 2.7e43). */
export const MATH_EXP_ARG_WAD_MAX = 100n * 10n ** 18n;
/** Newton steps of the implied-volatility solver before it falls back to bisection (at most 80 more). */
export const MATH_IV_NEWTON_ITERATIONS_MAX = 40;

assert(MATH_VOL_WAD_MIN < MATH_VOL_WAD_MAX, 'volatility range is empty');
assert(MATH_TIME_YEARS_WAD_MIN < MATH_TIME_YEARS_WAD_MAX, 'time range is empty');

// --- consensus ----------------------------------------------------------------
/** Most validators in one set (and so most votes in one commit certificate). */
export const VALIDATORS_MAX = 256;
/** Largest voting power of one validator. */
export const VALIDATOR_POWER_MAX = 2 ** 40;
/** Largest total voting power: 3 × total stays a safe integer for the 2/3 thresholds. */
export const TOTAL_POWER_MAX = 2 ** 50;
/** Most validator-set changes returned with one executed block. */
export const VALIDATOR_UPDATES_MAX = 64;
/** Largest round a message may name. */
export const ROUND_MAX = 2 ** 31;
/** How far past its current round a replica keeps votes (enough to see a round skip). */
export const ROUNDS_AHEAD_MAX = 1_000;
/**
 * Proposals one proposer may have kept for rounds ahead of a replica's. Each
 * is signed, kept and logged, and may hold a largest block: a faulty proposer
 * signing one for every round it leads within ROUNDS_AHEAD_MAX could make a
 * replica keep about 250 of them (some 2 GiB) per height with 4 validators.
 * An honest proposer proposes in its current round only, and re-sends that
 * proposal every GOSSIP_INTERVAL_MS: one suffices to have it at hand when we
 * get to its round.
 */
export const PROPOSALS_AHEAD_PER_PROPOSER_MAX = 1;
/**
 * Rounds beyond its next one for which a replica keeps one validator's votes
 * (its "slots"). Each slot moves up to a higher round at most once per gossip
 * period. Without it one validator could sign two types and three values for
 * every round within ROUNDS_AHEAD_MAX, each checked, kept and logged: some
 * 6,000 signature checks and 25 MB a height. The round skip needs only each
 * honest validator's current round, which it re-sends every gossip period.
 */
export const VOTE_ROUNDS_AHEAD_PER_VALIDATOR_MAX = 2;
/** Longest chain id. */
export const CHAIN_ID_BYTES_MAX = 64;
/** Longest hash-like field (app hash, addresses). */
export const HASH_BYTES_MAX = 64;
/** Largest vote extension. */
export const VOTE_EXTENSION_BYTES_MAX = 4 * 1024;
/** Most evidence items in one block. */
export const EVIDENCE_PER_BLOCK_MAX = 16;
/** Most verified, not yet committed evidence items a replica keeps. */
export const EVIDENCE_POOL_MAX = 256;
/**
 * Evidence items against one validator (by key) the pool keeps. A validator
 * may sign any number of conflicting pairs, each distinct valid evidence: with
 * the pool's bound alone it could fill the pool and keep out the evidence
 * against others. One suffices: the exchange jails and slashes an offender once.
 */
export const EVIDENCE_PER_OFFENDER_MAX = 1;
/** Evidence older than this many heights (relative to the block that would carry it) is refused. */
export const EVIDENCE_AGE_HEIGHTS_MAX = 100;
/**
 * Heights a validator signs nothing after it sees a certificate holding a
 * precommit by its key that it never signed (another process with the same
 * key, or a lost WAL): the other signer must have been silent this long.
 */
export const DOUBLE_SIGN_WATCH_HEIGHTS = 10;
/**
 * Messages for the next height kept until the replica gets there; one peer
 * keeps at most this divided by the number of validators (they are unverified:
 * one peer's small votes could otherwise take every slot).
 */
export const FUTURE_MESSAGES_MAX = 4 * VALIDATORS_MAX;
/**
 * Of FUTURE_MESSAGES_MAX, what peers that are not validators of the next
 * height hold together; the rest is the validators' (each its share of it).
 * Without it, as many full nodes as there are validators, each within its
 * share, could fill every slot and hold the validators' own messages off
 * until their next gossip. A quarter: a full node relays what validators
 * signed, so a validator behind sentries still has room.
 */
export const FUTURE_MESSAGES_FULL_NODES_MAX = FUTURE_MESSAGES_MAX / 4;
/**
 * Bytes of those messages kept per peer: they are kept unverified, and one
 * peer's count alone would let it hold FUTURE_MESSAGES_MAX largest messages
 * (about 9 GiB). Room for the next height's proposal and a round of relayed votes.
 */
export const FUTURE_BYTES_PER_PEER_MAX = 2 * MESSAGE_BYTES_MAX;
/** Most blocks one catch-up request asks for (and one response carries). */
export const CATCHUP_BATCH_BLOCKS_MAX = 64;
/** Most verified-later blocks a catching-up replica holds. */
export const CATCHUP_BUFFER_BLOCKS_MAX = 4 * CATCHUP_BATCH_BLOCKS_MAX;
/**
 * Bytes of catch-up blocks buffered per sending peer (an upper bound of their
 * encoding). They are kept unchecked until their height comes, so the height
 * bound alone let one peer hold CATCHUP_BUFFER_BLOCKS_MAX largest blocks
 * (about 2.3 GiB), each also written to the WAL. An honest server's blocks fit:
 * the next batch is asked for once at most half a batch is left, and a batch
 * is one message. When a peer's blocks held past a missing height fill it
 * (they are never applied, so they never free), its block at a lower height
 * pushes out its own highest ones instead of being dropped, within this many
 * bytes pushed out per peer and height (the block of our own height aside,
 * applied or refused at once): what one peer gets logged per height stays
 * within a few times this.
 */
export const CATCHUP_BUFFER_BYTES_PER_PEER_MAX = 2 * MESSAGE_BYTES_MAX;
/** Before asking again, or pushing blocks to the same lagging peer again. */
export const CATCHUP_RETRY_MS = 1_000;
/**
 * An answer to a catch-up request keeps its sender the role of the peer asked
 * (docs/protocol.md, "Catch-up") only if it lets us apply at least this many
 * blocks from the first asked for, or all the peers claim to hold if fewer, or
 * CATCHUP_ANSWER_BYTES_MIN of them. A peer answering each request with one
 * block would otherwise keep the role and set a pace of one block per retry
 * period. A quarter batch, not a whole one: part of an honest answer can be
 * dropped (its sender's earlier blocks still fill its byte bound in our
 * buffer), and a peer keeping the role with a quarter batch per request still
 * moves us 16 blocks per retry period.
 */
export const CATCHUP_ANSWER_BLOCKS_MIN = CATCHUP_BATCH_BLOCKS_MAX / 4;
/**
 * The bytes that make an answer fair whatever its count: an honest server
 * stops before a block that would take its answer past MESSAGE_BYTES_MAX, so
 * blocks of about one size fill at least half a message.
 */
export const CATCHUP_ANSWER_BYTES_MIN = MESSAGE_BYTES_MAX / 2;
/**
 * What one peer's block requests may draw from us per CATCHUP_RETRY_MS, in
 * bytes. Each request is charged the encoding of every block it loaded (the
 * one that did not fit in the answer included, unless the store tells a
 * block's size without loading it, as the node's does) and CATCHUP_SERVE_LOOKUP_BYTES
 * for itself and for each block looked up; once a peer's charges in its
 * current period reach this, its requests are dropped (`rateLimited`) until
 * the period ends. So in one period a peer draws at most this plus one answer:
 * no more bytes than eight full answers, and at most
 * CATCHUP_SERVE_BYTES_PER_PEER_MAX / CATCHUP_SERVE_LOOKUP_BYTES (4,608)
 * block lookups. Without a budget one peer could keep the node loop loading
 * and sending blocks (a request is a few bytes). A count of answers (eight
 * per period) was hit by honest laggers: an answer closes the request and
 * the next goes out at once, so a node whose blocks fill a message each, or
 * one that applies blocks fast, asked more than eight times a second and
 * lost a retry period and its peer on the ninth. An honest lagger draws what
 * it applies plus what it buffers (CATCHUP_BUFFER_BYTES_PER_PEER_MAX per
 * sender): it reaches the budget only by applying from one peer more than six
 * full messages of blocks a second, or more than about 3,800 small ones (a
 * few KiB each with its certificate, and the lookup charge), beyond what a
 * node executing them applies (the consensus tests' laggers, whose execution
 * costs nothing, draw 2,000 within one period).
 */
export const CATCHUP_SERVE_BYTES_PER_PEER_MAX = 8 * MESSAGE_BYTES_MAX;
/**
 * What a block request, and each block looked up for it, is charged against
 * CATCHUP_SERVE_BYTES_PER_PEER_MAX: a lookup costs the server a load, a
 * decode and two encodings whatever the block's size (about 60 µs for a
 * devnet block of 3.4 KB on the loaded 2-core machine), so small blocks are
 * charged for that CPU too. At 4 KiB one peer could draw some 10,000 small
 * blocks a second, most of a core; at 16 KiB about 3,800.
 */
export const CATCHUP_SERVE_LOOKUP_BYTES = 16 * 1024;
/**
 * What all peers' block requests (and the blocks pushed to peers behind)
 * may draw from us together per CATCHUP_RETRY_MS beyond each peer's floor
 * (CATCHUP_SERVE_FLOOR_BYTES), charged as CATCHUP_SERVE_BYTES_PER_PEER_MAX
 * is; config.catchupServeTotalMiBPerS sets it. Each peer's own budget alone
 * let every configured peer draw that much at once: many full nodes (or
 * Byzantine ones), each within its own, took the node's disk and CPU from
 * consensus. Two peers' full budget: two laggers at once go at full speed,
 * more share it. A request over it is answered `blockBusy`, and the asker
 * turns to another peer at once. Full nodes together draw at most half of
 * it (CATCHUP_SERVE_FULL_NODES_PART, the open part): the rest is the
 * validators', in equal shares among those that asked in the last two
 * periods (Replica.serveWithinBudgets).
 */
export const CATCHUP_SERVE_TOTAL_BYTES_PER_S = 2 * CATCHUP_SERVE_BYTES_PER_PEER_MAX;
/**
 * Full nodes (peers that are not validators of the current or the next set),
 * and validators past their shares, together draw at most 1/this of the
 * shared budget: half, so lagging validators (consensus liveness first) keep
 * the other half whatever full nodes ask, each its share of it whatever the
 * other validators ask.
 */
export const CATCHUP_SERVE_FULL_NODES_PART = 2;
/**
 * What each peer is still served per CATCHUP_RETRY_MS once the shared budget
 * is spent (its first bytes of each period, not counted against the shared
 * budget): one full answer (a message of blocks, and the lookup charges of a
 * request and a batch), so peers within their own limits cannot together
 * starve a lagging one. The total is then at most the shared budget plus this
 * and one answer per peer, and the peers are the configured ones.
 */
export const CATCHUP_SERVE_FLOOR_BYTES =
  MESSAGE_BYTES_MAX + (CATCHUP_BATCH_BLOCKS_MAX + 1) * CATCHUP_SERVE_LOOKUP_BYTES;
/**
 * Fewest MiB a second the config may set: each half of the shared budget
 * (the full nodes' and the validators') still holds a full answer a period
 * beyond the floors.
 */
export const CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN = Math.ceil(
  (CATCHUP_SERVE_FULL_NODES_PART * CATCHUP_SERVE_FLOOR_BYTES) / (1024 * 1024),
);
/** Most the config may set (16 GiB/s: no limit in practice). */
export const CATCHUP_SERVE_TOTAL_MIB_PER_S_MAX = 16 * 1024;
/** Default step timeouts (Tendermint's timeoutX(r) = base + r·delta, capped). */
export const TIMEOUT_PROPOSE_MS = 3_000;
export const TIMEOUT_PREVOTE_MS = 1_000;
export const TIMEOUT_PRECOMMIT_MS = 1_000;
export const TIMEOUT_DELTA_MS = 500;
export const TIMEOUT_MAX_MS = 60_000;
/**
 * A node that executed no block for this long (plus its commit pause) answers
 * /health with 503 (NotCommitting). A live chain commits a block a second or
 * more, empty ones too; a height whose proposer is down costs a propose
 * timeout and a round, so this is many failed rounds, not one.
 */
export const HEALTH_NO_BLOCK_MS = 30_000;
/** Period of the re-send of a replica's own messages at its current height. */
export const GOSSIP_INTERVAL_MS = 1_000;
/** Largest write-ahead-log record (a received message plus its framing). */
export const WAL_RECORD_BYTES_MAX = MESSAGE_BYTES_MAX + 1024;

assert(3 * TOTAL_POWER_MAX <= Number.MAX_SAFE_INTEGER, 'stake thresholds must be exact');
assert(VALIDATORS_MAX * VALIDATOR_POWER_MAX <= TOTAL_POWER_MAX, 'a full set must fit the total');
// The exchange's genesis validators become the consensus set, stake as power.
assert(GENESIS_VALIDATORS_MAX <= VALIDATORS_MAX, 'a genesis set must fit the consensus set');
assert(EVIDENCE_PER_BLOCK_MAX <= EVIDENCE_POOL_MAX, 'a block draws evidence from the pool');
assert(
  VALIDATORS_MAX * EVIDENCE_PER_OFFENDER_MAX <= EVIDENCE_POOL_MAX,
  'the pool holds evidence against every validator of a set',
);
assert(CATCHUP_BATCH_BLOCKS_MAX <= CATCHUP_BUFFER_BLOCKS_MAX, 'a batch must fit the buffer');
assert(
  CATCHUP_SERVE_TOTAL_BYTES_PER_S % (1024 * 1024) === 0 &&
    CATCHUP_SERVE_TOTAL_BYTES_PER_S >= CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN * 1024 * 1024 &&
    CATCHUP_SERVE_TOTAL_BYTES_PER_S <= CATCHUP_SERVE_TOTAL_MIB_PER_S_MAX * 1024 * 1024,
  'the default shared catch-up budget is one the config may set',
);
assert(
  CATCHUP_SERVE_TOTAL_BYTES_PER_S / CATCHUP_SERVE_FULL_NODES_PART >=
    CATCHUP_SERVE_BYTES_PER_PEER_MAX - CATCHUP_SERVE_FLOOR_BYTES,
  'by default one full node lagging alone is served at its own budget',
);
assert(
  CATCHUP_SERVE_BYTES_PER_PEER_MAX >= CATCHUP_BUFFER_BYTES_PER_PEER_MAX + 2 * MESSAGE_BYTES_MAX,
  "a lagger filling its buffer from one peer stays within that peer's serving budget",
);
assert(
  Number.isSafeInteger(FUTURE_MESSAGES_FULL_NODES_MAX) &&
    FUTURE_MESSAGES_MAX - FUTURE_MESSAGES_FULL_NODES_MAX >= VALIDATORS_MAX,
  'each validator keeps at least one message for the next height, whatever full nodes send',
);
assert(
  Number.isSafeInteger(CATCHUP_ANSWER_BLOCKS_MIN) &&
    CATCHUP_ANSWER_BLOCKS_MIN >= 1 &&
    CATCHUP_ANSWER_BLOCKS_MIN <= CATCHUP_BATCH_BLOCKS_MAX,
  'a fair answer is part of a batch',
);
assert(TIMEOUT_PROPOSE_MS <= TIMEOUT_MAX_MS, 'timeouts start below their cap');
/** Most transaction bytes in one block: the rest of BLOCK_BYTES_MAX holds evidence and the last commit. */
export const BLOCK_TX_BYTES_MAX = BLOCK_BYTES_MAX - 2 * 1024 * 1024;
assert(
  EVIDENCE_PER_BLOCK_MAX * 2 * (VOTE_EXTENSION_BYTES_MAX + 256) +
    VALIDATORS_MAX * (VOTE_EXTENSION_BYTES_MAX + 128) <
    BLOCK_BYTES_MAX - BLOCK_TX_BYTES_MAX,
  'evidence and the last commit must fit beside the transactions',
);

// --- crypto (src/crypto, docs/crypto.md) ----------------------------------------
// (The chain id's length is CHAIN_ID_BYTES_MAX, in the consensus section.)
/** Public keys whose node:crypto KeyObject (and passed registration check) one process keeps. */
export const PUBLIC_KEY_CACHE_ENTRIES_MAX = 100_000;
/** Chain id and kind pairs whose signed-bytes prefix one process keeps. */
export const SIGN_PREFIX_CACHE_ENTRIES_MAX = 256;
/** Largest key file loadKeyFile reads (a real one is about 250 bytes). */
export const KEY_FILE_BYTES_MAX = 4 * 1024;
/** Default bound on verifyBatch calls a verify pool holds at once (queued or running). */
export const VERIFY_QUEUE_BATCHES_MAX = 256;
/** Most signatures one verify-pool worker takes in one message. */
export const VERIFY_CHUNK_ITEMS_MAX = 1024;
/** Fewest signatures worth a message of their own to a worker (smaller batches are not split). */
export const VERIFY_CHUNK_ITEMS_MIN = 64;
/** Chunks in flight per worker: a second one hides the message round trip. */
export const VERIFY_CHUNKS_PER_WORKER_MAX = 2;

assert(VERIFY_CHUNK_ITEMS_MIN <= VERIFY_CHUNK_ITEMS_MAX, 'chunk bounds are ordered');

// --- node storage (src/node/storage, docs/decisions/0002-storage.md) ----------
/** Largest stored block: a block with its commit certificate, as a catch-up message carries it. */
export const STORED_BLOCK_BYTES_MAX = MESSAGE_BYTES_MAX;
/** Largest application snapshot file. */
export const SNAPSHOT_BYTES_MAX = 1024 * 1024 * 1024;

assert(BLOCK_BYTES_MAX < STORED_BLOCK_BYTES_MAX, 'a block with its certificate must fit');

// --- derivatives: listing, oracle, option margin, auctions (src/exchange/{instruments,oracle,options,auction}, docs/derivatives.md)
/** Most expiries one cycle (dailies, weeklies, monthlies, quarterlies) keeps live. */
export const LISTING_EXPIRIES_PER_CYCLE_MAX = 12;
/** Most underlyings one listing schedule names. */
export const LISTING_UNDERLYINGS_MAX = 16;
/** Most strikes listed per expiry and underlying (each as a call and a put), nearest the money. */
export const STRIKES_PER_EXPIRY_MAX = 101;
/** Most listed markets (dated futures and options) live at once; the schedule waits past it. */
export const LISTED_MARKETS_MAX = 2_048;
/** Most price points of the option margin's scenario grid. */
export const SCENARIO_PRICE_POINTS_MAX = 41;
/** Most index prices in one oracle observation. */
export const OBSERVATION_PRICES_MAX = 16;
/** Most volatility smiles in one oracle observation. */
export const OBSERVATION_SMILES_MAX = 32;
/** Most sources one validator's price is the median of. */
export const ORACLE_SOURCES_MAX = 32;
/** Most price-monitoring triggers per market. */
export const PRICE_MONITOR_TRIGGERS_MAX = 8;

// --- node transport (src/node/transport, docs/decisions/0003-transport.md) ----
/** Largest frame before a peer has proved its key: the hello and the auth frame are ~100 bytes. */
export const HANDSHAKE_FRAME_BYTES_MAX = 256;
/** A connection that has not finished its handshake by then is closed. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/** Connections accepted but not yet authenticated, at once; more are refused. */
export const HANDSHAKES_PENDING_MAX = 64;
/**
 * Inbound handshakes one remote address may have in progress, so that one
 * address cannot hold all HANDSHAKES_PENDING_MAX slots. Loopback clusters
 * dial from one address too: past this many at once, a dialer is refused and
 * retries after its backoff.
 */
export const HANDSHAKES_PENDING_PER_IP_MAX = 16;
/**
 * Inbound handshakes one remote address may start, per second and in a burst;
 * one that proves a known peer's key is given back (tcp.ts). Before a peer
 * proves its key, each attempt costs us a key generation, an X25519 and a
 * signature for 33 bytes of its own: without a rate, an address that connects
 * and disconnects at once (freeing its pending slot) could keep a core busy.
 */
export const HANDSHAKES_PER_IP_PER_S = 8;
export const HANDSHAKES_PER_IP_BURST = 64;
/**
 * Addresses whose handshake rate is remembered; past this, those with a full
 * allowance are forgotten, and a new one is refused while none is (but for the
 * addresses configured peers proved their keys from, one per peer at most).
 */
export const HANDSHAKE_RATE_ADDRESSES_MAX = 4_096;
/** Largest frame on an authenticated connection: its kind byte, one message and the 16-byte AEAD tag. */
export const FRAME_BYTES_MAX = MESSAGE_BYTES_MAX + 1 + 16;
/** Bytes queued for one peer (ours and the socket's) before it counts as too slow and is dropped. */
export const PEER_SEND_QUEUE_BYTES_MAX = 2 * MESSAGE_BYTES_MAX;
/** Frames queued for one peer before it counts as too slow and is dropped. */
export const PEER_SEND_QUEUE_FRAMES_MAX = 10_000;
/** Most peers one transport is configured with (validators and full nodes). */
export const PEERS_MAX = VALIDATORS_MAX + 64;
/** Reconnect backoff: doubles per failed attempt from the minimum to the cap, with jitter. */
export const RECONNECT_BACKOFF_MS_MIN = 100;
export const RECONNECT_BACKOFF_MS_MAX = 10_000;

assert(MESSAGE_BYTES_MAX <= PEER_SEND_QUEUE_BYTES_MAX, 'one message must fit a send queue');
assert(RECONNECT_BACKOFF_MS_MIN <= RECONNECT_BACKOFF_MS_MAX, 'backoff starts below its cap');
/**
 * Keepalive: a connection that has received nothing for this long is sent a
 * ping (inside the encrypted channel); consensus gossip keeps a live chain's
 * connections busy, so pings go out only on idle or dead links.
 */
export const PEER_PING_INTERVAL_MS = 10_000;
/** A pinged connection that receives nothing more for this long is dead: closed, then redialed. */
export const PEER_PONG_TIMEOUT_MS = 20_000;
/**
 * Inbound budget of one peer connection, as two token buckets (sustained rate
 * and burst). A validator's honest traffic is votes, proposals, gossip batches
 * and catch-up answers; these leave a wide margin above it. A peer past either
 * bucket is disconnected and banned for PEER_BAN_MS.
 */
export const PEER_IN_MESSAGES_PER_S = 20_000;
export const PEER_IN_MESSAGES_BURST = 40_000;
export const PEER_IN_BYTES_PER_S = 64 * 1024 * 1024;
export const PEER_IN_BYTES_BURST = 4 * MESSAGE_BYTES_MAX;
/** How long a peer dropped for flooding is refused (and not redialed). */
export const PEER_BAN_MS = 60_000;

assert(PEER_PING_INTERVAL_MS <= PEER_PONG_TIMEOUT_MS, 'a pong gets at least a ping interval');
assert(MESSAGE_BYTES_MAX <= PEER_IN_BYTES_BURST, 'one largest message fits the inbound burst');
assert(PEER_IN_MESSAGES_PER_S <= PEER_IN_MESSAGES_BURST, 'the burst holds a second of messages');

// --- API: HTTP and WebSocket (src/api, docs/api.md) -----------------------------
/** Largest HTTP request body: a hex-encoded TX_BYTES_MAX transaction in JSON, with room. */
export const API_BODY_BYTES_MAX = 64 * 1024;
/** Per-IP token bucket: sustained requests per second, and the burst it may save up. */
export const API_IP_REQUESTS_PER_S = 50;
export const API_IP_BURST_REQUESTS = 100;
/**
 * Per-account token bucket for transaction submissions, one token per action
 * of a batch (what execution costs): the burst holds three full batches, and
 * the rate a market maker requoting a dozen instruments a few levels deep
 * every two seconds (the devnet's maker: about 50 actions a second).
 */
export const API_ACCOUNT_TXS_PER_S = 100;
export const API_ACCOUNT_BURST_TXS = 200;
/**
 * Actions of a batch per token of the client address's bucket beyond the
 * request's own: that bucket bounds the work of handling requests, which a
 * batch does once, not execution (the account's bucket counts every action).
 */
export const API_IP_BATCH_ACTIONS_PER_TOKEN = 16;
/** Buckets kept per limiter (least recently used dropped first): bounds memory under a flood of keys. */
export const API_RATE_BUCKETS_MAX = 100_000;
/** Default and longest wait of `POST /v1/tx?wait=commit`. */
export const API_WAIT_COMMIT_MS_DEFAULT = 10_000;
export const API_WAIT_COMMIT_MS_MAX = 60_000;
/**
 * Longest answerTimeoutMs the client SDK takes, ms (about 23 days, "never" in
 * practice): with the longest commit wait added it still fits a timer, which
 * Node fires at once when asked for more than 2^31 - 1 ms.
 */
export const API_CLIENT_ANSWER_TIMEOUT_MS_MAX = 2_000_000_000;
/** Transactions one server waits on at once (`wait=commit`); more get 503. */
export const API_COMMIT_WAITERS_MAX = 10_000;
/**
 * Of those, the most one client address may hold (HTTP and WebSocket alike):
 * without it a few addresses, each within its request rate, would fill every
 * place for a minute and leave every other client 503.
 */
export const API_COMMIT_WAITERS_PER_IP_MAX = 1_000;
/** Default and largest depth of an order-book query (price levels per side). */
export const API_BOOK_DEPTH_DEFAULT = 50;
export const API_BOOK_DEPTH_MAX = 1_000;
/**
 * Levels per side of the WebSocket book channel: its snapshot's depth and the
 * window its updates keep (a level entering it is sent, one leaving it is
 * removed), so a client's local book is always the top levels of the book.
 */
export const WS_BOOK_DEPTH_LEVELS = API_BOOK_DEPTH_MAX;
/** Default and largest count of recent trades one query returns. */
export const API_TRADES_DEFAULT = 100;
export const API_TRADES_MAX = 1_000;
/**
 * Open orders listed in one account view (all its subaccounts together): an
 * address may rest openOrdersMax orders in every market from each of 256
 * subaccounts, millions of orders to build and serialize on the node's
 * thread. Past it the view says openOrdersTruncated; ask per subaccount.
 */
export const API_ACCOUNT_ORDERS_MAX = 10_000;
/** Largest WebSocket message a client may send: a `submit` of a hex TX_BYTES_MAX transaction, with room. */
export const WS_MESSAGE_BYTES_MAX = 64 * 1024;
/** Largest WebSocket message other than a `submit` (subscribe, unsubscribe, ping). */
export const WS_CONTROL_MESSAGE_BYTES_MAX = 4 * 1024;
/** Longest client id of a WebSocket `submit`. */
export const WS_SUBMIT_ID_CHARS_MAX = 64;
/** WebSocket submissions of one client address awaiting their answer (each may wait for its commit). */
export const WS_SUBMITS_PENDING_MAX = 1_024;
/** Most subscriptions one WebSocket connection may hold. */
export const WS_SUBSCRIPTIONS_MAX = 64;
/** Most WebSocket connections from one IP at once. */
export const WS_CONNECTIONS_PER_IP_MAX = 32;
/**
 * Most TCP connections from one IP at once, HTTP and WebSocket alike; more are
 * closed on accept. Requests take rate tokens, connections do not: without it
 * one address could hold open idle keep-alive or half-sent requests until the
 * node ran out of sockets. Never below the address's request burst plus its
 * WebSocket connections (all may be in flight at once), whatever limits an
 * operator raised. (Not applied behind a trusted proxy, whose connections all
 * come from one address.)
 */
export const API_CONNECTIONS_PER_IP_MAX = 256;
/**
 * Longest an HTTP request's headers may take to arrive, ms, and the whole
 * request (headers and body) from its first byte: a client sending slowly is
 * answered 408 and closed instead of holding a connection. The clock stops
 * once the body is read, so a `wait=commit` request's wait (bounded by
 * API_WAIT_COMMIT_MS_MAX) is not cut.
 */
export const API_HEADERS_TIMEOUT_MS = 5_000;
export const API_REQUEST_TIMEOUT_MS = 15_000;
/** How often the server looks for requests past those timeouts, ms (Node's default is 30 s). */
export const API_TIMEOUT_CHECK_MS = 1_000;
/** Longest WebSocket channel name (`book:<instrument>`, `account:0x…`). */
export const WS_CHANNEL_CHARS_MAX = 96;
/** Client messages per second per connection, and the burst it may save up. */
export const WS_MESSAGES_PER_S = 20;
export const WS_BURST_MESSAGES = 40;
/**
 * Client messages other than submissions per second per client address, over
 * all its connections, and the burst it may save up: without it an address
 * with WS_CONNECTIONS_PER_IP_MAX connections had that many times the rate.
 */
export const WS_IP_MESSAGES_PER_S = 50;
export const WS_IP_BURST_MESSAGES = 100;
/** Bytes queued to a slow client before the server drops it (it reconnects and resumes). */
export const WS_SEND_BUFFER_BYTES_MAX = 4 * 1024 * 1024;
/**
 * Bytes queued to all WebSocket clients together: past it the clients with the
 * most queued are dropped, as one over WS_SEND_BUFFER_BYTES_MAX is, until the
 * total is back under it (many addresses' slow clients cannot grow memory).
 */
export const WS_SEND_BUFFER_TOTAL_BYTES_MAX = 256 * 1024 * 1024;
/** Committed blocks whose updates the server keeps so a reconnecting client can resume. */
export const WS_RESUME_BLOCKS_MAX = 256;

assert(TX_BYTES_MAX * 2 + 1024 <= API_BODY_BYTES_MAX, 'a hex transaction must fit a request body');
assert(
  TX_BYTES_MAX * 2 + 1024 <= WS_MESSAGE_BYTES_MAX,
  'a hex transaction must fit a WebSocket submit',
);
assert(
  API_IP_BURST_REQUESTS + WS_CONNECTIONS_PER_IP_MAX <= API_CONNECTIONS_PER_IP_MAX,
  'an address may have its request burst in flight beside its WebSocket connections',
);
assert(API_IP_REQUESTS_PER_S <= API_IP_BURST_REQUESTS, 'a burst holds at least one second');
assert(API_ACCOUNT_TXS_PER_S <= API_ACCOUNT_BURST_TXS, 'a burst holds at least one second');
assert(API_HEADERS_TIMEOUT_MS <= API_REQUEST_TIMEOUT_MS, 'the headers arrive within the request');
assert(API_TIMEOUT_CHECK_MS <= API_HEADERS_TIMEOUT_MS, 'a timeout is noticed soon after it passes');
assert(
  WS_MESSAGES_PER_S <= WS_IP_MESSAGES_PER_S && WS_BURST_MESSAGES <= WS_IP_BURST_MESSAGES,
  "an address's message bucket holds at least a connection's",
);
assert(
  WS_SEND_BUFFER_BYTES_MAX <= WS_SEND_BUFFER_TOTAL_BYTES_MAX,
  'the total send buffer holds at least one full connection',
);
assert(
  BATCH_ACTIONS_MAX <= API_ACCOUNT_BURST_TXS &&
    1 + Math.floor((BATCH_ACTIONS_MAX - 1) / API_IP_BATCH_ACTIONS_PER_TOKEN) <=
      API_IP_BURST_REQUESTS,
  'a full bucket admits a whole batch',
);
assert(API_WAIT_COMMIT_MS_DEFAULT <= API_WAIT_COMMIT_MS_MAX, 'the default wait is allowed');
assert(
  API_CLIENT_ANSWER_TIMEOUT_MS_MAX + API_WAIT_COMMIT_MS_MAX <= 2 ** 31 - 1,
  "the SDK's longest answer wait fits a timer",
);
assert(
  API_COMMIT_WAITERS_PER_IP_MAX < API_COMMIT_WAITERS_MAX,
  'one address cannot take every commit waiter',
);
assert(API_BOOK_DEPTH_MAX <= BOOK_DEPTH_LEVELS_MAX, 'a depth query fits the book');
assert(
  WS_BOOK_DEPTH_LEVELS <= BOOK_DEPTH_LEVELS_MAX,
  'the book feed window fits the published book',
);
assert(API_TRADES_DEFAULT <= API_TRADES_MAX, 'the default trade count is allowed');

// --- simulator (src/sim, docs/simulator.md) ----------------------------------------
/** Most validators one simulation runs (the consensus core's own limit). */
export const SIM_VALIDATORS_MAX = VALIDATORS_MAX;
/** Most heights one simulation may be asked to commit. */
export const SIM_HEIGHTS_MAX = 10_000_000;
/** Simulated time to execute a block: time moves on even for a lone validator. */
export const SIM_BLOCK_EXECUTE_US = 100;
/**
 * Signature checks in one generation of the shared verifier's memo (it keeps
 * two): some 20 heights of 100 validators (about 200 signatures a height),
 * well past the height or two between a signature and its last check. A miss
 * only costs a check.
 */
export const SIM_VERIFY_MEMO_GENERATION_ENTRIES = 4_096;
/** Committed blocks a simulated node keeps to serve catch-up (older ones are dropped). */
export const SIM_BLOCK_STORE_HEIGHTS = 2_000;
/** A simulated WAL drops what precedes a synced checkpoint once it holds this many records before it. */
export const SIM_WAL_COMPACT_RECORDS = 256;
/** Forged messages a Byzantine node remembers (so it tells each lie the same way twice). */
export const SIM_FORGED_ENTRIES_MAX = 4_096;
/** Rounds past the next a flood-ahead Byzantine node votes in with each vote it releases. */
export const SIM_FLOOD_AHEAD_ROUNDS = 12;
/** How far ahead of its clock a time-skew Byzantine node dates its precommits (about 31 years). */
export const SIM_SKEWED_TIME_MS = 1_000_000_000_000;
/** After the heal, every honest node must commit this many heights past the highest one then. */
export const SIM_LIVENESS_HEIGHTS = 3;
/** The liveness bound, in the longest step timeout: room for rounds to resynchronise after a heal. */
export const SIM_LIVENESS_TIMEOUTS = 30;
/** Seen evidence must be committed within max(this, 2 × nodes + 4) heights of the heal. */
export const SIM_EVIDENCE_BOUND_HEIGHTS_MIN = 12;
/** Seeds one swarm may run. */
export const SIM_SWARM_SEEDS_MAX = 1_000_000;
/** Trace bytes a simulator gathers before hashing them (one native hash call per buffer, not per event). */
export const SIM_TRACE_BUFFER_BYTES = 64 * 1024;

assert(
  SIM_BLOCK_STORE_HEIGHTS >= CATCHUP_BUFFER_BLOCKS_MAX,
  'a node keeps what one catch-up asks for',
);
assert(
  SIM_EVIDENCE_BOUND_HEIGHTS_MIN < EVIDENCE_AGE_HEIGHTS_MAX,
  'evidence must be committable within the bound',
);

// --- node runtime: oracle, mempool, snapshots, config (src/node, docs/operations.md)
/** Underlyings in one validator's oracle observation (a vote extension). */
export const ORACLE_UNDERLYINGS_MAX = 64;
/** Bits of an observed index price (quote units per whole base unit). */
export const ORACLE_PRICE_BITS_MAX = 96;
/**
 * Most transactions of one account a proposer puts in one block (the rest
 * wait for the next): the exchange runs a block's cancels first, so with more
 * than a window's worth, a bot's own later-signed cancels filled its nonce
 * window and its earlier-signed orders ran StaleNonce (docs/operations.md,
 * "The mempool"). Not a block rule: a proposal holding more is still valid.
 */
export const BLOCK_TXS_PER_ACCOUNT_PROPOSED_MAX = NONCE_WINDOW;
/** Transactions one mempool holds. */
export const MEMPOOL_TXS_MAX = 50_000;
/** Bytes of transactions one mempool holds. */
export const MEMPOOL_BYTES_MAX = 64 * 1024 * 1024;
/** Pending transactions of one account (address) in the mempool. */
export const MEMPOOL_TXS_PER_ACCOUNT_MAX = 1_000;
/**
 * Transactions, and bytes, one peer's gossip may hold in the mempool (a
 * quarter of it): beyond, its transactions are refused. With the total limit
 * alone one peer's flood filled the pool. A peer's share holds more than a
 * block, so an honest peer's gossip of a full block fits.
 */
export const MEMPOOL_TXS_PER_PEER_MAX = 12_500;
export const MEMPOOL_BYTES_PER_PEER_MAX = 16 * 1024 * 1024;
/** Recently committed transaction hashes a mempool remembers, to refuse replays cheaply. */
export const MEMPOOL_COMMITTED_HASHES_MAX = 200_000;
/** Transactions gossiped to peers in one mempool frame. */
export const MEMPOOL_GOSSIP_BATCH_TXS_MAX = 256;
/**
 * Clients' transactions still waiting after this long are gossiped again: a
 * peer that was down, or whose mempool was full, when they first went out
 * never got them (a full node's clients would wait for good).
 */
export const MEMPOOL_REGOSSIP_MS = 5_000;
/** Transactions gossiped again per MEMPOOL_REGOSSIP_MS, taken in turn (peers drop those they hold). */
export const MEMPOOL_REGOSSIP_TXS_MAX = 1_024;
/** Transactions waiting for a signature check at once (beyond: refused as MempoolBusy). */
export const MEMPOOL_PENDING_CHECKS_MAX = 10_000;
/** Signature verdicts a node caches (mempool admission → proposal check → execution). */
export const SIGNATURE_CACHE_ENTRIES_MAX = 100_000;
/** Default heights between two application snapshots. */
export const SNAPSHOT_EVERY_HEIGHTS_DEFAULT = 100;
/**
 * Heights of results written between two background fdatasyncs of the results
 * log. Nothing needs them durable before a snapshot (results.ts), so a sync per
 * block would be an fdatasync per validator and block for nothing; but the
 * snapshot's barrier must not find hundreds of heights to write out at once
 * (megabytes at full blocks), stalling the loop while it syncs.
 */
export const RESULTS_SYNC_EVERY_HEIGHTS = 32;
/** Snapshots kept on disk. */
export const SNAPSHOTS_KEPT = 3;
/** Peers in one node's config. */
export const CONFIG_PEERS_MAX = VALIDATORS_MAX;
/** Largest config.json or genesis.json the node reads. */
export const CONFIG_FILE_BYTES_MAX = 4 * 1024 * 1024;

assert(
  MEMPOOL_GOSSIP_BATCH_TXS_MAX * TX_BYTES_MAX < MESSAGE_BYTES_MAX,
  'a gossip frame fits a message',
);
assert(MEMPOOL_TXS_PER_ACCOUNT_MAX <= MEMPOOL_TXS_MAX, 'an account fits the mempool');
assert(
  4 * MEMPOOL_TXS_PER_PEER_MAX <= MEMPOOL_TXS_MAX &&
    4 * MEMPOOL_BYTES_PER_PEER_MAX <= MEMPOOL_BYTES_MAX,
  'one peer holds at most a quarter of the mempool',
);
assert(
  BLOCK_TXS_MAX <= MEMPOOL_TXS_PER_PEER_MAX && BLOCK_TX_BYTES_MAX <= MEMPOOL_BYTES_PER_PEER_MAX,
  "a block's worth of a peer's gossip fits its share",
);

// --- node read model (src/node/view.ts) ----------------------------------------------
/** Transaction results the read model keeps for `GET /v1/tx/:hash` (oldest dropped first). */
export const VIEW_TXS_KEPT = 200_000;
/** Recent blocks kept in memory with their results; older ones are read back from the block store. */
export const VIEW_BLOCKS_KEPT = 2_000;
/**
 * Blocks before the last VIEW_BLOCKS_KEPT whose transactions a restart reads
 * back for `GET /v1/tx/:hash` (up to VIEW_TXS_KEPT transactions): a block
 * and its results cost some 100 µs to read, so at most about 2 s of start.
 */
export const VIEW_TX_INDEX_BLOCKS_MAX = 20_000;
/** Recent trades kept per instrument. */
export const VIEW_TRADES_KEPT = 1_000;
/**
 * Transactions the mempool let go of (evicted, or refused by the committed
 * state) that `GET /v1/tx/:hash` answers as `dropped` (oldest forgotten first):
 * a full mempool's worth.
 */
export const VIEW_DROPPED_TXS_KEPT = MEMPOOL_TXS_MAX;
/**
 * Settled (or retired) markets the read model remembers, so that a
 * subscription to one is refused as ended rather than unknown: months of a
 * devnet's daily expiries.
 */
export const VIEW_ENDED_MARKETS_KEPT = 10_000;

assert(VIEW_TRADES_KEPT >= API_TRADES_MAX, 'a trades query can be answered in full');

// --- node storage and results (src/node/loop.ts, src/node/results.ts) ----------------
/**
 * The WAL is rewritten from its last checkpoint once it has grown by this many
 * bytes. Rewriting at every checkpoint costs two fsyncs and a directory fsync
 * per height on the commit path; replay reads at most this much more.
 */
export const WAL_ROTATE_BYTES = 4 * 1024 * 1024;
/** The longest a genesis may set between option marks (listing.markIntervalMs). */
export const OPTION_MARK_INTERVAL_MS_MAX = 60_000;
/**
 * The devnet's option mark interval: a second of block time, as exchanges
 * publish marks (marking every option every block was a quarter of a devnet
 * validator's CPU under load).
 */
export const OPTION_MARK_INTERVAL_MS_DEVNET = 1_000;
/** Largest stored per-block results record (a full block of batch results with fills). */
export const STORED_RESULTS_BYTES_MAX = 64 * 1024 * 1024;
/**
 * Signature batches up to this size are checked on the node's own thread: the
 * worker pool's round trip (copy, post, a thread wake-up on shared cores) costs
 * more latency than a few verifies (~0.15 ms each), and it delays admission,
 * gossip and so inclusion. Larger batches go to the pool.
 */
export const MEMPOOL_VERIFY_INLINE_TXS_MAX = 32;

// --- stress tool (src/sim/stress) ------------------------------------------------------
/** Accounts `zomma stress generate` builds at most (each is a few signed transactions). */
export const STRESS_ACCOUNTS_MAX = 200_000;
/** Blocks one scenario may run (a day of one-second blocks). */
export const STRESS_BLOCKS_MAX = 86_400;
/** Longest block interval of a scenario (`blockMs`, `--block-ms`): an hour. */
export const STRESS_BLOCK_MS_MAX = 3_600_000;
/** Points in one underlying's path. */
export const STRESS_POINTS_MAX = 10_000;
/** Underlyings one scenario may name. */
export const STRESS_UNDERLYINGS_MAX = 64;
/** Ladder levels per side of the scenario's liquidity provider (one batch: cancel + both sides). */
export const STRESS_LADDER_LEVELS_MAX = 31;
/** Largest scenario file read. */
export const STRESS_SCENARIO_BYTES_MAX = 4 * 1024 * 1024;
/** Points of the time series a report keeps for JSON and charts (evenly spaced blocks, plus the last). */
export const STRESS_SERIES_POINTS_MAX = 400;
/** Transactions per block while a state is generated. */
export const STRESS_GENERATE_BLOCK_TXS = 2_000;

assert(1 + 2 * STRESS_LADDER_LEVELS_MAX <= BATCH_ACTIONS_MAX, 'a ladder fits one batch');

// --- state sync and block pruning (src/node/sync*.ts) ----------------------------------
/** Bytes of one snapshot chunk on the wire (the last chunk may be shorter). */
export const SYNC_CHUNK_BYTES = 1024 * 1024;
/** Chunks of one snapshot: the largest snapshot in whole chunks. */
export const SYNC_CHUNKS_MAX = Math.ceil(SNAPSHOT_BYTES_MAX / SYNC_CHUNK_BYTES);
/** Snapshots one peer offers (its newest). */
export const SYNC_OFFERS_MAX = 4;
/**
 * Distinct offers a syncing node tries before it gives up, or one per peer
 * that offered where more peers did (sync.ts candidatesOf: every peer's best
 * offer is tried).
 */
export const SYNC_CANDIDATES_MAX = 3;
/** Offers of any one peer among those tried: a peer offering many fake heights crowds out no one. */
export const SYNC_CANDIDATES_PER_PEER_MAX = 2;
/**
 * Largest sync-channel message: a stored block with its certificate is the
 * largest. One byte under a peer message: the node puts its channel tag first.
 */
export const SYNC_MESSAGE_BYTES_MAX = MESSAGE_BYTES_MAX - 1;
/** Once a first offer arrived, how long other peers may still answer. */
export const SYNC_DISCOVERY_MS = 1_500;
/** While no peer offers a snapshot, state sync logs that it waits this often (no peer may accept it). */
export const SYNC_DISCOVERY_WARN_MS = 10_000;
/** Offer requests are broadcast again this often until a peer answers (peers may still be dialing). */
export const SYNC_REQUEST_RETRY_MS = 500;
/** Wait for one chunk or block answer before asking another peer. */
export const SYNC_RESPONSE_TIMEOUT_MS = 5_000;
/** Tries per chunk (and for the blocks), across peers, before the offer is abandoned. */
export const SYNC_ATTEMPTS_MAX = 8;
/**
 * A whole state sync, discovery to verified state, or the node refuses to
 * start: room for two offers of the largest snapshot at the slowest rate,
 * each with SYNC_BUSY_WAIT_MS_MAX of busy answers, so that one liar's
 * abandoned offer leaves room for an honest one of any size.
 */
export const SYNC_TIMEOUT_MS = 660_000;
/**
 * Slowest snapshot transfer a syncing node waits out: an offer whose chunks
 * have not all arrived within SYNC_OFFER_GRACE_MS + its size at this rate is
 * abandoned for the next (a liar serving a large fake slowly cannot run out
 * SYNC_TIMEOUT_MS), and a chunk answer slower than a chunk at this rate
 * counts against its provider. One 1 MiB chunk at a time over 100 Mbit/s
 * with a 150 ms round trip is about this.
 */
export const SYNC_TRANSFER_BYTES_PER_S_MIN = 4 * 1024 * 1024;
/** Time an offer's chunks get on top of their size at SYNC_TRANSFER_BYTES_PER_S_MIN: two silent providers. */
export const SYNC_OFFER_GRACE_MS = 2 * SYNC_RESPONSE_TIMEOUT_MS;
/**
 * Rounds of offers a syncing node tries: once every offer it had is refused,
 * it asks its peers again and tries the offers not yet tried (a peer still
 * connecting during the first SYNC_DISCOVERY_MS is heard then).
 */
export const SYNC_OFFER_ROUNDS_MAX = 3;
/** Requests per second one peer may make of our snapshot store (token bucket rate). */
export const SYNC_SERVE_REQUESTS_PER_S = 50;
/** Burst of requests one peer may make at once (token bucket size). */
export const SYNC_SERVE_BURST_REQUESTS = 100;
/**
 * Requests per second all peers together may make of our snapshot and block
 * stores (a token bucket all share; config.syncServeTotalRequestsPerS sets it): a
 * request is up to a chunk (1 MiB) read from disk and sent, and each peer's
 * own bucket alone would let SYNC_SERVE_PEERS_MAX peers asking at once take
 * that many times the disk and uplink. Two peers' full rate: two nodes
 * syncing at once go at full speed, more share it. A request over it is
 * answered `busy` (sync_messages.ts), which the fetcher waits out.
 */
export const SYNC_SERVE_TOTAL_REQUESTS_PER_S = 2 * SYNC_SERVE_REQUESTS_PER_S;
/**
 * Requests a second each peer is still served when the shared budget is
 * spent: chunks at the least transfer rate a sync needs
 * (SYNC_TRANSFER_BYTES_PER_S_MIN), so that peers within their own limits
 * cannot together starve another. The total is then at most the shared budget
 * plus this per peer, and the peers are the configured ones.
 */
export const SYNC_SERVE_FLOOR_REQUESTS_PER_S = Math.ceil(
  SYNC_TRANSFER_BYTES_PER_S_MIN / SYNC_CHUNK_BYTES,
);
/**
 * Fewest the config may set: two nodes syncing at once, each at
 * SYNC_TRANSFER_BYTES_PER_S_MIN (below it, two honest fetchers of a large
 * snapshot wait out more busy answers than SYNC_BUSY_WAIT_MS_MAX allows).
 */
export const SYNC_SERVE_TOTAL_REQUESTS_PER_S_MIN =
  2 * Math.ceil(SYNC_TRANSFER_BYTES_PER_S_MIN / SYNC_CHUNK_BYTES);
/** Most the config may set (10 GiB/s of chunks: no limit in practice). */
export const SYNC_SERVE_TOTAL_REQUESTS_PER_S_MAX = 10_000;
/** Seconds of its rate the shared bucket holds (its burst), as each peer's does. */
export const SYNC_SERVE_TOTAL_BURST_S = SYNC_SERVE_BURST_REQUESTS / SYNC_SERVE_REQUESTS_PER_S;
/**
 * Shortest delay a `busy` answer may ask for: a fetcher retrying at it asks
 * no faster than its own bucket at the server refills (which would refuse it
 * in silence), and does not spin on a peer that answers busy at once.
 */
export const SYNC_BUSY_RETRY_MS_MIN = 100;
/** Longest delay a `busy` answer may ask for: longer than a silence would cost, it is no help. */
export const SYNC_BUSY_RETRY_MS_MAX = SYNC_RESPONSE_TIMEOUT_MS;
/**
 * Time the fetch of one offer may spend on `busy` answers (their round trips
 * and the delays they ask for), not counted against the offer's time budget
 * nor its attempts; past it the offer is refused (SyncBusy) for the next: a
 * peer answering busy forever costs this, not the whole SYNC_TIMEOUT_MS.
 */
export const SYNC_BUSY_WAIT_MS_MAX = 30_000;
/**
 * Blocks a state sync from a trusted block walks down, by hash, from the
 * trusted height to a snapshot's (sync_trust.ts): a few snapshot intervals at
 * the default SNAPSHOT_EVERY_HEIGHTS_DEFAULT, well within the serve rate.
 */
export const SYNC_TRUST_BLOCKS_MAX = 1_000;
/**
 * Blocks of a trusted walk a syncing node keeps for the next offer (those of
 * h, h+1 and h+2); the hashes the walk bound are kept too, at most
 * SYNC_TRUST_BLOCKS_MAX + 1 of them.
 */
export const SYNC_TRUST_CACHED_BLOCKS_MAX = 3;
/** Peers whose request rate is tracked at once (the oldest is forgotten). */
export const SYNC_SERVE_PEERS_MAX = 4 * VALIDATORS_MAX;
/**
 * Fewest heights `blocksKept` may keep when pruning is on. Small on purpose
 * (tests prune quickly); operators keep far more so lagging peers catch up
 * from blocks instead of state sync.
 */
export const BLOCKS_KEPT_MIN = 10;

assert(SYNC_CHUNK_BYTES + 1024 < SYNC_MESSAGE_BYTES_MAX, 'a chunk fits a message');
assert(SYNC_CANDIDATES_PER_PEER_MAX >= 1, 'every peer offering has its best offer tried');
assert(
  SYNC_SERVE_TOTAL_REQUESTS_PER_S >= SYNC_SERVE_REQUESTS_PER_S &&
    SYNC_SERVE_TOTAL_REQUESTS_PER_S >= SYNC_SERVE_TOTAL_REQUESTS_PER_S_MIN &&
    SYNC_SERVE_TOTAL_REQUESTS_PER_S <= SYNC_SERVE_TOTAL_REQUESTS_PER_S_MAX,
  "by default one peer alone is served at its own bucket's rate",
);
assert(
  SYNC_BUSY_RETRY_MS_MIN * SYNC_SERVE_REQUESTS_PER_S >= 1000 &&
    SYNC_BUSY_RETRY_MS_MIN <= SYNC_BUSY_RETRY_MS_MAX,
  "a fetcher retrying after busy stays within its own bucket's rate",
);
assert(SYNC_TRUST_CACHED_BLOCKS_MAX >= 3, 'the blocks of h, h+1 and h+2 stay cached');
assert(SYNC_OFFERS_MAX * SYNC_CHUNKS_MAX * 34 < SYNC_MESSAGE_BYTES_MAX, 'offers fit a message');
assert(
  2 *
    (SYNC_OFFER_GRACE_MS +
      (SNAPSHOT_BYTES_MAX / SYNC_TRANSFER_BYTES_PER_S_MIN) * 1000 +
      SYNC_BUSY_WAIT_MS_MAX) +
    60_000 <
    SYNC_TIMEOUT_MS,
  'one offer of the largest snapshot, abandoned, leaves time for another of the largest',
);

// --- Dashboard feeds (src/node/view.ts: /v1/risk, /v1/consensus) ---------------------

/** Insurance fund points kept in memory, one per block (the risk view's chart). */
export const VIEW_INSURANCE_POINTS_KEPT = 1_000;
/** Liquidation, deleverage, insurance-cover and halt events kept in memory for /v1/risk. */
export const VIEW_RISK_EVENTS_KEPT = 500;
/** Recent blocks over which /v1/consensus counts each validator's signatures and proposals. */
export const VIEW_CONSENSUS_RECENT_BLOCKS = 100;

// --- consensus vote relay (src/consensus/replica.ts, docs/protocol.md) -----------------
/** Others' votes a replica relays to each peer per gossip tick: two rounds' polkas, one vote per validator. */
export const VOTE_RELAY_PER_TICK_MAX = 2 * VALIDATORS_MAX;

// --- exchange oracle and circuit breakers (src/exchange/genesis.ts, exchange.ts) -------
/** Largest genesis oracle.freshnessMs: an observation older than this never counts. */
export const ORACLE_FRESHNESS_MS_MAX = 600_000;
/** Largest genesis oracle.staleAfterMs (one day). */
export const ORACLE_STALE_AFTER_MS_MAX = 86_400_000;
/** Price sources a node's observation takes the median of (src/node/oracle.ts). */
export const NODE_PRICE_SOURCES = 3;
/** Of those, fewest that must answer for the node to report a price. */
export const NODE_PRICE_SOURCES_MIN = 2;

// --- node price feeds (src/node/price_sources.ts, docs/operations.md "Oracle sources") --
/** Largest price feed (file or HTTP body) a node reads: a few underlyings fit in far less. */
export const ORACLE_FEED_BYTES_MAX = 64 * 1024;
/** Decimals of a feed's prices: quote units are millionths (USDC's 6 decimals). */
export const ORACLE_FEED_DECIMALS = 6;
/** Longest an HTTP feed request may take, ms (less when the poll interval is shorter). */
export const ORACLE_FEED_FETCH_TIMEOUT_MS_MAX = 5_000;
/** Shortest poll interval of an HTTP feed, ms: a feed is read about once a block. */
export const ORACLE_FEED_INTERVAL_MS_MIN = 100;
/** Longest age a feed may be configured to stay usable, ms (an hour). */
export const ORACLE_FEED_AGE_MS_MAX = 3_600_000;

/**
 * Bytes of log lines a node keeps waiting while its log file cannot be
 * written (a full disk): past them, lines are dropped until a write succeeds.
 */
export const LOG_PENDING_BYTES_MAX = 16 * 1024 * 1024;
