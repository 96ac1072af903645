// The application side of a simulated validator, as a port: the simulator
// drives any `Application` (the exchange state machine and its mempool will
// plug in here); the default is a trivial deterministic app that commits
// opaque transactions and returns appHash = sha256(previous appHash, txs...),
// and jails double-signers as the exchange does (governance.ts applyEvidence):
// each offender once, out of the set at power 0, never the last member.

import type {
  Application,
  Block,
  BlockResult,
  CommitCertificate,
  Misbehavior,
  ValidatorUpdate,
  Vote,
} from '../consensus/index.ts';
import { sha256 } from '../crypto/index.ts';
import { bytesEqual, toHex, utf8 } from '../lib/bytes.ts';

/** Builds the application of one simulated node (twins get one each). */
export type AppFactory = (node: AppNode) => Application;

export interface AppNode {
  /** The node's index in the simulator (twins differ here, not in their key). */
  readonly nodeIndex: number;
  readonly genesisAppHash: Uint8Array;
  /** Transactions of the node's own to put in each proposal it builds (beside the mempool's). */
  readonly fillerTxs: number;
  /** How many validators the genesis has (the app never removes the last one). */
  readonly genesisValidators: number;
}

/**
 * The trivial app. Its state is durable at commit (a crash never loses an
 * executed height), so a restarted replica that replays a height it already
 * executed gets the recorded result back, as a real app answers from its store.
 */
export class HashChainApp implements Application {
  appHash: Uint8Array;
  height = 0;
  private readonly results = new Map<number, BlockResult>();
  private counter = 0;
  /** Jailed validators by hex key, with the height that jailed them. */
  readonly jailed = new Map<string, number>();

  constructor(private readonly node: AppNode) {
    this.appHash = node.genesisAppHash;
  }

  prepareProposal(height: number, round: number, txs: readonly Uint8Array[]): Uint8Array[] {
    const out = txs.slice();
    for (let i = 0; i < this.node.fillerTxs; i++) {
      // The node's index makes twins build different blocks, as two real processes would.
      out.push(utf8(`sim tx ${height}/${round} node ${this.node.nodeIndex} #${this.counter++}`));
    }
    return out;
  }

  processProposal(_block: Block): boolean {
    return true;
  }

  extendVote(_height: number, _round: number, _blockHash: Uint8Array): Uint8Array {
    return new Uint8Array(0);
  }

  verifyVoteExtension(vote: Vote): boolean {
    return vote.extension.length === 0;
  }

  finalizeBlock(
    block: Block,
    _commit: CommitCertificate,
    misbehavior: readonly Misbehavior[],
  ): BlockResult {
    const height = block.header.height;
    const done = this.results.get(height);
    if (done !== undefined) return done;
    this.appHash = this.nextHash(block);
    this.height = height;
    const result: BlockResult = {
      appHash: this.appHash,
      validatorUpdates: misbehavior.length === 0 ? [] : this.jail(misbehavior, height),
    };
    this.results.set(height, result);
    return result;
  }

  private jail(misbehavior: readonly Misbehavior[], height: number): ValidatorUpdate[] {
    const updates: ValidatorUpdate[] = [];
    for (const m of misbehavior) {
      const key = toHex(m.publicKey);
      if (this.jailed.has(key) || this.jailed.size + 1 >= this.node.genesisValidators) continue;
      this.jailed.set(key, height);
      updates.push({ publicKey: m.publicKey, power: 0 });
    }
    return updates;
  }

  commit(): void {}

  protected nextHash(block: Block): Uint8Array {
    const memo = lastStep;
    const from = this.appHash;
    if (
      memo !== null &&
      (memo.from === from || bytesEqual(memo.from, from)) &&
      sameTxs(memo.txs, block.txs)
    ) {
      return memo.to;
    }
    const to = sha256(from, ...block.txs);
    lastStep = { from, txs: block.txs, to };
    return to;
  }
}

/**
 * The last step of the hash chain: every honest replica of a run executes the
 * same block from the same hash, so all but the first take the stored result
 * (the same object, never written to). The inputs are compared, so a replica
 * that diverged computes its own.
 */
let lastStep: {
  readonly from: Uint8Array;
  readonly txs: readonly Uint8Array[];
  readonly to: Uint8Array;
} | null = null;

function sameTxs(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!bytesEqual(a[i]!, b[i]!)) return false;
  return true;
}

export const hashChainApp: AppFactory = (node) => new HashChainApp(node);
