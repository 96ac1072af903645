// Canonical encodings of every consensus type (src/codec/wire.ts): one value,
// one encoding, so hashes and signatures are taken over these bytes. Decoding
// refuses anything non-canonical with a DecodeError naming the field.

import { DecodeError, Writer, type Codec, type Reader } from '../codec/wire.ts';
import { assert } from '../lib/assert.ts';
import {
  BLOCK_TXS_MAX,
  CATCHUP_BATCH_BLOCKS_MAX,
  CHAIN_ID_BYTES_MAX,
  EVIDENCE_AGE_HEIGHTS_MAX,
  EVIDENCE_PER_BLOCK_MAX,
  EVIDENCE_POOL_MAX,
  HASH_BYTES_MAX,
  MESSAGE_BYTES_MAX,
  ROUND_MAX,
  STRING_BYTES_MAX,
  TX_BYTES_MAX,
  VALIDATORS_MAX,
  VALIDATOR_POWER_MAX,
  VALIDATOR_UPDATES_MAX,
  VOTE_EXTENSION_BYTES_MAX,
} from '../lib/limits.ts';
import type {
  Block,
  BlockResult,
  ChainState,
  CommitCertificate,
  CommitVote,
  CommittedBlock,
  DuplicateVoteEvidence,
  Header,
  Input,
  Message,
  Proposal,
  TimeoutKey,
  ValidatorSetState,
  ValidatorUpdate,
  Vote,
  VoteType,
  WalRecord,
  Step,
} from './types.ts';
import { VOTE_TYPE } from './types.ts';

export const HASH_BYTES = 32;
export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
export const ZERO_HASH = new Uint8Array(HASH_BYTES);

const PRIORITY_BITS = 64;
const HISTORY_ENTRIES_MAX = EVIDENCE_AGE_HEIGHTS_MAX + 2;
const COMMITTED_EVIDENCE_MAX = EVIDENCE_PER_BLOCK_MAX * (EVIDENCE_AGE_HEIGHTS_MAX + 1);

function readHeight(r: Reader, field: string): number {
  const height = r.uvarint(field);
  if (height === 0) throw new DecodeError(field, 'heights start at 1');
  return height;
}

function readCount(r: Reader, field: string, max: number): number {
  return r.uvarint(field, max);
}

function writeOptionalHash(w: Writer, hash: Uint8Array | null): void {
  w.bool(hash !== null);
  if (hash !== null) w.fixed(hash, HASH_BYTES);
}

function readOptionalHash(r: Reader, field: string): Uint8Array | null {
  return r.bool(`${field}.present`) ? r.fixed(field, HASH_BYTES).slice() : null;
}

function readVoteType(r: Reader, field: string): VoteType {
  const t = r.u8(field);
  if (t !== VOTE_TYPE.prevote && t !== VOTE_TYPE.precommit) {
    throw new DecodeError(field, `unknown vote type ${t}`);
  }
  return t;
}

function readStep(r: Reader, field: string): Step {
  return r.tag(field, 3) as Step;
}

// --- votes --------------------------------------------------------------------

/** The bytes a validator signs for a vote: everything but its index and signature. */
export function voteSignBytes(
  w: Writer,
  type: VoteType,
  height: number,
  round: number,
  blockHash: Uint8Array | null,
  timestampMs: number,
  extension: Uint8Array,
): Uint8Array {
  w.reset().u8(type).uvarint(height).uvarint(round);
  writeOptionalHash(w, blockHash);
  w.uvarint(timestampMs).bytes(extension, VOTE_EXTENSION_BYTES_MAX);
  return w.finish();
}

