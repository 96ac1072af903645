// What `zomma init` writes: validator and full-node homes whose configs load,
// whose peers let every connection through the transport's key check, and
// `--add-full-node` on an existing network.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { command } from '../../src/cli/commands/init.ts';
import { loadKeyFile } from '../../src/crypto/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { HOME_FILES, loadConfig, loadGenesis } from '../../src/node/config.ts';
import { NodeError } from '../../src/node/errors.ts';
import { addFullNode, initNetwork } from '../../src/node/init.ts';
import { tempDir } from './helpers.ts';

const GENESIS_TIME_MS = 1_700_000_000_000;

function keyOf(home: string): string {
  return toHex(loadKeyFile(join(home, HOME_FILES.key)).publicKey);
}

function configError(field: string): (error: unknown) => boolean {
  return (error) =>
    error instanceof NodeError && error.code === 'ConfigInvalid' && error.field === field;
}

test('validators and full nodes: keys, genesis, peers both ways, distinct ports', () => {
  const tmp = tempDir('zomma-init-');
  try {
    const { genesis, homes, fullNodes } = initNetwork({
      validators: 3,
      fullNodes: 2,
      out: tmp.dir,
      basePort: 40_000,
      genesisTimeMs: GENESIS_TIME_MS,
      oracleSeed: 7,
    });
    assert.equal(homes.length, 3);
    assert.equal(fullNodes.length, 2);
    assert.deepEqual(
      genesis.validators.map((v) => toHex(v.publicKey)),
      homes.map((h) => h.publicKey),
      'only validators are in the genesis',
    );
    const all = [...homes, ...fullNodes];
    const ports = all.flatMap((h) => [h.peer, h.api, h.metrics]);
    assert.equal(new Set(ports).size, ports.length);
    for (const h of all) {
      assert.equal(keyOf(h.home), h.publicKey);
      assert.equal(statSync(join(h.home, HOME_FILES.key)).mode & 0o077, 0, 'key is private');
      assert.ok(existsSync(join(h.home, HOME_FILES.data)));
      assert.equal(loadGenesis(h.home).chainId, genesis.chainId);
    }
    homes.forEach((h, i) => {
      const c = loadConfig(h.home);
      assert.equal(c.validator, true);
      assert.deepEqual(c.oracle, { seed: 7, index: i });
      assert.deepEqual(
        c.peers,
        all.filter((o) => o !== h).map((o) => ({ publicKey: o.publicKey, address: o.peer })),
        'a validator lists every other validator and every full node',
      );
    });
    fullNodes.forEach((h, j) => {
      assert.equal(h.home, join(tmp.dir, `full-node-${j}`));
      const c = loadConfig(h.home);
      assert.equal(c.validator, false);
      assert.equal(c.oracle, null);
      assert.equal(c.stateSync, false, 'started with the network, it replays from height 1');
      assert.equal(c.listen, h.peer);
      assert.deepEqual(
        c.peers,
        homes.map((v) => ({ publicKey: v.publicKey, address: v.peer })),
      );
    });
  } finally {
    tmp.remove();
  }
});

test('separate hosts: validators first, then full nodes, all on the same ports', () => {
  const tmp = tempDir('zomma-init-');
  try {
    const { homes, fullNodes } = initNetwork({
      validators: 2,
      fullNodes: 1,
      hosts: ['10.0.0.1', '10.0.0.2', 'full.example.org'],
      out: tmp.dir,
      genesisTimeMs: GENESIS_TIME_MS,
    });
    assert.deepEqual(
      homes.map((h) => h.peer),
      ['10.0.0.1:26656', '10.0.0.2:26656'],
    );
    assert.equal(fullNodes[0]!.peer, 'full.example.org:26656');
    assert.equal(fullNodes[0]!.metrics, 'full.example.org:26658');
  } finally {
    tmp.remove();
  }
});

test('separate hosts by IPv6 address, bare or in brackets: written in brackets, and each config loads with the address its sockets take', () => {
  const tmp = tempDir('zomma-init-');
  try {
    const { homes } = initNetwork({
      validators: 2,
      hosts: ['2001:db8::1', '[2001:DB8:0:0::2]'],
      out: tmp.dir,
      genesisTimeMs: GENESIS_TIME_MS,
    });
    assert.deepEqual(
      homes.map((h) => [h.peer, h.api]),
      [
        ['[2001:db8::1]:26656', '[2001:db8::1]:26657'],
        ['[2001:db8::2]:26656', '[2001:db8::2]:26657'],
      ],
    );
    const config = loadConfig(homes[0]!.home);
    assert.equal(config.listen, '[2001:db8::1]:26656');
    assert.deepEqual(
      config.peers.map((p) => p.address),
      ['[2001:db8::2]:26656'],
    );
  } finally {
    tmp.remove();
  }
});

