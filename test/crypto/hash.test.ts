import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { concatBytes, fromHex, toHex } from '../../src/lib/bytes.ts';
import { HASH_BYTES, merkleRoot, sha256, sha256Latin1 } from '../../src/crypto/index.ts';

test('sha256 of nothing, of "abc", and of parts equals the hash of their concatenation', () => {
  assert.equal(toHex(sha256()), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(
    toHex(sha256(new TextEncoder().encode('abc'))),
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  );
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 5 }), (parts) => {
      const digest = sha256(...parts);
      assert.equal(digest.length, HASH_BYTES);
      assert.equal(
        toHex(digest),
        createHash('sha256')
          .update(concatBytes(...parts))
          .digest('hex'),
      );
    }),
    { numRuns: 100, seed: 31 },
  );
});

test('sha256Latin1 is sha256 with one character per byte, over views at any offset', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(16), (bytes, skip) => {
      const view = bytes.subarray(Math.min(skip, bytes.length));
      const text = sha256Latin1(view);
      assert.equal(text.length, HASH_BYTES);
      const decoded = Uint8Array.from(text, (c) => c.charCodeAt(0));
      assert.deepEqual(decoded, sha256(view));
    }),
    { numRuns: 200, seed: 32 },
  );
});

// RFC 6962 reference tree: the Certificate Transparency test leaves and the
// root of the first n of them, n = 0..8 (google/certificate-transparency).
const CT_LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map((hex) => fromHex(hex));
const CT_ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

test('merkleRoot matches the RFC 6962 reference roots for 0 to 8 leaves', () => {
  for (let n = 0; n <= CT_LEAVES.length; n++) {
    assert.equal(toHex(merkleRoot(CT_LEAVES.slice(0, n))), CT_ROOTS[n], `${n} leaves`);
  }
});

test('merkleRoot small cases by hand: one, two and three leaves', () => {
  const h = (...parts: Uint8Array[]): Uint8Array => sha256(...parts);
  const [a, b, c] = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)];
  const leaf = (x: Uint8Array): Uint8Array => h(Uint8Array.of(0), x);
  const node = (l: Uint8Array, r: Uint8Array): Uint8Array => h(Uint8Array.of(1), l, r);
  assert.deepEqual(merkleRoot([a]), leaf(a));
  assert.deepEqual(merkleRoot([a, b]), node(leaf(a), leaf(b)));
  // Three leaves split 2 + 1: the odd leaf is promoted, never duplicated.
  assert.deepEqual(merkleRoot([a, b, c]), node(node(leaf(a), leaf(b)), leaf(c)));
  assert.notDeepEqual(merkleRoot([a, b, c]), merkleRoot([a, b, c, c]));
  // A leaf is never mistaken for an inner node of the same bytes.
  assert.notDeepEqual(merkleRoot([concatBytes(leaf(a), leaf(b))]), merkleRoot([a, b]));
});

test('merkleRoot changes when any leaf, the order or the count changes', () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 8 }), { minLength: 2, maxLength: 20 }),
      fc.nat(),
      (leaves, pick) => {
        const root = toHex(merkleRoot(leaves));
        const i = pick % leaves.length;
        const changed: Uint8Array[] = leaves.slice();
        changed[i] = concatBytes(leaves[i]!, Uint8Array.of(0));
        assert.notEqual(toHex(merkleRoot(changed)), root);
        assert.notEqual(toHex(merkleRoot(leaves.slice(0, -1))), root);
      },
    ),
    { numRuns: 100, seed: 32 },
  );
});

test('merkleRoot equals RFC 6962 written out with a hash object per hash, for leaves of any size in any order', () => {
  const digest = (...parts: Uint8Array[]): Uint8Array => {
    const h = createHash('sha256');
    for (const part of parts) h.update(part);
    return new Uint8Array(h.digest());
  };
  const reference = (leaves: readonly Uint8Array[]): Uint8Array => {
    if (leaves.length === 0) return digest();
    if (leaves.length === 1) return digest(Uint8Array.of(0), leaves[0]!);
    let k = 1;
    while (k * 2 < leaves.length) k *= 2;
    return digest(Uint8Array.of(1), reference(leaves.slice(0, k)), reference(leaves.slice(k)));
  };
  // Leaves long and short mixed: the staging buffer grows, and a short leaf after a long one reuses it.
  const leaf = fc.oneof(fc.uint8Array({ maxLength: 4 }), fc.uint8Array({ maxLength: 1_200 }));
  fc.assert(
    fc.property(fc.array(leaf, { maxLength: 70 }), (leaves) => {
      const root = merkleRoot(leaves);
      assert.equal(toHex(root), toHex(reference(leaves)));
      assert.equal(Object.getPrototypeOf(root), Uint8Array.prototype);
      assert.equal(root.buffer.byteLength, HASH_BYTES);
    }),
    { numRuns: 150, seed: 6962 },
  );
  const many = Array.from({ length: 257 }, (_, i) => Uint8Array.of(i & 0xff, i >> 8));
  for (const n of [63, 64, 65, 128, 255, 256, 257])
    assert.equal(toHex(merkleRoot(many.slice(0, n))), toHex(reference(many.slice(0, n))));
});