export const voteCodec: Codec<Vote> = {
  write(w, v) {
    w.u8(v.type).uvarint(v.height).uvarint(v.round);
    writeOptionalHash(w, v.blockHash);
    w.uvarint(v.validatorIndex).uvarint(v.timestampMs);
    w.bytes(v.extension, VOTE_EXTENSION_BYTES_MAX).fixed(v.signature, SIGNATURE_BYTES);
  },
  read(r, field) {
    const type = readVoteType(r, `${field}.type`);
    const height = readHeight(r, `${field}.height`);
    const round = r.uvarint(`${field}.round`, ROUND_MAX);
    const blockHash = readOptionalHash(r, `${field}.blockHash`);
    const validatorIndex = r.uvarint(`${field}.validatorIndex`, VALIDATORS_MAX - 1);
    const timestampMs = r.uvarint(`${field}.timestampMs`);
    const extension = r.bytesField(`${field}.extension`, VOTE_EXTENSION_BYTES_MAX).slice();
    const signature = r.fixed(`${field}.signature`, SIGNATURE_BYTES).slice();
    if (type === VOTE_TYPE.prevote && (timestampMs !== 0 || extension.length !== 0)) {
      throw new DecodeError(field, 'a prevote carries no timestamp or extension');
    }
    if (blockHash === null && extension.length !== 0) {
      throw new DecodeError(field, 'a nil vote carries no extension');
    }
    return { type, height, round, blockHash, validatorIndex, timestampMs, extension, signature };
  },
};

const commitVoteCodec: Codec<CommitVote> = {
  write(w, v) {
    w.uvarint(v.validatorIndex).uvarint(v.timestampMs);
    w.bytes(v.extension, VOTE_EXTENSION_BYTES_MAX).fixed(v.signature, SIGNATURE_BYTES);
  },
  read(r, field) {
    return {
      validatorIndex: r.uvarint(`${field}.validatorIndex`, VALIDATORS_MAX - 1),
      timestampMs: r.uvarint(`${field}.timestampMs`),
      extension: r.bytesField(`${field}.extension`, VOTE_EXTENSION_BYTES_MAX).slice(),
      signature: r.fixed(`${field}.signature`, SIGNATURE_BYTES).slice(),
    };
  },
};

export const commitCodec: Codec<CommitCertificate> = {
  write(w, c) {
    w.uvarint(c.height).uvarint(c.round).fixed(c.blockHash, HASH_BYTES);
    w.uvarint(c.votes.length);
    for (const v of c.votes) commitVoteCodec.write(w, v);
  },
  read(r, field) {
    const height = readHeight(r, `${field}.height`);
    const round = r.uvarint(`${field}.round`, ROUND_MAX);
    const blockHash = r.fixed(`${field}.blockHash`, HASH_BYTES).slice();
    const count = readCount(r, `${field}.votes`, VALIDATORS_MAX);
    const votes: CommitVote[] = [];
    for (let i = 0; i < count; i++) {
      const v = commitVoteCodec.read(r, `${field}.votes[${i}]`);
      if (i > 0 && v.validatorIndex <= votes[i - 1]!.validatorIndex) {
        throw new DecodeError(`${field}.votes[${i}]`, 'votes must be sorted by validator index');
      }
      votes.push(v);
    }
    return { height, round, blockHash, votes };
  },
};

export const evidenceCodec: Codec<DuplicateVoteEvidence> = {
  write(w, e) {
    voteCodec.write(w, e.voteA);
    voteCodec.write(w, e.voteB);
  },
  read(r, field) {
    return {
      voteA: voteCodec.read(r, `${field}.voteA`),
      voteB: voteCodec.read(r, `${field}.voteB`),
    };
  },
};

// --- proposals and blocks -------------------------------------------------------

export function proposalSignBytes(
  w: Writer,
  height: number,
  round: number,
  polRound: number,
  blockHash: Uint8Array,
): Uint8Array {
  w.reset().uvarint(height).uvarint(round).ivarint(polRound).fixed(blockHash, HASH_BYTES);
  return w.finish();
}

export const proposalCodec: Codec<Proposal> = {
  write(w, p) {
    w.uvarint(p.height).uvarint(p.round).ivarint(p.polRound);
    w.fixed(p.blockHash, HASH_BYTES).fixed(p.signature, SIGNATURE_BYTES);
  },
  read(r, field) {
    const height = readHeight(r, `${field}.height`);
    const round = r.uvarint(`${field}.round`, ROUND_MAX);
    const polRound = r.ivarint(`${field}.polRound`, ROUND_MAX);
    if (polRound < -1 || polRound >= round) {
      throw new DecodeError(`${field}.polRound`, 'must be -1 or below the round');
    }
    const blockHash = r.fixed(`${field}.blockHash`, HASH_BYTES).slice();
    const signature = r.fixed(`${field}.signature`, SIGNATURE_BYTES).slice();
    return { height, round, polRound, blockHash, signature };
  },
};

