import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createCipheriv } from 'node:crypto';
import {
  FRAME_KIND,
  FrameCipher,
  FrameDecoder,
  PROLOGUE_BYTES,
  PROTOCOL_VERSION,
  checkAuth,
  clearFrame,
  decodeHello,
  deriveSession,
  encodeAuth,
  encodeHello,
  makeEphemeral,
} from '../../../src/node/transport/secure.ts';
import type { Hello, Session } from '../../../src/node/transport/secure.ts';
import { EXECUTION_VERSION } from '../../../src/exchange/version.ts';
import { CHAIN_ID, keyOf } from './helpers.ts';

function pair(): [Session, Session] {
  const x = makeEphemeral();
  const y = makeEphemeral();
  const hx = encodeHello(x, EXECUTION_VERSION);
  const hy = encodeHello(y, EXECUTION_VERSION);
  const sx = deriveSession(CHAIN_ID, x, hx, ourHello(hy).bytes)!;
  const sy = deriveSession(CHAIN_ID, y, hy, ourHello(hx).bytes)!;
  return [sx, sy];
}

/** The hello decoded, as one of this wire version. */
function ourHello(bytes: Uint8Array): Extract<Hello, { kind: 'hello' }> {
  const hello = decodeHello(bytes);
  assert.equal(hello?.kind, 'hello');
  return hello as Extract<Hello, { kind: 'hello' }>;
}

/** A hello of this wire version carrying `key` as its ephemeral key. */
function helloWithKey(key: Uint8Array): Uint8Array {
  const hello = encodeHello(makeEphemeral(), EXECUTION_VERSION);
  hello.set(key, PROLOGUE_BYTES);
  return hello;
}

test('both sides derive the same transcript and matching directional keys', () => {
  const [x, y] = pair();
  assert.deepEqual(x.transcript, y.transcript);
  for (const [from, to] of [
    [x, y],
    [y, x],
  ] as const) {
    const frame = from.sender.seal(Uint8Array.of(1, 2, 3));
    assert.deepEqual(to.receiver.open(frame.length - 4, frame.subarray(4)), Uint8Array.of(1, 2, 3));
  }
  // A side cannot read its own frames: the directions have different keys.
  const own = x.sender.seal(Uint8Array.of(9));
  assert.equal(x.receiver.open(own.length - 4, own.subarray(4)), null);
});

test('frames round-trip in order; any flipped bit or reordering fails authentication', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 5 }),
      fc.nat(),
      (messages, flip) => {
        const [x, y] = pair();
        const frames = messages.map((m) => x.sender.seal(m));
        frames.forEach((frame, i) => {
          assert.deepEqual(y.receiver.open(frame.length - 4, frame.subarray(4)), messages[i]);
        });
        const [x2, y2] = pair();
        const frame = x2.sender.seal(messages[0]!);
        const bit = flip % ((frame.length - 4) * 8);
        frame[4 + (bit >> 3)]! ^= 1 << (bit & 7);
        assert.equal(y2.receiver.open(frame.length - 4, frame.subarray(4)), null);
        if (frames.length > 1) {
          const [x3, y3] = pair();
          // The first frame is lost on the way: the second no longer matches the receiver's counter.
          x3.sender.seal(messages[0]!);
          const f1 = x3.sender.seal(messages[1]!);
          assert.equal(y3.receiver.open(f1.length - 4, f1.subarray(4)), null);
        }
      },
    ),
    { numRuns: 100, seed: 3003 },
  );
});

test('a frame with a kind carries it as its first plaintext byte, the message after it', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(0, 1, 2), (message, kind) => {
      const [x, y] = pair();
      const frame = x.sender.seal(message, kind);
      assert.equal(frame.readUInt32BE(0), frame.length - 4);
      const plain = y.receiver.open(frame.length - 4, frame.subarray(4))!;
      assert.equal(plain[0], kind);
      assert.deepEqual(plain.subarray(1), new Uint8Array(message));
    }),
    { numRuns: 100, seed: 3005 },
  );
  // A large message too.
  const [x, y] = pair();
  const large = Uint8Array.from({ length: 10_000 }, (_, i) => i & 0xff);
  const frame = x.sender.seal(large, FRAME_KIND.message);
  const plain = y.receiver.open(frame.length - 4, frame.subarray(4))!;
  assert.equal(plain[0], FRAME_KIND.message);
  assert.deepEqual(plain.subarray(1), large);
  assert.deepEqual(FRAME_KIND, { message: 0, ping: 1, pong: 2 });
});

test('frames are RFC 8439 ChaCha20-Poly1305 with the length as associated data, byte for byte', () => {
  // Computed independently with node:crypto: a peer of any build speaking protocol 2 reads our frames.
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7));
  const nonceBase = Buffer.from(Array.from({ length: 12 }, (_, i) => 200 - i));
  const sender = new FrameCipher(key, nonceBase);
  for (let counter = 0; counter < 3; counter++) {
    const message = Uint8Array.from(
      { length: 50 + counter * 1000 },
      (_, i) => (i * 13 + counter) & 0xff,
    );
    const frame = sender.seal(message, FRAME_KIND.message);
    const nonce = Buffer.from(nonceBase);
    nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ counter) >>> 0, 8);
    const plain = Buffer.concat([Uint8Array.of(FRAME_KIND.message), message]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(plain.length + 16, 0);
    const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
    cipher.setAAD(length, { plaintextLength: plain.length });
    const expected = Buffer.concat([
      length,
      cipher.update(plain),
      cipher.final(),
      cipher.getAuthTag(),
    ]);
    assert.deepEqual(frame, expected, `frame ${counter}`);
  }
});

