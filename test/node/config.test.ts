import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, parseHostPort, validateConfig } from '../../src/node/config.ts';
import {
  CATCHUP_SERVE_TOTAL_BYTES_PER_S,
  CATCHUP_SERVE_TOTAL_MIB_PER_S_MAX,
  CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN,
  CONFIG_FILE_BYTES_MAX,
  SYNC_SERVE_TOTAL_REQUESTS_PER_S_MAX,
  SYNC_SERVE_TOTAL_REQUESTS_PER_S_MIN,
} from '../../src/lib/limits.ts';
import type { NodeConfig } from '../../src/node/config.ts';
import { NodeError } from '../../src/node/errors.ts';

const BASE = {
  listen: '127.0.0.1:0',
  peers: [{ publicKey: 'ab'.repeat(32), address: '127.0.0.1:26656' }],
  stateSync: true,
};
const HASH = 'c0ffee'.padEnd(64, '0');
const refusedAt = (field: string) => (e: unknown) =>
  e instanceof NodeError && e.code === 'ConfigInvalid' && e.field === field;

test('config.trustedBlock: a height and a block hash, read back as saved; absent is genesis trust', () => {
  assert.equal(validateConfig(BASE).trustedBlock, null);
  assert.equal(validateConfig({ ...BASE, trustedBlock: null }).trustedBlock, null);
  const c = validateConfig({ ...BASE, trustedBlock: { height: 4_200, hash: HASH.toUpperCase() } });
  assert.deepEqual(c.trustedBlock, { height: 4_200, hash: HASH });
  assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(c)) as NodeConfig), c);
});

test('config.trustedBlock errors name the field', () => {
  const bad: [unknown, string][] = [
    ['4200', 'config.trustedBlock'],
    [{ height: 4_200 }, 'config.trustedBlock.hash'],
    [{ height: 4_200, hash: 'zz'.repeat(32) }, 'config.trustedBlock.hash'],
    [{ height: 4_200, hash: `0x${HASH.slice(2)}` }, 'config.trustedBlock.hash'],
    [{ height: 4_200, hash: HASH.slice(2) }, 'config.trustedBlock.hash'],
    [{ height: 4_200, hash: `${HASH}00` }, 'config.trustedBlock.hash'],
    [{ height: 0, hash: HASH }, 'config.trustedBlock.height'],
    [{ height: -3, hash: HASH }, 'config.trustedBlock.height'],
    [{ height: 1.5, hash: HASH }, 'config.trustedBlock.height'],
    [{ height: 2 ** 53, hash: HASH }, 'config.trustedBlock.height'],
    [{ height: '42', hash: HASH }, 'config.trustedBlock.height'],
    [{ height: 42, hash: HASH, extra: 1 }, 'config.trustedBlock.extra'],
  ];
  for (const [trustedBlock, field] of bad) {
    assert.throws(() => validateConfig({ ...BASE, trustedBlock }), refusedAt(field), field);
  }
  assert.throws(
    () => validateConfig({ ...BASE, stateSync: false, trustedBlock: { height: 42, hash: HASH } }),
    refusedAt('config.trustedBlock'),
  );
});

test('config.checkInvariants: a boolean, absent is off; anything else names the field', () => {
  assert.equal(validateConfig(BASE).checkInvariants, undefined);
  assert.equal(validateConfig({ ...BASE, checkInvariants: true }).checkInvariants, true);
  assert.equal(validateConfig({ ...BASE, checkInvariants: false }).checkInvariants, undefined);
  for (const bad of ['yes', 1, 'true']) {
    assert.throws(
      () => validateConfig({ ...BASE, checkInvariants: bad }),
      refusedAt('config.checkInvariants'),
    );
  }
});

test('config.haltHeight: an integer height of at least 1, read back as saved; absent or null is none; anything else names the field', () => {
  assert.equal(validateConfig(BASE).haltHeight, undefined);
  assert.equal(validateConfig({ ...BASE, haltHeight: null }).haltHeight, undefined);
  for (const height of [1, 48_200, Number.MAX_SAFE_INTEGER]) {
    const c = validateConfig({ ...BASE, haltHeight: height });
    assert.equal(c.haltHeight, height);
    assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(c)) as NodeConfig), c);
  }
  for (const bad of [0, -1, 1.5, 2 ** 53, '42', true, [42], { height: 42 }]) {
    assert.throws(
      () => validateConfig({ ...BASE, haltHeight: bad }),
      refusedAt('config.haltHeight'),
      JSON.stringify(bad),
    );
  }
});

