// Assertions guard our own invariants and stay on in production (TigerBeetle
// style). Input from peers and clients is never asserted: it is validated and
// rejected with a typed error (see errors.ts).

export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
