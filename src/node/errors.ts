// The node's typed errors. Codes are stable: operators grep logs for them and
// the CLI prints them (`zomma node: ConfigInvalid: config.json peers[2].address: …`).

import { ZommaError } from '../lib/errors.ts';

export type NodeErrorCode =
  /** A field of config.json, genesis.json or a command option is missing or wrong (the message names it). */
  | 'ConfigInvalid'
  /** A frame from a peer is empty or names no known channel. */
  | 'BadFrame'
  /** Our state after a height differs from what the chain committed: the node halts. */
  | 'AppHashMismatch'
  /** Stored state cannot be brought back to the height the WAL starts from. */
  | 'RestoreFailed'
  /**
   * The stored chain is already past the halt height the node was given
   * (haltHeight, --halt-height), or at it with its snapshot: it stopped
   * there; raise or remove it.
   */
  | 'HaltHeightReached'
  /** The node stopped processing (after a halt): no more input is taken. */
  | 'NodeHalted';

export class NodeError extends ZommaError<NodeErrorCode> {
  /** The config field concerned, for ConfigInvalid. */
  readonly field: string | null;
  /** For AppHashMismatch at start-up: the height and both hashes (the halt report's details). */
  readonly height: number | null;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(
    code: NodeErrorCode,
    message: string,
    field: string | null = null,
    at: { height: number; details: Record<string, unknown> } | null = null,
  ) {
    super(code, field === null ? message : `${field}: ${message}`);
    this.field = field;
    this.height = at?.height ?? null;
    this.details = at?.details ?? {};
  }
}

export function configError(field: string, message: string): NodeError {
  return new NodeError('ConfigInvalid', message, field);
}
