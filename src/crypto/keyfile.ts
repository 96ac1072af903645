// Key files: one JSON object, readable by its owner only.
//
//   { "type": "ed25519", "publicKey": "<64 hex>", "privateKey": "<64 hex: the seed>",
//     "address": "0x<40 hex>" }
//
// Written to a temporary file created with mode 0600 and renamed into place,
// so there is never a moment when the key is world-readable or half-written.

import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  linkSync,
  openSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { assert } from '../lib/assert.ts';
import { bytesEqual, toHex } from '../lib/bytes.ts';
import { KEY_FILE_BYTES_MAX } from '../lib/limits.ts';
import { formatAddress } from './address.ts';
import { PUBLIC_KEY_BYTES, SEED_BYTES } from './constants.ts';
import { keyPairFromSeed } from './ed25519.ts';
import type { KeyPair } from './ed25519.ts';
import { CryptoError } from './errors.ts';

const KEY_FILE_TYPE = 'ed25519';
const KEY_FILE_MODE = 0o600;
const FIELDS = ['type', 'publicKey', 'privateKey', 'address'];

export interface SaveKeyFileOptions {
  /** Replace an existing file at the path (default false: a key is never clobbered by accident). */
  overwrite?: boolean;
}

function encodeKeyFile(key: KeyPair): string {
  const json = {
    type: KEY_FILE_TYPE,
    publicKey: toHex(key.publicKey),
    privateKey: toHex(key.seed),
    address: formatAddress(key.address),
  };
  return `${JSON.stringify(json, null, 2)}\n`;
}

function fsyncDirectory(directory: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(directory, 'r');
    fsyncSync(fd);
  } catch {
    // Some platforms cannot open or sync a directory; the rename is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes a key file with mode 0600, durably (fsync of the file and its
 * directory). Refuses to replace an existing file unless options.overwrite:
 * losing a validator's key to a typo is worse than an error.
 * Throws CryptoError 'BadKeyFile' if the path exists (and overwrite is off).
 */
export function saveKeyFile(path: string, key: KeyPair, options: SaveKeyFileOptions = {}): void {
  assert(key.seed.length === SEED_BYTES, 'a key pair holds a 32-byte seed');
  const check = keyPairFromSeed(key.seed);
  assert(bytesEqual(check.publicKey, key.publicKey), 'key pair public key matches its seed');
  assert(bytesEqual(check.address, key.address), 'key pair address matches its seed');
  const text = encodeKeyFile(key);
  const directory = dirname(path);
  const temporary = join(directory, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  // O_EXCL: never write through a file or link someone else placed at the temporary name.
  const fd = openSync(
    temporary,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL,
    KEY_FILE_MODE,
  );
  try {
    const bytes = Buffer.from(text, 'utf8');
    for (let written = 0; written < bytes.length;) {
      written += writeSync(fd, bytes, written, bytes.length - written);
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(temporary);
    throw e;
  }
  closeSync(fd);
  try {
    if (options.overwrite === true) {
      renameSync(temporary, path);
    } else {
      // link() fails if the path exists, where rename() would silently replace it.
      linkSync(temporary, path);
      unlinkSync(temporary);
    }
  } catch (e) {
    unlinkSync(temporary);
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CryptoError(
        'BadKeyFile',
        `${path} already exists; refusing to replace a key file (move it away first)`,
      );
    }
    throw e;
  }
  fsyncDirectory(directory);
}

function bad(path: string, reason: string): never {
  throw new CryptoError('BadKeyFile', `${path}: ${reason}`);
}

function hexField(
  path: string,
  json: Record<string, unknown>,
  name: string,
  bytes: number,
): Uint8Array {
  const value = json[name];
  if (typeof value !== 'string') bad(path, `${name} must be a string of ${2 * bytes} hex digits`);
  if (!new RegExp(`^[0-9a-fA-F]{${2 * bytes}}$`).test(value)) {
    bad(path, `${name} must be ${2 * bytes} hex digits (${bytes} bytes)`);
  }
  return Uint8Array.from(Buffer.from(value, 'hex'));
}

/** The file's text, and its permission bits to check once the text is known to be a key. */
function readLimited(path: string): { text: string; mode: number } {
  let fd: number;
  try {
    // O_NONBLOCK: a named pipe opens at once (and is refused below as not
    // a regular file) instead of blocking until something writes to it; on
    // a regular file the flag changes nothing.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    bad(path, `cannot be opened (${code})`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) bad(path, 'is not a regular file');
    if (stat.size > KEY_FILE_BYTES_MAX) bad(path, `is larger than ${KEY_FILE_BYTES_MAX} bytes`);
    const buffer = Buffer.alloc(KEY_FILE_BYTES_MAX + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > KEY_FILE_BYTES_MAX) bad(path, `is larger than ${KEY_FILE_BYTES_MAX} bytes`);
    }
    return { text: buffer.toString('utf8', 0, length), mode: stat.mode };
  } finally {
    closeSync(fd);
  }
}

/** Refuses a file holding a private key that group or others may access. */
function checkMode(path: string, mode: number): void {
  // Windows has no group/other permission bits to check.
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    const bits = (mode & 0o777).toString(8).padStart(4, '0');
    throw new CryptoError(
      'KeyFileTooOpen',
      `${path} holds a private key but group or others may access it (mode ${bits}); ` +
        `run: chmod 600 ${path}`,
    );
  }
}

/**
 * Reads a key file. Throws CryptoError 'KeyFileTooOpen' if it is a JSON object
 * with a privateKey string that group or others may access, and 'BadKeyFile'
 * naming the field if it is malformed or its public key or address does not
 * belong to its private key. A file that holds no private key (a node's
 * config.json given as --key-file) is a BadKeyFile whatever its mode, not told
 * that it holds one.
 */
export function loadKeyFile(path: string): KeyPair {
  const { text, mode } = readLimited(path);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    bad(path, 'is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    bad(path, 'must hold a JSON object');
  }
  const json = parsed as Record<string, unknown>;
  // A privateKey makes it a secret, whatever else is wrong with it: the mode
  // comes first then, so that nothing of an exposed key file is echoed and
  // its owner learns at once that the key may have been read.
  if (typeof json.privateKey === 'string') checkMode(path, mode);
  for (const name of Object.keys(json)) {
    if (!FIELDS.includes(name)) bad(path, `unknown field ${JSON.stringify(name)}`);
  }
  if (json.type !== KEY_FILE_TYPE) bad(path, `type must be "${KEY_FILE_TYPE}"`);
  const seed = hexField(path, json, 'privateKey', SEED_BYTES);
  const publicKey = hexField(path, json, 'publicKey', PUBLIC_KEY_BYTES);
  if (typeof json.address !== 'string') bad(path, 'address must be a string');
  const key = keyPairFromSeed(seed);
  if (!bytesEqual(key.publicKey, publicKey)) {
    bad(path, 'publicKey does not belong to privateKey');
  }
  if (json.address.toLowerCase() !== formatAddress(key.address)) {
    bad(path, `address does not belong to privateKey (expected ${formatAddress(key.address)})`);
  }
  return key;
}
