// The OS clock and timers behind a port, so tests of the loop can see every
// timer the replica asked for and the runtime can cancel them all on stop.

export interface Clock {
  nowMs(): number;
  /** Calls `fire` once after `delayMs`; returns a cancel function. */
  after(delayMs: number, fire: () => void): () => void;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  after(delayMs, fire) {
    const handle = setTimeout(fire, delayMs);
    return () => clearTimeout(handle);
  },
};
