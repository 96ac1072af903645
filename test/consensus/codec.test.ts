import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writer, decode, encode } from '../../src/codec/wire.ts';
import { PUBLIC_KEY_BYTES, validatorSetStateCodec } from '../../src/consensus/codec.ts';
import type { ValidatorSetState } from '../../src/consensus/types.ts';
import { ValidatorSet } from '../../src/consensus/validators.ts';
import { HASH_BYTES_MAX } from '../../src/lib/limits.ts';

/** The set's encoding written field by field, with nothing remembered. */
function reference(s: ValidatorSetState): Uint8Array {
  const w = new Writer();
  w.uvarint(s.validators.length);
  for (let i = 0; i < s.validators.length; i++) {
    const v = s.validators[i]!;
    w.fixed(v.publicKey, PUBLIC_KEY_BYTES).bytes(v.address, HASH_BYTES_MAX).uvarint(v.power);
    w.ivarintBig(s.priorities[i]!);
  }
  return w.finishOwned();
}

test('remembered validator-set encodings are the bytes written from scratch', () => {
  const updates = Array.from({ length: 7 }, (_, i) => ({
    publicKey: new Uint8Array(PUBLIC_KEY_BYTES).fill(i + 1),
    power: 1 + i * 3,
  }));
  let set = ValidatorSet.fromUpdates(updates);
  for (let height = 0; height < 5; height++) {
    const state = set.toState();
    // Twice: the first write encodes, the second copies what it remembered;
    // inside a larger record, so the remembered bytes start at an offset.
    for (let pass = 0; pass < 2; pass++) {
      const w = new Writer(8);
      w.uvarint(300);
      validatorSetStateCodec.write(w, state);
      const ref = reference(state);
      assert.deepEqual(w.finishOwned().slice(2), ref);
      assert.deepEqual(encode(validatorSetStateCodec, state), ref);
      assert.deepEqual(decode(validatorSetStateCodec, ref, 'set'), {
        validators: state.validators,
        priorities: state.priorities,
      });
    }
    set = set.advanced();
  }
});