export const headerCodec: Codec<Header> = {
  write(w, h) {
    w.string(h.chainId, CHAIN_ID_BYTES_MAX).uvarint(h.height).uvarint(h.round).uvarint(h.timeMs);
    w.bytes(h.proposerAddress, HASH_BYTES_MAX).fixed(h.previousBlockHash, HASH_BYTES);
    w.bytes(h.previousAppHash, HASH_BYTES_MAX).fixed(h.txsRoot, HASH_BYTES);
    w.fixed(h.lastCommitHash, HASH_BYTES).fixed(h.evidenceHash, HASH_BYTES);
    w.fixed(h.validatorsHash, HASH_BYTES);
  },
  read(r, field) {
    return {
      chainId: r.string(`${field}.chainId`, CHAIN_ID_BYTES_MAX),
      height: readHeight(r, `${field}.height`),
      round: r.uvarint(`${field}.round`, ROUND_MAX),
      timeMs: r.uvarint(`${field}.timeMs`),
      proposerAddress: r.bytesField(`${field}.proposerAddress`, HASH_BYTES_MAX).slice(),
      previousBlockHash: r.fixed(`${field}.previousBlockHash`, HASH_BYTES).slice(),
      previousAppHash: r.bytesField(`${field}.previousAppHash`, HASH_BYTES_MAX).slice(),
      txsRoot: r.fixed(`${field}.txsRoot`, HASH_BYTES).slice(),
      lastCommitHash: r.fixed(`${field}.lastCommitHash`, HASH_BYTES).slice(),
      evidenceHash: r.fixed(`${field}.evidenceHash`, HASH_BYTES).slice(),
      validatorsHash: r.fixed(`${field}.validatorsHash`, HASH_BYTES).slice(),
    };
  },
};

export const blockCodec: Codec<Block> = {
  write(w, b) {
    headerCodec.write(w, b.header);
    w.uvarint(b.txs.length);
    for (const tx of b.txs) w.bytes(tx, TX_BYTES_MAX);
    w.uvarint(b.evidence.length);
    for (const e of b.evidence) evidenceCodec.write(w, e);
    w.bool(b.lastCommit !== null);
    if (b.lastCommit !== null) commitCodec.write(w, b.lastCommit);
  },
  read(r, field) {
    const header = headerCodec.read(r, `${field}.header`);
    const txCount = readCount(r, `${field}.txs`, BLOCK_TXS_MAX);
    const txs: Uint8Array[] = [];
    for (let i = 0; i < txCount; i++)
      txs.push(r.bytesField(`${field}.txs[${i}]`, TX_BYTES_MAX).slice());
    const evidenceCount = readCount(r, `${field}.evidence`, EVIDENCE_PER_BLOCK_MAX);
    const evidence: DuplicateVoteEvidence[] = [];
    for (let i = 0; i < evidenceCount; i++)
      evidence.push(evidenceCodec.read(r, `${field}.evidence[${i}]`));
    const lastCommit = r.bool(`${field}.lastCommit.present`)
      ? commitCodec.read(r, `${field}.lastCommit`)
      : null;
    return { header, txs, evidence, lastCommit };
  },
};

export const committedBlockCodec: Codec<CommittedBlock> = {
  write(w, c) {
    blockCodec.write(w, c.block);
    commitCodec.write(w, c.commit);
  },
  read(r, field) {
    return {
      block: blockCodec.read(r, `${field}.block`),
      commit: commitCodec.read(r, `${field}.commit`),
    };
  },
};

// --- messages -------------------------------------------------------------------

const MESSAGE_TAG = {
  proposal: 0,
  vote: 1,
  evidence: 2,
  blockRequest: 3,
  blockResponse: 4,
  blockBusy: 5,
} as const;