test('config.syncServeTotalRequestsPerS: an integer rate within its bounds, read back as saved; absent is the default; anything else names the field', () => {
  assert.equal(validateConfig(BASE).syncServeTotalRequestsPerS, undefined);
  assert.ok(!('syncServeTotalRequestsPerS' in validateConfig(BASE)), 'absent stays absent');
  for (const rate of [
    SYNC_SERVE_TOTAL_REQUESTS_PER_S_MIN,
    250,
    SYNC_SERVE_TOTAL_REQUESTS_PER_S_MAX,
  ]) {
    const c = validateConfig({ ...BASE, syncServeTotalRequestsPerS: rate });
    assert.equal(c.syncServeTotalRequestsPerS, rate);
    assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(c)) as NodeConfig), c);
  }
  for (const bad of [
    0,
    SYNC_SERVE_TOTAL_REQUESTS_PER_S_MIN - 1,
    SYNC_SERVE_TOTAL_REQUESTS_PER_S_MAX + 1,
    12.5,
    '100',
    null,
  ]) {
    assert.throws(
      () => validateConfig({ ...BASE, syncServeTotalRequestsPerS: bad }),
      refusedAt('config.syncServeTotalRequestsPerS'),
      JSON.stringify(bad),
    );
  }
});

test('config.catchupServeTotalMiBPerS: an integer rate within its bounds, read back as saved; absent is the default; anything else names the field', () => {
  assert.ok(!('catchupServeTotalMiBPerS' in validateConfig(BASE)), 'absent stays absent');
  for (const rate of [
    CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN,
    CATCHUP_SERVE_TOTAL_BYTES_PER_S / (1024 * 1024),
    CATCHUP_SERVE_TOTAL_MIB_PER_S_MAX,
  ]) {
    const c = validateConfig({ ...BASE, catchupServeTotalMiBPerS: rate });
    assert.equal(c.catchupServeTotalMiBPerS, rate);
    assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(c)) as NodeConfig), c);
  }
  for (const bad of [
    0,
    CATCHUP_SERVE_TOTAL_MIB_PER_S_MIN - 1,
    CATCHUP_SERVE_TOTAL_MIB_PER_S_MAX + 1,
    64.5,
    '144',
    null,
  ]) {
    assert.throws(
      () => validateConfig({ ...BASE, catchupServeTotalMiBPerS: bad }),
      refusedAt('config.catchupServeTotalMiBPerS'),
      JSON.stringify(bad),
    );
  }
});