test('bad options are refused with the field named, before anything is written', () => {
  const tmp = tempDir('zomma-init-');
  const out = join(tmp.dir, 'net');
  const base = { validators: 2, out, genesisTimeMs: GENESIS_TIME_MS };
  try {
    assert.throws(() => initNetwork({ ...base, fullNodes: -1 }), configError('--full-nodes'));
    assert.throws(() => initNetwork({ ...base, fullNodes: 1.5 }), configError('--full-nodes'));
    assert.throws(() => initNetwork({ ...base, fullNodes: 256 }), configError('--full-nodes'));
    assert.throws(
      () => initNetwork({ ...base, fullNodes: 1, hosts: ['a', 'b'] }),
      configError('--hosts'),
    );
    assert.throws(
      () => initNetwork({ ...base, fullNodes: 1, hosts: ['a', 'b', 'c d'] }),
      configError('--hosts[2]'),
    );
    assert.throws(
      () => initNetwork({ ...base, fullNodes: 100, basePort: 65_400 }),
      configError('--base-port'),
    );
    // Every node on a host listens on the same three ports: two on one host cannot both start.
    assert.throws(
      () => initNetwork({ ...base, hosts: ['10.0.0.1', '10.0.0.1'] }),
      configError('--hosts[1]'),
    );
    assert.throws(
      () => initNetwork({ ...base, fullNodes: 1, hosts: ['a.example', 'b', 'A.example'] }),
      configError('--hosts[2]'),
    );
    // One host by two spellings: a final dot, or two forms of one IPv6 address.
    assert.throws(
      () => initNetwork({ ...base, hosts: ['10.0.0.1', '10.0.0.1.'] }),
      configError('--hosts[1]'),
    );
    assert.throws(
      () => initNetwork({ ...base, hosts: ['::1', '[0:0:0:0:0:0:0:1]'] }),
      configError('--hosts[1]'),
    );
    for (const bad of ['[10.0.0.1]', '1::2::3', '[a.example]', 'a:b']) {
      assert.throws(
        () => initNetwork({ ...base, hosts: ['10.0.0.9', bad] }),
        configError('--hosts[1]'),
        bad,
      );
    }
    assert.equal(existsSync(out), false);
  } finally {
    tmp.remove();
  }
});

test('an existing home is never written over, and nothing is written when one exists', () => {
  const tmp = tempDir('zomma-init-');
  const out = join(tmp.dir, 'net');
  const base = { validators: 3, out, genesisTimeMs: GENESIS_TIME_MS };
  try {
    initNetwork(base);
    const before = readFileSync(join(out, 'validator-1', HOME_FILES.genesis), 'utf8');
    assert.throws(() => initNetwork(base), configError('--out'));
    // A running home whose key was moved away (to a backup) keeps its genesis and config too.
    rmSync(join(out, 'validator-0'), { recursive: true });
    renameSync(join(out, 'validator-2', HOME_FILES.key), join(tmp.dir, 'key-backup.json'));
    const config2 = readFileSync(join(out, 'validator-2', HOME_FILES.config), 'utf8');
    assert.throws(() => initNetwork(base), configError('--out'));
    assert.equal(existsSync(join(out, 'validator-0')), false, 'nothing written');
    assert.equal(readFileSync(join(out, 'validator-1', HOME_FILES.genesis), 'utf8'), before);
    assert.equal(readFileSync(join(out, 'validator-2', HOME_FILES.config), 'utf8'), config2);
    assert.equal(existsSync(join(out, 'validator-2', HOME_FILES.key)), false);
  } finally {
    tmp.remove();
  }
});

test('adding a full node to a network: peers with the validators, state-syncs, validators list it', () => {
  const tmp = tempDir('zomma-init-');
  try {
    const { homes, fullNodes } = initNetwork({
      validators: 3,
      fullNodes: 1,
      out: tmp.dir,
      basePort: 41_000,
      genesisTimeMs: GENESIS_TIME_MS,
      snapshotEveryHeights: 7,
      commitPauseMs: 30,
    });
    const { home, updated } = addFullNode({ network: tmp.dir });
    assert.equal(home.home, join(tmp.dir, 'full-node-1'));
    assert.equal(home.peer, '127.0.0.1:41012', 'the next ports after the last node');
    assert.equal(keyOf(home.home), home.publicKey);
    assert.deepEqual(
      updated,
      homes.map((h) => h.home),
    );
    const c = loadConfig(home.home);
    assert.equal(c.validator, false);
    assert.equal(c.stateSync, true);
    assert.equal(c.snapshotEveryHeights, 7, 'settings follow the validators');
    assert.equal(c.commitPauseMs, 30);
    assert.deepEqual(
      c.peers,
      homes.map((v) => ({ publicKey: v.publicKey, address: v.peer })),
    );
    assert.deepEqual(
      readFileSync(join(home.home, HOME_FILES.genesis)),
      readFileSync(join(homes[0]!.home, HOME_FILES.genesis)),
    );
    for (const v of homes) {
      const peers = loadConfig(v.home).peers;
      assert.deepEqual(peers.at(-1), { publicKey: home.publicKey, address: home.peer });
      assert.equal(peers.length, 2 + 1 + 1);
    }
    // The earlier full node is untouched.
    assert.equal(loadConfig(fullNodes[0]!.home).peers.length, 3);

    const second = addFullNode({ network: tmp.dir, stateSync: false });
    assert.equal(second.home.home, join(tmp.dir, 'full-node-2'));
    assert.equal(loadConfig(second.home.home).stateSync, false);
  } finally {
    tmp.remove();
  }
});