export const messageCodec: Codec<Message> = {
  write(w, m) {
    w.u8(MESSAGE_TAG[m.kind]);
    switch (m.kind) {
      case 'proposal':
        proposalCodec.write(w, m.proposal);
        blockCodec.write(w, m.block);
        return;
      case 'vote':
        voteCodec.write(w, m.vote);
        return;
      case 'evidence':
        evidenceCodec.write(w, m.evidence);
        return;
      case 'blockRequest':
        w.uvarint(m.fromHeight).uvarint(m.count);
        return;
      case 'blockResponse':
        w.uvarint(m.blocks.length);
        for (const b of m.blocks) committedBlockCodec.write(w, b);
        return;
      case 'blockBusy':
        w.uvarint(m.fromHeight);
        return;
    }
  },
  read(r, field) {
    switch (r.tag(`${field}.kind`, 6)) {
      case MESSAGE_TAG.proposal:
        return {
          kind: 'proposal',
          proposal: proposalCodec.read(r, `${field}.proposal`),
          block: blockCodec.read(r, `${field}.block`),
        };
      case MESSAGE_TAG.vote:
        return { kind: 'vote', vote: voteCodec.read(r, `${field}.vote`) };
      case MESSAGE_TAG.evidence:
        return { kind: 'evidence', evidence: evidenceCodec.read(r, `${field}.evidence`) };
      case MESSAGE_TAG.blockRequest: {
        const fromHeight = readHeight(r, `${field}.fromHeight`);
        const count = r.uvarint(`${field}.count`, CATCHUP_BATCH_BLOCKS_MAX);
        if (count === 0) throw new DecodeError(`${field}.count`, 'must ask for at least one block');
        return { kind: 'blockRequest', fromHeight, count };
      }
      case MESSAGE_TAG.blockBusy:
        return { kind: 'blockBusy', fromHeight: readHeight(r, `${field}.fromHeight`) };
      default: {
        const count = readCount(r, `${field}.blocks`, CATCHUP_BATCH_BLOCKS_MAX);
        const blocks: CommittedBlock[] = [];
        for (let i = 0; i < count; i++)
          blocks.push(committedBlockCodec.read(r, `${field}.blocks[${i}]`));
        return { kind: 'blockResponse', blocks };
      }
    }
  },
};

// --- validator sets and chain state ----------------------------------------------

export const validatorUpdateCodec: Codec<ValidatorUpdate> = {
  write(w, u) {
    w.fixed(u.publicKey, PUBLIC_KEY_BYTES).uvarint(u.power);
  },
  read(r, field) {
    return {
      publicKey: r.fixed(`${field}.publicKey`, PUBLIC_KEY_BYTES).slice(),
      power: r.uvarint(`${field}.power`, VALIDATOR_POWER_MAX),
    };
  },
};

/**
 * Encodings of set states already written: a checkpoint per height writes the
 * same two sets (priorities as bigints, slow to encode) until they rotate.
 * ValidatorSet.toState returns one object per immutable set.
 */
const setStateBytes = new WeakMap<ValidatorSetState, Uint8Array>();

export const validatorSetStateCodec: Codec<ValidatorSetState> = {
  write(w, s) {
    const bytes = setStateBytes.get(s);
    if (bytes !== undefined) {
      w.raw(bytes);
      return;
    }
    // Written in place and then copied: a nested encode() would take a fresh
    // Writer (the shared one is busy) and regrow it to the set's size each time.
    const start = w.length;
    setStateCodec.write(w, s);
    setStateBytes.set(s, w.peek().slice(start));
  },
  read(r, field) {
    return setStateCodec.read(r, field);
  },
};

/**
 * Each member's key, address and power, encoded: a set advanced by one height
 * shares its members array with the set before it, and only the priorities
 * change, so a checkpoint per height re-encodes those alone.
 */
const memberBytes = new WeakMap<ValidatorSetState['validators'], readonly Uint8Array[]>();

function encodedMembers(validators: ValidatorSetState['validators']): readonly Uint8Array[] {
  let members = memberBytes.get(validators);
  if (members === undefined) {
    const w = new Writer(64);
    members = validators.map((v) => {
      w.reset();
      w.fixed(v.publicKey, PUBLIC_KEY_BYTES).bytes(v.address, HASH_BYTES_MAX).uvarint(v.power);
      return w.finishOwned();
    });
    memberBytes.set(validators, members);
  }
  return members;
}