test('a reflected hello or a low-order key yields no session', () => {
  const x = makeEphemeral();
  const own = encodeHello(x, EXECUTION_VERSION);
  assert.equal(deriveSession(CHAIN_ID, x, own, own), null);
  assert.equal(deriveSession(CHAIN_ID, x, own, helloWithKey(new Uint8Array(32))), null);
  const one = new Uint8Array(32);
  one[0] = 1;
  assert.equal(deriveSession(CHAIN_ID, x, own, helloWithKey(one)), null);
});

test('malformed hellos are refused', () => {
  const good = encodeHello(makeEphemeral(), EXECUTION_VERSION);
  assert.equal(decodeHello(good)?.kind, 'hello');
  assert.equal(decodeHello(good.subarray(0, 32)), null);
  assert.equal(decodeHello(Uint8Array.of(...good, 0)), null);
  assert.equal(decodeHello(new Uint8Array(0)), null);
});

test('a hello of another wire version is read as far as its prologue: the versions it runs', () => {
  const good = encodeHello(makeEphemeral(), 7);
  assert.equal(ourHello(good).executionVersion, 7);
  // Wire version 2 (the build before versions were exchanged): version(u8) then the key, nothing more.
  assert.deepEqual(decodeHello(Uint8Array.of(2, ...good.subarray(PROLOGUE_BYTES))), {
    kind: 'otherWire',
    wireVersion: 2,
    executionVersion: null,
  });
  // Version 1 (frames without a kind byte) likewise.
  assert.deepEqual(decodeHello(Uint8Array.of(1, ...good.subarray(PROLOGUE_BYTES))), {
    kind: 'otherWire',
    wireVersion: 1,
    executionVersion: null,
  });
  // A later wire version keeps the prologue; whatever follows it (longer, shorter) is not read.
  for (const rest of [
    good.subarray(1),
    good.subarray(1, PROLOGUE_BYTES),
    Uint8Array.of(...good.subarray(1), 1, 2, 3),
  ]) {
    assert.deepEqual(decodeHello(Uint8Array.of(PROTOCOL_VERSION + 1, ...rest)), {
      kind: 'otherWire',
      wireVersion: PROTOCOL_VERSION + 1,
      executionVersion: 7,
    });
  }
});

test('the transcript covers both hellos whole: another execution version in either gives another transcript', () => {
  const x = makeEphemeral();
  const y = makeEphemeral();
  const hx = encodeHello(x, 5);
  const hy = encodeHello(y, 5);
  const base = deriveSession(CHAIN_ID, x, hx, hy)!.transcript;
  assert.deepEqual(deriveSession(CHAIN_ID, y, hy, hx)!.transcript, base);
  const altered = hy.slice();
  altered[4]! ^= 1;
  assert.notDeepEqual(deriveSession(CHAIN_ID, x, hx, altered)!.transcript, base);
  const ownAltered = hx.slice();
  ownAltered[1]! ^= 0x80;
  assert.notDeepEqual(deriveSession(CHAIN_ID, x, ownAltered, hy)!.transcript, base);
});

test('auth: checks the signature over this transcript, on this chain, by the key it names', () => {
  const [x, y] = pair();
  const auth = encodeAuth(keyOf(1), CHAIN_ID, x.transcript);
  assert.deepEqual(checkAuth(auth, CHAIN_ID, y.transcript), keyOf(1).publicKey);
  assert.equal(checkAuth(auth, 'zomma-other-1', y.transcript), null);
  const [other] = pair();
  assert.equal(checkAuth(auth, CHAIN_ID, other.transcript), null);
  const swapped = Uint8Array.from(auth);
  swapped.set(keyOf(2).publicKey, 0);
  assert.equal(checkAuth(swapped, CHAIN_ID, y.transcript), null);
  assert.equal(checkAuth(auth.subarray(1), CHAIN_ID, y.transcript), null);
});

test('the frame decoder splits any chunking of a stream, and flags an oversize length at once', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 400 }), { maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }),
      (bodies, cuts) => {
        const stream = Buffer.concat(bodies.map((b) => clearFrame(b)));
        const decoder = new FrameDecoder(400);
        const out: Uint8Array[] = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const step = cuts[i % cuts.length]!;
          decoder.push(stream.subarray(at, at + step));
          at += step;
          for (let body = decoder.next(); body !== null; body = decoder.next()) {
            assert.notEqual(body, 'oversize');
            out.push(new Uint8Array(body as Buffer));
          }
        }
        assert.deepEqual(
          out,
          bodies.map((b) => new Uint8Array(b)),
        );
      },
    ),
    { numRuns: 200, seed: 3004 },
  );
  const decoder = new FrameDecoder(50);
  decoder.push(Buffer.from([0, 0, 0, 51]));
  assert.equal(decoder.next(), 'oversize');
});

test('a frame trickled a byte at a time is held in one buffer, not one object per byte', () => {
  // Each socket read is a Buffer object of about 150 bytes: a peer trickling a
  // largest frame in 1-byte segments would otherwise cost over a gigabyte.
  const body = new Uint8Array(200_000).map((_, i) => (i * 31) & 0xff);
  const stream = Buffer.concat([clearFrame(body), clearFrame(Uint8Array.of(7, 8))]);
  const decoder = new FrameDecoder(1 << 20);
  const out: Uint8Array[] = [];
  let held = 0;
  for (let at = 0; at < stream.length; at++) {
    decoder.push(stream.subarray(at, at + 1));
    for (let b = decoder.next(); b !== null; b = decoder.next()) {
      assert.notEqual(b, 'oversize');
      out.push(new Uint8Array(b as Buffer));
    }
    held = Math.max(held, decoder.chunksHeld());
  }
  assert.deepEqual(out, [body, Uint8Array.of(7, 8)]);
  assert.ok(held <= 100, `${held} chunks held at once`);
});
