// The execution version: which rules of execution this build runs.
//
// Two builds of one execution version compute the same results and appHashes
// from the same blocks; two of different versions may not. It is bumped by
// every change listed in docs/operations.md, "Changes of execution that need
// this procedure" (a change adopted at a coordinated halt height), and by no
// other: 21 is the number of execution changes listed when it was introduced,
// each counted as a bump from 0. Peers exchange it in their handshake and
// refuse one another when it differs (src/node/transport/secure.ts), so a
// node restarted on other rules is refused by name at once instead of halting
// later on an appHash mismatch. test/node/execution_version.test.ts ties it
// to a fixed run of blocks: a change that moves that run's appHashes fails
// there until the version is bumped and the hashes recorded.

/** Bumped by every change of execution (docs/operations.md, "Upgrades"). */
export const EXECUTION_VERSION = 23;