const setStateCodec: Codec<ValidatorSetState> = {
  write(w, s) {
    const members = encodedMembers(s.validators);
    w.uvarint(members.length);
    for (let i = 0; i < members.length; i++) w.raw(members[i]!).ivarintBig(s.priorities[i]!);
  },
  read(r, field) {
    const count = readCount(r, `${field}.validators`, VALIDATORS_MAX);
    const validators = [];
    const priorities = [];
    for (let i = 0; i < count; i++) {
      const f = `${field}.validators[${i}]`;
      validators.push({
        publicKey: r.fixed(`${f}.publicKey`, PUBLIC_KEY_BYTES).slice(),
        address: r.bytesField(`${f}.address`, HASH_BYTES_MAX).slice(),
        power: r.uvarint(`${f}.power`, VALIDATOR_POWER_MAX),
      });
      priorities.push(r.ivarintBig(`${f}.priority`, PRIORITY_BITS));
    }
    return { validators, priorities };
  },
};

export const chainStateCodec: Codec<ChainState> = {
  write(w, s) {
    w.string(s.chainId, CHAIN_ID_BYTES_MAX).uvarint(s.height).fixed(s.lastBlockHash, HASH_BYTES);
    w.uvarint(s.lastBlockTimeMs).bool(s.lastCommit !== null);
    if (s.lastCommit !== null) commitCodec.write(w, s.lastCommit);
    w.bytes(s.appHash, HASH_BYTES_MAX);
    validatorSetStateCodec.write(w, s.validators);
    validatorSetStateCodec.write(w, s.nextValidators);
    w.uvarint(s.history.length);
    for (const h of s.history) {
      w.uvarint(h.height);
      validatorSetStateCodec.write(w, h.set);
    }
    w.uvarint(s.committedEvidence.length);
    for (const e of s.committedEvidence) w.uvarint(e.height).fixed(e.hash, HASH_BYTES);
  },
  read(r, field) {
    const chainId = r.string(`${field}.chainId`, CHAIN_ID_BYTES_MAX);
    const height = r.uvarint(`${field}.height`);
    const lastBlockHash = r.fixed(`${field}.lastBlockHash`, HASH_BYTES).slice();
    const lastBlockTimeMs = r.uvarint(`${field}.lastBlockTimeMs`);
    const lastCommit = r.bool(`${field}.lastCommit.present`)
      ? commitCodec.read(r, `${field}.lastCommit`)
      : null;
    const appHash = r.bytesField(`${field}.appHash`, HASH_BYTES_MAX).slice();
    const validators = validatorSetStateCodec.read(r, `${field}.validators`);
    const nextValidators = validatorSetStateCodec.read(r, `${field}.nextValidators`);
    const historyCount = readCount(r, `${field}.history`, HISTORY_ENTRIES_MAX);
    const history = [];
    for (let i = 0; i < historyCount; i++) {
      const h = r.uvarint(`${field}.history[${i}].height`);
      history.push({
        height: h,
        set: validatorSetStateCodec.read(r, `${field}.history[${i}].set`),
      });
    }
    const evidenceCount = readCount(r, `${field}.committedEvidence`, COMMITTED_EVIDENCE_MAX);
    const committedEvidence = [];
    for (let i = 0; i < evidenceCount; i++) {
      committedEvidence.push({
        height: r.uvarint(`${field}.committedEvidence[${i}].height`),
        hash: r.fixed(`${field}.committedEvidence[${i}].hash`, HASH_BYTES).slice(),
      });
    }
    return {
      chainId,
      height,
      lastBlockHash,
      lastBlockTimeMs,
      lastCommit,
      appHash,
      validators,
      nextValidators,
      history,
      committedEvidence,
    };
  },
};

// --- inputs and WAL records --------------------------------------------------------

const timeoutCodec: Codec<TimeoutKey> = {
  write(w, t) {
    w.uvarint(t.height).uvarint(t.round).u8(t.step);
  },
  read(r, field) {
    return {
      height: readHeight(r, `${field}.height`),
      round: r.uvarint(`${field}.round`, ROUND_MAX),
      step: r.tag(`${field}.step`, 4) as TimeoutKey['step'],
    };
  },
};

export const blockResultCodec: Codec<BlockResult> = {
  write(w, b) {
    w.bytes(b.appHash, HASH_BYTES_MAX).uvarint(b.validatorUpdates.length);
    for (const u of b.validatorUpdates) validatorUpdateCodec.write(w, u);
  },
  read(r, field) {
    const appHash = r.bytesField(`${field}.appHash`, HASH_BYTES_MAX).slice();
    const count = readCount(r, `${field}.validatorUpdates`, VALIDATOR_UPDATES_MAX);
    const validatorUpdates = [];
    for (let i = 0; i < count; i++) {
      validatorUpdates.push(validatorUpdateCodec.read(r, `${field}.validatorUpdates[${i}]`));
    }
    return { appHash, validatorUpdates };
  },
};

