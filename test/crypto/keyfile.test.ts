import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toHex } from '../../src/lib/bytes.ts';
import {
  CryptoError,
  formatAddress,
  keyPairFromSeed,
  loadKeyFile,
  saveKeyFile,
} from '../../src/crypto/index.ts';
import type { CryptoErrorCode } from '../../src/crypto/index.ts';

const POSIX = process.platform !== 'win32';
const KEYFILE_MODULE = fileURLToPath(new URL('../../src/crypto/keyfile.ts', import.meta.url));
const key = keyPairFromSeed(new Uint8Array(32).fill(7));
const other = keyPairFromSeed(new Uint8Array(32).fill(8));

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-keyfile-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeKeyFile(path: string, json: unknown, mode = 0o600): void {
  writeFileSync(path, typeof json === 'string' ? json : JSON.stringify(json), { mode });
  chmodSync(path, mode);
}

function refusedWith(path: string, code: CryptoErrorCode, pattern: RegExp): void {
  assert.throws(
    () => loadKeyFile(path),
    (e: unknown) => {
      assert.ok(e instanceof CryptoError, String(e));
      assert.equal(e.code, code);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

const goodJson = {
  type: 'ed25519',
  publicKey: toHex(key.publicKey),
  privateKey: toHex(key.seed),
  address: formatAddress(key.address),
};

test('a saved key file has mode 0600, the documented fields, and loads back', () => {
  withDir((dir) => {
    const path = join(dir, 'validator.json');
    saveKeyFile(path, key);
    if (POSIX) assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), goodJson);
    const loaded = loadKeyFile(path);
    assert.deepEqual(loaded.publicKey, key.publicKey);
    assert.deepEqual(loaded.seed, key.seed);
    assert.deepEqual(loaded.address, key.address);
    assert.deepEqual(readdirSync(dir), ['validator.json'], 'no temporary file is left');
  });
});

test('saving is 0600 even under a permissive umask', { skip: !POSIX }, () => {
  const previous = process.umask(0o000);
  try {
    withDir((dir) => {
      const path = join(dir, 'k.json');
      saveKeyFile(path, key);
      assert.equal(statSync(path).mode & 0o777, 0o600);
    });
  } finally {
    process.umask(previous);
  }
});

test('an existing key file is not replaced unless asked', () => {
  withDir((dir) => {
    const path = join(dir, 'k.json');
    saveKeyFile(path, key);
    assert.throws(
      () => saveKeyFile(path, other),
      (e: unknown) =>
        e instanceof CryptoError && e.code === 'BadKeyFile' && /already exists/.test(e.message),
    );
    assert.deepEqual(loadKeyFile(path).publicKey, key.publicKey, 'the first key is intact');
    saveKeyFile(path, other, { overwrite: true });
    assert.deepEqual(loadKeyFile(path).publicKey, other.publicKey);
    if (POSIX) assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['k.json']);
  });
});