test('adding a full node: refusals', () => {
  const tmp = tempDir('zomma-init-');
  try {
    assert.throws(
      () => addFullNode({ network: join(tmp.dir, 'missing') }),
      configError('--network'),
    );
    assert.throws(() => addFullNode({ network: tmp.dir }), configError('--network'));
    initNetwork({
      validators: 2,
      hosts: ['10.0.0.1', '10.0.0.2'],
      out: tmp.dir,
      genesisTimeMs: GENESIS_TIME_MS,
    });
    assert.throws(() => addFullNode({ network: tmp.dir }), configError('--host'));
    assert.throws(
      () => addFullNode({ network: tmp.dir, host: '10.0.0.1', basePort: 26_655 }),
      configError('--base-port'),
    );
    assert.throws(() => addFullNode({ network: tmp.dir, host: 'a b' }), configError('--host'));
    assert.equal(existsSync(join(tmp.dir, 'full-node-0')), false, 'nothing written');
    const { home } = addFullNode({ network: tmp.dir, host: '10.0.0.9' });
    assert.equal(home.peer, '10.0.0.9:26656');
  } finally {
    tmp.remove();
  }
});

test('the init command writes full nodes and adds one', async () => {
  const tmp = tempDir('zomma-init-');
  const lines: string[] = [];
  const io = { out: (t: string) => void lines.push(t), err: (t: string) => void lines.push(t) };
  try {
    const args = ['--validators', '2', '--full-nodes', '1', '--out', tmp.dir, '--json'];
    assert.equal(await command.run([...args, '--base-port', '42000'], io), 0);
    const written = JSON.parse(lines.at(-1)!) as { homes: unknown[]; fullNodes: unknown[] };
    assert.equal(written.homes.length, 2);
    assert.equal(written.fullNodes.length, 1);
    assert.equal(await command.run(['--add-full-node', '--network', tmp.dir], io), 0);
    assert.match(lines.join('\n'), /full-node-1/);
    await assert.rejects(command.run(['--add-full-node'], io), /--network/);
    await assert.rejects(
      command.run(['--validators', '2', '--full-nodes', 'x', '--out', tmp.dir], io),
      /--full-nodes/,
    );
  } finally {
    tmp.remove();
  }
});

test('the init command writes the trusted block state sync starts from', async () => {
  const tmp = tempDir('zomma-init-');
  const io = { out: () => {}, err: () => {} };
  const hash = 'AB'.repeat(32);
  try {
    initNetwork({ validators: 2, out: tmp.dir, basePort: 43_000, genesisTimeMs: GENESIS_TIME_MS });
    const add = (...more: string[]) =>
      command.run(['--add-full-node', '--network', tmp.dir, '--json', ...more], io);
    assert.equal(await add('--trust-height', '1200', '--trust-hash', hash), 0);
    const c = loadConfig(join(tmp.dir, 'full-node-0'));
    assert.deepEqual(c.trustedBlock, { height: 1200, hash: hash.toLowerCase() });
    await assert.rejects(add('--trust-height', '1200'), /go together/);
    // Each refusal names the flag the user typed, not the config field it becomes.
    await assert.rejects(add('--trust-height', '0', '--trust-hash', hash), {
      name: 'UsageError',
      message: /^--trust-height must be a height of at least 1/,
    });
    await assert.rejects(add('--trust-height', '5', '--trust-hash', 'abcd'), {
      name: 'UsageError',
      message: /^--trust-hash must be the block hash as 64 hex digits/,
    });
    await assert.rejects(add('--trust-height', '5', '--trust-hash', 'xyz!'.repeat(16)), {
      name: 'UsageError',
      message: /^--trust-hash/,
    });
    await assert.rejects(add('--trust-height', '5', '--trust-hash', hash, '--no-state-sync'), {
      name: 'UsageError',
      message: /not with --no-state-sync/,
    });
    await assert.rejects(
      command.run(['--validators', '2', '--out', tmp.dir, '--trust-height', '5'], io),
      /--add-full-node/,
    );
    assert.equal(existsSync(join(tmp.dir, 'full-node-1')), false, 'nothing written on a refusal');
  } finally {
    tmp.remove();
  }
});