const INPUT_TAG = { message: 0, timeout: 1, proposalBuilt: 2, blockExecuted: 3 } as const;

export const inputCodec: Codec<Input> = {
  write(w, input) {
    w.u8(INPUT_TAG[input.kind]).uvarint(input.nowMs);
    switch (input.kind) {
      case 'message':
        w.string(input.from, STRING_BYTES_MAX).bytes(input.bytes, MESSAGE_BYTES_MAX);
        return;
      case 'timeout':
        timeoutCodec.write(w, input.timeout);
        return;
      case 'proposalBuilt':
        w.uvarint(input.height).uvarint(input.round).uvarint(input.txs.length);
        for (const tx of input.txs) w.bytes(tx, TX_BYTES_MAX);
        return;
      case 'blockExecuted':
        w.uvarint(input.height);
        blockResultCodec.write(w, input.result);
        return;
    }
  },
  read(r, field) {
    const tag = r.tag(`${field}.kind`, 4);
    const nowMs = r.uvarint(`${field}.nowMs`);
    switch (tag) {
      case INPUT_TAG.message:
        return {
          kind: 'message',
          nowMs,
          from: r.string(`${field}.from`, STRING_BYTES_MAX),
          bytes: r.bytesField(`${field}.bytes`, MESSAGE_BYTES_MAX).slice(),
        };
      case INPUT_TAG.timeout:
        return { kind: 'timeout', nowMs, timeout: timeoutCodec.read(r, `${field}.timeout`) };
      case INPUT_TAG.proposalBuilt: {
        const height = readHeight(r, `${field}.height`);
        const round = r.uvarint(`${field}.round`, ROUND_MAX);
        const count = readCount(r, `${field}.txs`, BLOCK_TXS_MAX);
        const txs = [];
        for (let i = 0; i < count; i++)
          txs.push(r.bytesField(`${field}.txs[${i}]`, TX_BYTES_MAX).slice());
        return { kind: 'proposalBuilt', nowMs, height, round, txs };
      }
      default: {
        const height = readHeight(r, `${field}.height`);
        return {
          kind: 'blockExecuted',
          nowMs,
          height,
          result: blockResultCodec.read(r, `${field}.result`),
        };
      }
    }
  },
};

const WAL_TAG = { checkpoint: 0, input: 1, signed: 2 } as const;

/**
 * A checkpoint's committedEvidenceFrom: a height after the first (from 1 on,
 * every block's evidence is known: written as no field), and not after the
 * height the checkpoint's state is about to decide.
 */
function isEvidenceFrom(from: number, height: number): boolean {
  return Number.isSafeInteger(from) && from >= 2 && from <= height + 1;
}

/** The committed evidence with the offence of each, as a checkpoint writes them after the rest. */
function readOffences(
  r: Reader,
  field: string,
  committed: ChainState['committedEvidence'],
): ChainState['committedEvidence'] {
  let known = 0;
  const out = committed.map((e, i) => {
    if (!r.bool(`${field}.committedEvidence[${i}].offence.present`)) return e;
    known++;
    const publicKey = r
      .fixed(`${field}.committedEvidence[${i}].offence.publicKey`, PUBLIC_KEY_BYTES)
      .slice();
    const height = readHeight(r, `${field}.committedEvidence[${i}].offence.height`);
    return { ...e, offence: { publicKey, height } };
  });
  if (known === 0) {
    throw new DecodeError(`${field}.committedEvidence`, 'no offence known is written as none');
  }
  return out;
}