test('config.json is sized in bytes before it is read: past CONFIG_FILE_BYTES_MAX it is refused as too large', () => {
  const home = mkdtempSync(join(tmpdir(), 'zomma-config-'));
  try {
    // Fewer characters than the limit, more bytes (three per €): too large all the same.
    const text = JSON.stringify({ x: '€'.repeat(Math.ceil(CONFIG_FILE_BYTES_MAX / 3) + 10) });
    assert.ok(text.length < CONFIG_FILE_BYTES_MAX, 'under the limit in characters');
    writeFileSync(join(home, 'config.json'), text);
    assert.throws(
      () => loadConfig(home),
      (e: unknown) =>
        e instanceof NodeError && e.code === 'ConfigInvalid' && /too large/.test(e.message),
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('a home without config.json is refused with what to do, not a bare ENOENT', () => {
  const home = mkdtempSync(join(tmpdir(), 'zomma-config-'));
  try {
    assert.throws(
      () => loadConfig(join(home, 'missing')),
      (e: unknown) =>
        e instanceof NodeError &&
        e.code === 'ConfigInvalid' &&
        /config\.json does not exist: is --home a node's home\? `zomma init` writes one/.test(
          e.message,
        ) &&
        !/ENOENT/.test(e.message),
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('config: listen, api and metrics each need an address of their own; a port 0 or another host may repeat', () => {
  const on = (o: Record<string, string>) => validateConfig({ ...BASE, ...o });
  assert.throws(
    () => on({ listen: '127.0.0.1:26656', api: '127.0.0.1:26656' }),
    refusedAt('config.api'),
  );
  assert.throws(
    () => on({ listen: '127.0.0.1:26656', api: '127.0.0.1:1317', metrics: '0.0.0.0:1317' }),
    refusedAt('config.metrics'),
  );
  assert.throws(
    () => on({ listen: '[::]:26656', metrics: '127.0.0.1:26656' }),
    refusedAt('config.metrics'),
  );
  on({ listen: '127.0.0.1:0', api: '127.0.0.1:0', metrics: '127.0.0.1:0' });
  on({ listen: '127.0.0.1:26656', api: '127.0.0.2:26656' });
  on({ listen: '127.0.0.1:26656', api: '127.0.0.1:1317', metrics: '127.0.0.1:9464' });
});

test('config: an IPv6 address is written in brackets and reaches the sockets without them; a host with a stray colon or bracket names the field', () => {
  assert.deepEqual(parseHostPort('[::1]:26656', 'config.listen'), { host: '::1', port: 26656 });
  assert.deepEqual(parseHostPort('[::]:0', 'config.listen'), { host: '::', port: 0 });
  assert.deepEqual(parseHostPort('127.0.0.1:26656', 'config.listen'), {
    host: '127.0.0.1',
    port: 26656,
  });
  validateConfig({
    ...BASE,
    listen: '[::1]:26656',
    peers: [{ ...BASE.peers[0], address: '[::1]:26657' }],
  });
  for (const [field, o] of [
    ['config.listen', { listen: 'a:b:26656' }],
    ['config.listen', { listen: '[:26656' }],
    ['config.listen', { listen: '[]:26656' }],
    ['config.api', { api: '[not-v6]:26657' }],
    ['config.metrics', { metrics: '[::1:26658' }],
    ['config.peers[0].address', { peers: [{ ...BASE.peers[0], address: '[10.0.0.1]:26656' }] }],
  ] as const) {
    assert.throws(() => validateConfig({ ...BASE, ...o }), refusedAt(field), JSON.stringify(o));
  }
});

test('config: a field whose absence means a default refuses null, naming it (null "validator" is no full node); the fields that take null still do', () => {
  for (const name of [
    'moniker',
    'validator',
    'snapshotEveryHeights',
    'snapshotsKept',
    'commitPauseMs',
    'proposeWaitMs',
    'logLevel',
    'checkInvariants',
    'stateSync',
    'blocksKept',
    'syncServeTotalRequestsPerS',
    'catchupServeTotalMiBPerS',
  ]) {
    assert.throws(
      () => validateConfig({ ...BASE, [name]: null }),
      (e: unknown) =>
        refusedAt(`config.${name}`)(e) && (e as Error).message.includes('leave it out'),
      name,
    );
  }
  const c = validateConfig({
    ...BASE,
    api: null,
    metrics: null,
    oracle: null,
    timeouts: null,
    apiLimits: null,
    trustedBlock: null,
    haltHeight: null,
  });
  assert.equal(c.api, null);
  assert.equal(c.validator, true);
});

test('config.timeouts.maxMs below a base timeout and one round of growth is refused: the cap would keep that timeout from growing with the round', () => {
  const timeouts = { proposeMs: 3_000, prevoteMs: 1_000, precommitMs: 1_000, deltaMs: 500 };
  assert.equal(
    validateConfig({ ...BASE, timeouts: { ...timeouts, maxMs: 3_500 } }).timeouts?.maxMs,
    3_500,
  );
  // 3,000: the cap equal to the base, which never grows.
  for (const maxMs of [3_499, 3_000, 2_999, 1_000, 1]) {
    assert.throws(
      () => validateConfig({ ...BASE, timeouts: { ...timeouts, maxMs } }),
      refusedAt('config.timeouts.maxMs'),
      String(maxMs),
    );
  }
  assert.throws(
    () =>
      validateConfig({
        ...BASE,
        timeouts: { ...timeouts, proposeMs: 100, precommitMs: 5_000, maxMs: 4_000 },
      }),
    refusedAt('config.timeouts.maxMs'),
    'precommitMs above the cap',
  );
});
