// `zomma tx` against a node's API served over loopback (the in-memory read
// model): a transaction its block refused is shown, hash and code, and exits 1.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { zomma } from './helpers.ts';
import { saveKeyFile } from '../../src/crypto/index.ts';
import { PERP, key, makeView, refuseLargeOrders, serve } from '../api/fixtures.ts';
import type { SignedTx } from '../../src/exchange/tx/index.ts';
import type { MemoryView } from '../../src/api/memory.ts';
import type { TxDropCode } from '../../src/api/view.ts';
import { addressOfKey } from '../../src/api/client/index.ts';

test('a transaction refused in its block prints its hash, status and code (one JSON object with --json), exit 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const keyFile = join(dir, 'key.json');
  saveKeyFile(keyFile, key(1));
  const server = await serve(makeView({ autoCommit: true, decide: refuseLargeOrders }));
  try {
    const flags = ['--price', '199', '--node', server.url, '--key-file', keyFile];
    const human = await zomma('tx', 'order', PERP, 'buy', '1000', ...flags);
    assert.equal(human.code, 1);
    assert.equal(human.err, '');
    assert.match(human.out, /^tx +[0-9a-f]{64}$/m);
    assert.match(human.out, /^status +rejected$/m);
    assert.match(human.out, /^code +InsufficientMargin$/m);

    const json = await zomma('tx', 'order', PERP, 'buy', '1000', ...flags, '--json');
    assert.equal(json.code, 1);
    assert.equal(json.err, '');
    const view = JSON.parse(json.out) as Record<string, unknown>;
    assert.equal(view.status, 'rejected');
    assert.equal(view.code, 'InsufficientMargin');
    assert.match(String(view.hash), /^[0-9a-f]{64}$/);

    const accepted = await zomma('tx', 'order', PERP, 'buy', '5', ...flags, '--json');
    assert.equal(accepted.code, 0);
    assert.equal((JSON.parse(accepted.out) as Record<string, unknown>).status, 'committed');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a commit timeout names the transaction to look up, since it may still commit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const keyFile = join(dir, 'key.json');
  saveKeyFile(keyFile, key(1));
  const server = await serve(makeView(), { waitCommitMsMax: 1 });
  try {
    const flags = ['--price', '199', '--node', server.url, '--key-file', keyFile];
    const timedOut = await zomma('tx', 'order', PERP, 'buy', '5', ...flags);
    assert.equal(timedOut.code, 1);
    assert.match(timedOut.err, /^zomma tx: CommitTimeout: .*\(zomma query tx [0-9a-f]{64}\)\n$/);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input found before anything is sent exits 2; what the node answers after sending exits 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const keyFile = join(dir, 'key.json');
  saveKeyFile(keyFile, key(1));
  const server = await serve(makeView({ autoCommit: true, decide: refuseLargeOrders }));
  const node = ['--node', server.url];
  try {
    // A mistyped key file is not a new empty account: the path is named, and how to make one.
    const missing = join(dir, 'mistyped.json');
    for (const argv of [
      ['tx', 'faucet', '100', ...node, '--key-file', missing],
      ['tx', 'order', PERP, 'buy', '1', '--price', '199', ...node, '--key-file', missing],
      ['query', 'account', ...node, '--key-file', missing],
    ]) {
      const r = await zomma(...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, /NoKeyFile: no key file at .*mistyped\.json/);
      assert.ok(r.err.includes(`zomma keys new --out ${missing}`), r.err);
      assert.equal(existsSync(missing), false, 'no key is created at a path given on purpose');
    }
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{"type":', { mode: 0o600 });
    const badKey = await zomma('tx', 'faucet', '100', ...node, '--key-file', broken);
    assert.equal(badKey.code, 2);
    assert.match(badKey.err, /BadKeyFile/);

    const flags = [...node, '--key-file', keyFile];
    // Refused by the transaction's own rules or by the SDK's check of the route: never sent.
    const refusedHere: [string[], RegExp][] = [
      [['tx', 'order', 'btc-perp', 'buy', '1', '--price', '199', ...flags], /^zomma tx: Bad/],
      [['tx', 'cancel', PERP, '--client-id', 'x'.repeat(200), ...flags], /^zomma tx: Bad/],
      [['query', 'book', 'btc-perp', ...node], /^zomma query: BadRequest: params\/instrument/],
      [['query', 'tx', 'nothex', ...node], /^zomma query: BadRequest: params\/hash/],
    ];
    for (const [argv, message] of refusedHere) {
      const r = await zomma(...argv);
      assert.equal(r.code, 2, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
    }
    // The node's answers, and a node that cannot be reached, are 1.
    const rejected = await zomma('tx', 'order', PERP, 'buy', '1000', '--price', '199', ...flags);
    assert.equal(rejected.code, 1);
    const unknown = await zomma('query', 'book', 'ETH-PERPETUAL', ...node);
    assert.equal(unknown.code, 1);
    assert.match(unknown.err, /NotFound/);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A node that commits every transaction it is sent, each kept in `sent` in order. */
async function committingServer(): Promise<{
  server: Awaited<ReturnType<typeof serve>>;
  sent: SignedTx[];
}> {
  const sent: SignedTx[] = [];
  const server = await serve(
    makeView({
      autoCommit: true,
      decide: (tx) => {
        sent.push(tx);
        return undefined;
      },
    }),
  );
  return { server, sent };
}

test("tx deposit sends a validator's attestation of a deposit: id, address, amount and subaccount as given; bad ones refused before sending", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const keyFile = join(dir, 'key.json');
  saveKeyFile(keyFile, key(1));
  const { server, sent } = await committingServer();
  try {
    const flags = ['--node', server.url, '--key-file', keyFile];
    const id = '0x' + 'ab'.repeat(32);
    const to = '0x' + '12'.repeat(20);
    const r = await zomma('tx', 'deposit', id, to, '250.5', '3', ...flags, '--json');
    assert.equal(r.code, 0, r.err);
    assert.equal((JSON.parse(r.out) as Record<string, unknown>).status, 'committed');
    assert.equal(sent.length, 1);
    const action = sent[0]!.action;
    assert.ok(action.kind === 'attestDeposit', action.kind);
    assert.equal(Buffer.from(action.depositId).toString('hex'), 'ab'.repeat(32));
    assert.equal(Buffer.from(action.account).toString('hex'), '12'.repeat(20));
    assert.equal(action.amountQuote, 250_500_000n);
    assert.equal(action.subaccount, 3);
    // Subaccount 0 when none is named.
    const plain = await zomma('tx', 'deposit', 'cd'.repeat(32), to, '1', ...flags);
    assert.equal(plain.code, 0, plain.err);
    const second = sent[1]!.action;
    assert.ok(second.kind === 'attestDeposit' && second.subaccount === 0);
    for (const [args, message] of [
      [['abc', to, '1'], /DEPOSIT_ID must be 64 hex digits/],
      [[id, '0x12', '1'], /ADDRESS: address "0x12" must be 0x/],
      [[id, to, '0'], /DOLLARS must be positive/],
      [[id, to, '1', '256'], /TO_SUBACCOUNT/],
      [[id, to], /DOLLARS is required/],
      [[id, to, '1', '2', 'extra'], /unexpected argument 'extra'/],
    ] as const) {
      const bad = await zomma('tx', 'deposit', ...args, ...flags);
      assert.equal(bad.code, 2, bad.err);
      assert.match(bad.err, message);
    }
    assert.equal(sent.length, 2, 'nothing more was sent');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tx gov-propose and gov-vote send proposals of every kind and approvals; bad ones refused before sending', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const keyFile = join(dir, 'key.json');
  saveKeyFile(keyFile, key(1));
  const { server, sent } = await committingServer();
  try {
    const flags = ['--node', server.url, '--key-file', keyFile];
    const risk = [
      'initialMarginPpm=80000',
      'maintenanceMarginPpm=60000',
      'imfStepQuote=10000000000000',
      'imfStepPpm=10000',
      'liquidationQuoteMaxPerBlock=1000000000000',
      'priceBandPpm=none',
      'openInterestCapLots=2500',
    ];
    const r = await zomma('tx', 'gov-propose', '7', 'set-market-risk', PERP, ...risk, ...flags);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(sent[0]!.action, {
      kind: 'govPropose',
      proposalId: 7,
      proposal: {
        kind: 'setMarketRisk',
        instrument: PERP,
        risk: {
          initialMarginPpm: 80_000,
          maintenanceMarginPpm: 60_000,
          imfStepQuote: 10_000_000_000_000n,
          imfStepPpm: 10_000,
          liquidationQuoteMaxPerBlock: 1_000_000_000_000n,
          openInterestCapLots: 2_500,
        },
      },
    });
    assert.equal((await zomma('tx', 'gov-propose', '8', 'halt-market', PERP, ...flags)).code, 0);
    assert.deepEqual(sent[1]!.action, {
      kind: 'govPropose',
      proposalId: 8,
      proposal: { kind: 'haltMarket', instrument: PERP },
    });
    assert.equal((await zomma('tx', 'gov-propose', '9', 'resume-all', ...flags)).code, 0);
    assert.deepEqual(sent[2]!.action, {
      kind: 'govPropose',
      proposalId: 9,
      proposal: { kind: 'resumeAll' },
    });
    assert.equal((await zomma('tx', 'gov-vote', '7', ...flags)).code, 0);
    assert.deepEqual(sent[3]!.action, { kind: 'govVote', proposalId: 7, approve: true });
    const without = (name: string) => risk.filter((x) => !x.startsWith(`${name}=`));
    for (const [args, message] of [
      [['x', 'halt-all'], /PROPOSAL_ID/],
      [['1', 'halt'], /unknown proposal 'halt'/],
      [['1', 'halt-all', 'extra'], /unexpected argument 'extra'/],
      [['1', 'halt-market'], /INSTRUMENT is required/],
      [['1', 'set-market-risk', PERP, ...without('priceBandPpm')], /priceBandPpm=… is required/],
      [['1', 'set-market-risk', PERP, ...risk.slice(1), 'maintenanceMarginPpm=1'], /given twice/],
      [['1', 'set-market-risk', PERP, ...without('imfStepPpm'), 'imfStep=1'], /KEY=VALUE/],
      [
        ['1', 'set-market-risk', PERP, ...without('imfStepQuote'), 'imfStepQuote=0'],
        /imfStepQuote/,
      ],
      [
        ['1', 'set-market-risk', PERP, ...without('priceBandPpm'), 'priceBandPpm=1000000'],
        /priceBandPpm/,
      ],
      // A rule of the values together, the transaction's own (BadField): nothing sent.
      [
        ['1', 'set-market-risk', PERP, 'initialMarginPpm=1000', ...risk.slice(1)],
        /initialMarginPpm/,
      ],
    ] as const) {
      const bad = await zomma('tx', 'gov-propose', ...args, ...flags);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.err}`);
      assert.match(bad.err, message);
    }
    const vote = await zomma('tx', 'gov-vote', '7', '8', ...flags);
    assert.equal(vote.code, 2);
    assert.equal(sent.length, 4, 'nothing more was sent');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tx gov-propose set-fee-tiers sends the whole schedule, a tier= each; a schedule genesis would refuse is refused before sending', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const keyFile = join(dir, 'key.json');
  saveKeyFile(keyFile, key(1));
  const { server, sent } = await committingServer();
  try {
    const flags = ['--node', server.url, '--key-file', keyFile];
    const tiers = ['tier=0:200:500', 'tier=1000000000000:-100:300'];
    const r = await zomma('tx', 'gov-propose', '12', 'set-fee-tiers', ...tiers, ...flags);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(sent[0]!.action, {
      kind: 'govPropose',
      proposalId: 12,
      proposal: {
        kind: 'setFeeTiers',
        tiers: [
          { volumeQuoteMin: 0n, makerFeePpm: 200, takerFeePpm: 500 },
          { volumeQuoteMin: 1_000_000_000_000n, makerFeePpm: -100, takerFeePpm: 300 },
        ],
      },
    });
    const many = Array.from({ length: 17 }, (_, i) => `tier=${i}:0:100`);
    for (const [args, message] of [
      [['1', 'set-fee-tiers'], /tier=VOLUME:MAKER_PPM:TAKER_PPM is required/],
      [['1', 'set-fee-tiers', 'tier=0:200'], /expected tier=VOLUME:MAKER_PPM:TAKER_PPM/],
      [['1', 'set-fee-tiers', 'tier=0:2.5:500'], /expected tier=VOLUME:MAKER_PPM:TAKER_PPM/],
      [['1', 'set-fee-tiers', 'tier=0:1:-5'], /expected tier=VOLUME:MAKER_PPM:TAKER_PPM/],
      [['1', 'set-fee-tiers', '0:1:5'], /expected tier=VOLUME:MAKER_PPM:TAKER_PPM/],
      // The schedule's rules, the transaction's own checks (BadField): nothing sent.
      [['1', 'set-fee-tiers', 'tier=5:0:100'], /tiers\[0\]\.volumeQuoteMin: must be 0/],
      [['1', 'set-fee-tiers', 'tier=0:0:100', 'tier=0:0:50'], /must ascend/],
      [['1', 'set-fee-tiers', 'tier=0:0:1000001'], /takerFeePpm/],
      [['1', 'set-fee-tiers', 'tier=0:0:100', 'tier=9:-101:100'], /largest maker rebate/],
      [['1', 'set-fee-tiers', ...many], /1\.\.16 tiers/],
    ] as const) {
      const bad = await zomma('tx', 'gov-propose', ...args, ...flags);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.err}`);
      assert.match(bad.err, message);
    }
    assert.equal(sent.length, 1, 'nothing more was sent');
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a transaction sent to a node that dies before answering names its hash to look up, since it may still commit', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const keyFile = join(dir, 'key.json');
  saveKeyFile(keyFile, key(1));
  const server = await serve(makeView({ autoCommit: true }));
  // Passes every read to the node; the transaction's request is read whole,
  // then the connection is cut, as by a node that stopped holding it.
  const proxy = createHttpServer((req, res) => {
    if (req.method === 'POST') {
      req.resume();
      req.on('end', () => req.socket.destroy());
      return;
    }
    void fetch(server.url + req.url).then(async (answer) => {
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(await answer.text());
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  try {
    const cut = await zomma(
      'tx',
      'order',
      PERP,
      'buy',
      '5',
      '--price',
      '199',
      '--node',
      url,
      '--key-file',
      keyFile,
    );
    assert.equal(cut.code, 1);
    assert.match(
      cut.err,
      /^zomma tx: NodeUnreachable: cannot reach .*\(if it reached the node, it may still commit: zomma query tx [0-9a-f]{64}\)\n$/,
    );
  } finally {
    proxy.closeAllConnections();
    await new Promise<void>((resolve) => proxy.close(() => resolve()));
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A view whose mempool lets go of every admitted transaction with `code`, as
 * the re-check after a commit does, before any block holds it; `forget`: the
 * node then no longer knows it (a restart, or past VIEW_DROPPED_TXS_KEPT).
 */
function droppingView(code: TxDropCode, forget = false): MemoryView {
  const view = makeView();
  const submit = view.submit.bind(view);
  view.submit = async (bytes) => {
    const result = await submit(bytes);
    if (result.ok) {
      setImmediate(() => {
        view.drop(result.hash, code, `dropped: ${code}`);
        if (forget) (view as unknown as { txs: Map<string, unknown> }).txs.delete(result.hash);
      });
    }
    return result;
  };
  return view;
}

/** Runs `check` with the flags of an order sent to a node serving `view` with a fresh key file. */
async function againstView(
  view: MemoryView,
  check: (flags: string[], url: string) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const keyFile = join(dir, 'key.json');
  saveKeyFile(keyFile, key(1));
  const server = await serve(view);
  try {
    await check(['--price', '199', '--node', server.url, '--key-file', keyFile], server.url);
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a transaction dropped from the mempool with a code a block could give shows dropped, in no block, not rejected; exit 1', () =>
  againstView(droppingView('DuplicateNonce'), async (flags, url) => {
    const human = await zomma('tx', 'order', PERP, 'buy', '5', ...flags);
    assert.equal(human.code, 1, human.err);
    assert.equal(human.err, '');
    assert.match(human.out, /^status +dropped$/m);
    assert.match(human.out, /^block +none: this node's mempool let it go$/m);
    assert.match(human.out, /^code +DuplicateNonce$/m);
    assert.doesNotMatch(human.out, /rejected|^height/m);

    const json = await zomma('tx', 'order', PERP, 'buy', '5', ...flags, '--json');
    assert.equal(json.code, 1, json.err);
    const view = JSON.parse(json.out) as Record<string, unknown>;
    assert.equal(view.status, 'dropped');
    assert.equal(view.code, 'DuplicateNonce');
    assert.equal(view.height, undefined, 'in no block');

    const looked = await zomma('query', 'tx', String(view.hash), '--node', url);
    assert.equal(looked.code, 0, looked.err);
    assert.match(looked.out, /^status +dropped$/m);
    assert.match(looked.out, /^block +none/m);
  }));

test('a drop code the node no longer knows the transaction for is not called a rejection: the error names the hash', () =>
  againstView(droppingView('StaleNonce', true), async (flags) => {
    const r = await zomma('tx', 'order', PERP, 'buy', '5', ...flags, '--json');
    assert.equal(r.code, 1);
    assert.equal(r.out, '', 'no view is made up');
    assert.match(
      r.err,
      /^zomma tx: StaleNonce: dropped: StaleNonce \(zomma query tx [0-9a-f]{64}\)\n$/,
    );
  }));

/**
 * Runs `check` against a node that commits every transaction it is sent
 * (kept in `sent`, in order), with key files of an owner (key 1) and of an
 * agent (key 2).
 */
async function withOwnerAndAgent(
  check: (c: {
    url: string;
    ownerFile: string;
    agentFile: string;
    sent: SignedTx[];
  }) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'zomma-cli-tx-'));
  const ownerFile = join(dir, 'key.json');
  const agentFile = join(dir, 'agent.json');
  saveKeyFile(ownerFile, key(1));
  saveKeyFile(agentFile, key(2));
  const { server, sent } = await committingServer();
  try {
    await check({ url: server.url, ownerFile, agentFile, sent });
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("tx amend changes an order's price, size or both; tx agent adds and revokes an agent, which signs with --account", () =>
  withOwnerAndAgent(async ({ url, ownerFile, agentFile, sent }) => {
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const owner = ['--node', url, '--key-file', ownerFile];
    const amended = await zomma(
      'tx',
      'amend',
      PERP,
      '42',
      '--price',
      '205',
      '--size',
      '8',
      ...owner,
    );
    assert.equal(amended.code, 0, amended.err);
    const priceOnly = await zomma('tx', 'amend', PERP, '42', '--price', '206', ...owner);
    assert.equal(priceOnly.code, 0, priceOnly.err);
    assert.deepEqual(
      sent.map((t) => t.action),
      [
        { kind: 'amend', instrument: PERP, orderId: 42, priceTicks: 205, sizeLots: 8 },
        { kind: 'amend', instrument: PERP, orderId: 42, priceTicks: 206 },
      ],
    );

    const agentKey = hex(key(2).publicKey);
    const before = Date.now();
    const added = await zomma(
      'tx',
      'agent',
      'add',
      agentKey,
      '--days',
      '2',
      '--name',
      'bot',
      ...owner,
    );
    assert.equal(added.code, 0, added.err);
    const register = sent[2]!.action;
    assert.ok(register.kind === 'registerAgent', register.kind);
    assert.equal(hex(register.agentPublicKey), agentKey);
    assert.equal(register.name, 'bot');
    const day = 24 * 60 * 60 * 1000;
    assert.ok(
      register.expiresAtMs >= before + 2 * day && register.expiresAtMs <= Date.now() + 2 * day,
    );

    // The agent's key signs for the owner's account.
    const ownerAddress = addressOfKey(key(1));
    const byAgent = await zomma(
      'tx',
      'order',
      PERP,
      'buy',
      '1',
      '--price',
      '199',
      '--node',
      url,
      '--key-file',
      agentFile,
      '--account',
      ownerAddress.toUpperCase().replace('0X', '0x'),
      '--json',
    );
    assert.equal(byAgent.code, 0, byAgent.err);
    assert.deepEqual(
      (({ account, subaccount }) => ({ account, subaccount }))(
        JSON.parse(byAgent.out) as { account: string; subaccount: number },
      ),
      { account: ownerAddress, subaccount: 0 },
    );
    // The account and subaccount acted on head the transaction.
    const onFour = await zomma('tx', 'faucet', '5', '--subaccount', '4', ...owner);
    assert.equal(onFour.code, 0, onFour.err);
    assert.match(onFour.out, new RegExp(`^account ${ownerAddress} subaccount 4$`, 'm'));
    assert.equal(sent.splice(4, 1)[0]!.subaccount, 4);
    const order = sent[3]!;
    assert.equal(hex(order.account), ownerAddress.slice(2));
    assert.equal(hex(order.signer), agentKey);

    const revoked = await zomma('tx', 'agent', 'revoke', agentKey, ...owner);
    assert.equal(revoked.code, 0, revoked.err);
    assert.deepEqual(sent[4]!.action, { kind: 'revokeAgent', agentPublicKey: key(2).publicKey });

    // Refused before anything is sent.
    for (const [args, message] of [
      [['amend', PERP, '42'], /an amend changes --price TICKS, --size LOTS or both/],
      [['amend', PERP, 'x', '--size', '3'], /ORDER_ID must be an integer/],
      [['order', PERP, 'buy', '1', '--price', '199', '--size', '3'], /--size is an amend's/],
      [['agent', 'add', 'abc'], /AGENT_PUBLIC_KEY must be 64 hex digits/],
      [['agent', 'remove', agentKey], /tx agent remove: add or revoke/],
      [['agent', 'add', agentKey, '--days', '0'], /--days must be an integer in 1 … 10000/],
      [['agent', 'revoke', agentKey, '--days', '3'], /--days is an agent add's/],
      [
        ['order', PERP, 'buy', '1', '--price', '199', '--account', '0x12'],
        /--account: address "0x12"/,
      ],
    ] as const) {
      const bad = await zomma('tx', ...args, ...owner);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.err}`);
      assert.match(bad.err, message);
    }
    assert.equal(sent.length, 5, 'nothing more was sent');
  }));

test("a flag the transaction does not take is refused, and --account naming another address than the key's is refused for what only the account's own key may sign", () =>
  withOwnerAndAgent(async ({ url, ownerFile, agentFile, sent }) => {
    const third = Buffer.from(key(3).publicKey).toString('hex');
    const ownerAddress = addressOfKey(key(1));
    const agentAddress = addressOfKey(key(2));
    const node = ['--node', url];
    const asAgent = [...node, '--key-file', agentFile, '--account', ownerAddress];
    for (const [args, message] of [
      // An agent's transaction of these would only be refused in its block (NotPermitted).
      [
        ['agent', 'add', third, ...asAgent],
        /--account: tx agent is signed by the account's own key/,
      ],
      [
        ['agent', 'revoke', third, ...asAgent],
        /--account: tx agent is signed by the account's own key/,
      ],
      [['withdraw', '5', agentAddress, ...asAgent], /--account: tx withdraw is signed by/],
      [['transfer', '5', '1', ...asAgent], /--account: tx transfer is signed by/],
      [['faucet', '5', ...asAgent], /--account: tx faucet is signed by/],
      // Flags that would otherwise be silently ignored.
      [
        ['amend', PERP, '42', '--price', '5', '--client-id', 'a', ...node, '--key-file', ownerFile],
        /--client-id: tx amend does not take it/,
      ],
      [
        ['cancel', PERP, '42', '--price', '5', ...node, '--key-file', ownerFile],
        /--price: tx cancel does not take it/,
      ],
      [
        ['agent', 'add', third, '--market', ...node, '--key-file', ownerFile],
        /--market: tx agent does not take it/,
      ],
      [
        ['withdraw', '5', agentAddress, '--reduce-only', ...node, '--key-file', ownerFile],
        /--reduce-only: tx withdraw does not take it/,
      ],
      [
        ['transfer', '5', '1', '--all', ...node, '--key-file', ownerFile],
        /--all: tx transfer does not take it/,
      ],
    ] as const) {
      const bad = await zomma('tx', ...args);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.err}`);
      assert.match(bad.err, message);
    }
    assert.equal(sent.length, 0, 'nothing was sent');

    // --account naming the key's own address (any case) is the default, and may sign anything.
    const own = await zomma(
      'tx',
      'agent',
      'add',
      third,
      ...node,
      '--key-file',
      ownerFile,
      '--account',
      ownerAddress.toUpperCase().replace('0X', '0x'),
    );
    assert.equal(own.code, 0, own.err);
    assert.equal(sent.length, 1);
  }));