export const walRecordCodec: Codec<WalRecord> = {
  write(w, record) {
    w.u8(WAL_TAG[record.kind]);
    switch (record.kind) {
      case 'checkpoint': {
        chainStateCodec.write(w, record.state);
        // Written only while a pause lasts, evidence is pending or the
        // committed evidence starts after genesis (state sync), so one
        // encoding per record and older checkpoints still read: the pause
        // (0 for none, which only what follows may follow), the evidence (a
        // count of 0 for none, which only the next field may follow), then
        // state.committedEvidenceFrom.
        // Last, the offences of the committed evidence (one entry each, in
        // its order: known or not), written only when one is known; before
        // them a committedEvidenceFrom of 0 stands for none.
        const from = record.state.committedEvidenceFrom;
        const committed = record.state.committedEvidence;
        const offences = committed.some((e) => e.offence !== undefined);
        if (
          record.signingPausedUntil !== undefined ||
          record.evidence !== undefined ||
          from !== undefined ||
          offences
        ) {
          assert(record.signingPausedUntil !== 0, 'a pause ends at a height');
          assert(record.evidence?.length !== 0, 'no evidence is written as none');
          w.uvarint(record.signingPausedUntil ?? 0);
          if (record.evidence !== undefined || from !== undefined || offences) {
            const evidence = record.evidence ?? [];
            w.uvarint(evidence.length);
            for (const e of evidence) evidenceCodec.write(w, e);
          }
          if (from !== undefined) {
            assert(
              isEvidenceFrom(from, record.state.height),
              'committedEvidenceFrom is a height from 2 to the next',
            );
            w.uvarint(from);
          } else if (offences) {
            w.uvarint(0);
          }
          if (offences) {
            for (const e of committed) {
              w.bool(e.offence !== undefined);
              if (e.offence !== undefined) {
                w.fixed(e.offence.publicKey, PUBLIC_KEY_BYTES).uvarint(e.offence.height);
              }
            }
          }
        }
        return;
      }
      case 'input':
        inputCodec.write(w, record.input);
        return;
      case 'signed':
        w.uvarint(record.height).uvarint(record.round).u8(record.step);
        w.bytes(record.bytes, MESSAGE_BYTES_MAX);
        return;
    }
  },
  read(r, field) {
    switch (r.tag(`${field}.kind`, 3)) {
      case WAL_TAG.checkpoint: {
        const state = chainStateCodec.read(r, `${field}.state`);
        if (r.remaining === 0) return { kind: 'checkpoint', state };
        const paused = r.uvarint(`${field}.signingPausedUntil`);
        if (r.remaining === 0) {
          // A pause alone is a height: no pause is written as no field.
          if (paused === 0) {
            throw new DecodeError(`${field}.signingPausedUntil`, 'heights start at 1');
          }
          return { kind: 'checkpoint', state, signingPausedUntil: paused };
        }
        const count = readCount(r, `${field}.evidence`, EVIDENCE_POOL_MAX);
        const evidence: DuplicateVoteEvidence[] = [];
        for (let i = 0; i < count; i++) {
          evidence.push(evidenceCodec.read(r, `${field}.evidence[${i}]`));
        }
        let withFrom = state;
        if (r.remaining > 0) {
          const from = r.uvarint(`${field}.state.committedEvidenceFrom`);
          if (from === 0 && r.remaining === 0) {
            throw new DecodeError(
              `${field}.state.committedEvidenceFrom`,
              'none (0) is written only before the offences',
            );
          }
          if (from !== 0 && !isEvidenceFrom(from, state.height)) {
            throw new DecodeError(
              `${field}.state.committedEvidenceFrom`,
              `${from} is not a height from 2 to the next (${state.height + 1})`,
            );
          }
          if (from !== 0) withFrom = { ...withFrom, committedEvidenceFrom: from };
          if (r.remaining > 0) {
            withFrom = {
              ...withFrom,
              committedEvidence: readOffences(r, `${field}.state`, state.committedEvidence),
            };
          }
        } else if (count === 0) {
          throw new DecodeError(`${field}.evidence`, 'no evidence is written as none');
        }
        return {
          kind: 'checkpoint',
          state: withFrom,
          ...(paused === 0 ? {} : { signingPausedUntil: paused }),
          ...(count === 0 ? {} : { evidence }),
        };
      }
      case WAL_TAG.input:
        return { kind: 'input', input: inputCodec.read(r, `${field}.input`) };
      default:
        return {
          kind: 'signed',
          height: readHeight(r, `${field}.height`),
          round: r.uvarint(`${field}.round`, ROUND_MAX),
          step: readStep(r, `${field}.step`),
          bytes: r.bytesField(`${field}.bytes`, MESSAGE_BYTES_MAX).slice(),
        };
    }
  },
};