test(
  'a key file group or others can read is refused, and the error says how to fix it',
  { skip: !POSIX },
  () => {
    withDir((dir) => {
      const path = join(dir, 'k.json');
      for (const mode of [0o644, 0o640, 0o604, 0o660, 0o606, 0o610]) {
        writeKeyFile(path, goodJson, mode);
        refusedWith(
          path,
          'KeyFileTooOpen',
          new RegExp(`chmod 600 ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
        );
      }
      chmodSync(path, 0o600);
      assert.deepEqual(loadKeyFile(path).publicKey, key.publicKey);
      chmodSync(path, 0o400);
      assert.deepEqual(
        loadKeyFile(path).publicKey,
        key.publicKey,
        'read-only for the owner is fine',
      );
    });
  },
);

test(
  'a readable file that is no key file is BadKeyFile, not KeyFileTooOpen (it holds no private key)',
  { skip: !POSIX },
  () => {
    withDir((dir) => {
      // A node's config.json or genesis.json passed as --key-file: mode 0644, as such files are.
      const path = join(dir, 'config.json');
      writeKeyFile(path, { chainId: 'zomma-devnet', api: '127.0.0.1:27001' }, 0o644);
      refusedWith(path, 'BadKeyFile', /unknown field "chainId"/);
      writeKeyFile(path, 'not json', 0o644);
      refusedWith(path, 'BadKeyFile', /not JSON/);
      writeKeyFile(path, { privateKey: 7, note: 'a number is no key' }, 0o644);
      refusedWith(path, 'BadKeyFile', /unknown field "note"/);
      writeKeyFile(path, goodJson, 0o644);
      refusedWith(path, 'KeyFileTooOpen', /holds a private key .*chmod 600/);
    });
  },
);

test(
  'a file holding a private key that others can read is KeyFileTooOpen before any other fault, and echoes none of it',
  { skip: !POSIX },
  () => {
    withDir((dir) => {
      const path = join(dir, 'k.json');
      const faulty: Record<string, unknown>[] = [
        { ...goodJson, mnemonic: 'word word word' },
        { ...goodJson, type: 'secp256k1' },
        { ...goodJson, publicKey: toHex(other.publicKey) },
        { ...goodJson, address: formatAddress(other.address) },
        { privateKey: toHex(key.seed) },
        { ...goodJson, privateKey: `0x${toHex(key.seed)}` },
      ];
      for (const json of faulty) {
        writeKeyFile(path, json, 0o644);
        assert.throws(
          () => loadKeyFile(path),
          (e: unknown) => {
            assert.ok(e instanceof CryptoError, String(e));
            assert.equal(
              e.code,
              'KeyFileTooOpen',
              `${JSON.stringify(Object.keys(json))}: ${e.message}`,
            );
            assert.doesNotMatch(e.message, /mnemonic|secp256k1/);
            assert.ok(!e.message.includes(toHex(key.seed)), 'no private key in the message');
            return true;
          },
        );
        // Once the mode is right, its own fault is named.
        chmodSync(path, 0o600);
        refusedWith(path, 'BadKeyFile', /./);
      }
    });
  },
);

test('malformed key files give BadKeyFile naming the field', () => {
  withDir((dir) => {
    const path = join(dir, 'k.json');
    const cases: [unknown, RegExp][] = [
      ['not json', /not JSON/],
      ['[]', /JSON object/],
      ['null', /JSON object/],
      [{ ...goodJson, type: 'secp256k1' }, /type must be "ed25519"/],
      [{ ...goodJson, privateKey: undefined }, /privateKey must be a string/],
      [{ ...goodJson, privateKey: 'zz'.repeat(32) }, /privateKey must be 64 hex digits/],
      [{ ...goodJson, privateKey: toHex(key.seed).slice(2) }, /privateKey must be 64 hex digits/],
      [{ ...goodJson, publicKey: 12 }, /publicKey must be a string/],
      [
        { ...goodJson, publicKey: toHex(other.publicKey) },
        /publicKey does not belong to privateKey/,
      ],
      [
        { ...goodJson, address: formatAddress(other.address) },
        /address does not belong to privateKey/,
      ],
      [{ ...goodJson, address: undefined }, /address must be a string/],
      [{ ...goodJson, extra: 1 }, /unknown field "extra"/],
      [' '.repeat(5000), /larger than/],
    ];
    for (const [json, pattern] of cases) {
      writeKeyFile(path, json);
      refusedWith(path, 'BadKeyFile', pattern);
    }
    refusedWith(join(dir, 'missing.json'), 'BadKeyFile', /cannot be opened \(ENOENT\)/);
    refusedWith(dir, 'BadKeyFile', /not a regular file/);
  });
});

test('a named pipe given as a key file is refused at once, not waited on', { skip: !POSIX }, () => {
  withDir((dir) => {
    const fifo = join(dir, 'key.json');
    execFileSync('mkfifo', [fifo]);
    // In a child process: a build that blocks on the pipe's open would hang
    // this test's own thread; the child is killed instead and the test fails.
    const script =
      `import { loadKeyFile } from ${JSON.stringify(KEYFILE_MODULE)};` +
      `try { loadKeyFile(${JSON.stringify(fifo)}); console.log('loaded'); }` +
      ` catch (e) { console.log(e.code + ': ' + e.message); }`;
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(r.signal, null, 'loading a named pipe blocked');
    assert.match(r.stdout, /^BadKeyFile: .*not a regular file/);
  });
});

test('error messages never contain the private key', () => {
  withDir((dir) => {
    const path = join(dir, 'k.json');
    writeKeyFile(path, { ...goodJson, publicKey: toHex(other.publicKey) });
    try {
      loadKeyFile(path);
      assert.fail('expected a refusal');
    } catch (e) {
      assert.ok(!(e as Error).message.includes(toHex(key.seed)));
    }
  });
});
