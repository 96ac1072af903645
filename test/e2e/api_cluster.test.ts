// Four validator processes on loopback, used the way clients use them: orders
// sent through the SDK to different nodes match; every node reports the same
// block (hash, appHash, per-transaction outcome) at every height; every
// transaction the API acknowledged as committed is on every node after kill -9
// and restart, with the result the API answered; bad input over HTTP
// and WebSocket (subscriptions and transaction submissions) is refused with a
// typed code and the cluster keeps working.
// One cluster serves every check (starting one is the slow part).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ZommaApiError, ZommaClient, generateKey } from '../../src/api/client/index.ts';
import type { Trader, TxView } from '../../src/api/client/index.ts';
import { toHex } from '../../src/lib/bytes.ts';
import { initCluster, kill9, startNodeProcess, until } from './helpers.ts';

const USDC = 1_000_000n;

async function httpStatus(
  url: string,
  init: RequestInit,
): Promise<{ status: number; code: string }> {
  const res = await fetch(url, init);
  const body = (await res.json()) as { code?: string };
  return { status: res.status, code: body.code ?? '' };
}

/** Every message a WebSocket receives until it closes or `count` arrived. */
function wsExchange(url: string, frames: (string | Buffer)[], count: number): Promise<unknown[]> {
  return new Promise((resolve) => {
    const got: unknown[] = [];
    const ws = new WebSocket(url);
    const done = () => {
      ws.terminate();
      resolve(got);
    };
    const timer = setTimeout(done, 5_000);
    ws.on('open', () => {
      for (const f of frames) ws.send(f);
    });
    ws.on('message', (raw) => {
      got.push(JSON.parse(raw.toString()));
      if (got.length >= count) {
        clearTimeout(timer);
        done();
      }
    });
    ws.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    ws.on('error', () => {});
  });
}

test('a four-process cluster behind its API: matching, agreement, no lost acknowledgements, bad input', async () => {
  const cluster = await initCluster(4, { commitPauseMs: 50, salt: 11 });
  const procs = cluster.homes.map((h) => startNodeProcess(h.home));
  const clients = cluster.homes.map((_, i) => new ZommaClient(cluster.apiUrl(i)));
  // What the API answered when it acknowledged each transaction as committed.
  const acked = new Map<string, TxView>();
  const ack = (tx: TxView) => acked.set(tx.hash, tx);
  const everyNodeAt = (height: number, what: string) =>
    until(
      async () => {
        const heights = await Promise.all(
          clients.map((c) =>
            c.status().then(
              (s) => s.height,
              () => -1,
            ),
          ),
        );
        return heights.every((h) => h >= height);
      },
      60_000,
      what,
    );
  try {
    await until(
      async () => {
        const heights = await Promise.all(
          clients.map((c) =>
            c.status().then(
              (s) => s.height,
              () => -1,
            ),
          ),
        );
        return heights.every((h) => h >= 2);
      },
      60_000,
      'every node commits through its API',
    );
    await until(
      async () => (await clients[0]!.ticker('BTC-PERPETUAL')).indexTicks > 0,
      30_000,
      'an index price',
    );

    // Orders through different nodes match.
    const maker = clients[0]!.trader(generateKey());
    const taker = clients[2]!.trader(generateKey());
    for (const t of [maker, taker]) {
      const tx = await t.faucet(100_000n * USDC);
      ack(tx);
    }
    const index = (await clients[1]!.ticker('BTC-PERPETUAL')).indexTicks;
    const rest = await maker.placeOrder({
      instrument: 'BTC-PERPETUAL',
      side: 'buy',
      priceTicks: index - 3,
      sizeLots: 50,
    });
    ack(rest);
    const hit = await taker.placeOrder({
      instrument: 'BTC-PERPETUAL',
      side: 'sell',
      type: 'market',
      timeInForce: 'IOC',
      sizeLots: 20,
    });
    ack(hit);
    assert.equal(hit.actions![0]!.filledLots, 20);
    await until(
      async () => ((await clients[3]!.book('BTC-PERPETUAL')).height ?? 0) >= hit.height!,
      10_000,
      'node 3 reaches the trade',
    );
    assert.deepEqual((await clients[3]!.book('BTC-PERPETUAL')).bids[0], [index - 3, 30]);
    // Node 1 serves the trade once it has executed that height too (the taker was acknowledged by another node).
    await until(
      async () =>
        (await clients[1]!.trades('BTC-PERPETUAL')).trades.some(
          (t) => t.height === hit.height && t.sizeLots === 20,
        ),
      10_000,
      'node 1 lists the trade',
    );

    // Bad input over HTTP: typed refusals.
    const url = cluster.apiUrl(1);
    const post = (body: string | Uint8Array, type = 'application/json') =>
      httpStatus(`${url}/v1/tx`, { method: 'POST', body, headers: { 'content-type': type } });
    assert.deepEqual(await post('{not json'), { status: 400, code: 'MalformedJson' });
    assert.equal((await post(JSON.stringify({ tx: 'zz' }))).code, 'BadRequest');
    assert.equal((await post(JSON.stringify({ tx: 'abcd' }))).code, 'Malformed');
    assert.equal((await post(Buffer.alloc(200_000, 1), 'application/octet-stream')).status, 413);
    const built = await taker.build({ kind: 'faucet', amountQuote: 1n });
    const forged = Uint8Array.from(built.bytes);
    forged[forged.length - 1] = forged[forged.length - 1]! ^ 0x01;
    assert.equal((await post(JSON.stringify({ tx: toHex(forged) }))).code, 'BadSignature');
    const good = await clients[1]!.submitTx(built.bytes, { wait: 'commit' });
    ack(good);
    const replay = await post(JSON.stringify({ tx: toHex(built.bytes) }));
    assert.equal(replay.code, 'DuplicateTx');
    assert.equal((await httpStatus(`${url}/v1/book/NOPE-PERPETUAL`, {})).code, 'NotFound');
    assert.equal((await httpStatus(`${url}/v1/account/0x12`, {})).code, 'BadRequest');

    // Bad input over WebSocket: error messages, then a good subscription still works.
    const ws = `${url.replace('http', 'ws')}/v1/ws`;
    const answers = (await wsExchange(
      ws,
      [
        '{garbage',
        JSON.stringify({ op: 'subscribe', channel: 'nope:1' }),
        JSON.stringify({ op: 'launch' }),
        JSON.stringify({ op: 'subscribe', channel: 'book:BTC-PERPETUAL' }),
      ],
      5,
    )) as { type: string; code?: string }[];
    assert.equal(answers.filter((a) => a.type === 'error').length, 3);
    assert.ok(answers.some((a) => a.type === 'snapshot'));
    const big = (await wsExchange(ws, [Buffer.alloc(64 * 1024, 0x20)], 1)) as unknown[];
    assert.ok(big.length <= 1, 'an oversize message closes the connection');

    // Transactions over the WebSocket, on a real node: the same typed refusals
    // as over HTTP, and a good one acknowledged like any other.
    const socket = clients[2]!.socket();
    try {
      const refused = (code: string) => (e: unknown) =>
        e instanceof ZommaApiError && e.code === code;
      const viaSocket = await taker.build({ kind: 'faucet', amountQuote: 2n });
      const forgedViaSocket = Uint8Array.from(viaSocket.bytes);
      forgedViaSocket[forgedViaSocket.length - 1] =
        forgedViaSocket[forgedViaSocket.length - 1]! ^ 1;
      await assert.rejects(socket.submitTx(forgedViaSocket), refused('BadSignature'));
      await assert.rejects(socket.submitTx(Uint8Array.from([0xab, 0xcd])), refused('Malformed'));
      const committed = await socket.submitTx(viaSocket.bytes, { wait: 'commit' });
      assert.equal(committed.status, 'committed');
      ack(committed);
      await assert.rejects(socket.submitTx(viaSocket.bytes), refused('DuplicateTx'));
    } finally {
      socket.close();
    }

    // Acknowledgements across crashes: traders on every node, kill -9 two
    // validators in turn (never two at once), restart them.
    const traders: Trader[] = clients.map((c) => c.trader(generateKey()));
    const burst = async (who: number[]) => {
      for (const i of who) {
        const tx = await traders[i]!.faucet(1_000n * USDC);
        ack(tx);
      }
    };
    await burst([0, 1, 2, 3]);
    await kill9(procs[1]!);
    await burst([0, 2, 3, 0, 2, 3]);
    procs[1] = startNodeProcess(cluster.homes[1]!.home);
    await until(
      async () =>
        (await clients[1]!.status().then(
          (s) => s.height,
          () => -1,
        )) >= 1,
      30_000,
      'node 1 serves again',
    );
    await kill9(procs[0]!);
    await burst([1, 2, 3]);
    procs[0] = startNodeProcess(cluster.homes[0]!.home);
    const topAcked = () => Math.max(...[...acked.values()].map((t) => t.height ?? -1));
    await everyNodeAt(topAcked(), 'every node past the last acknowledged height');
    await burst([0, 1]);
    // A node answers for a height once it has committed it (before, a
    // transaction gossiped to it is pending there): every node must reach the
    // last acknowledgement's height before they are checked.
    await everyNodeAt(topAcked(), 'every node past the last acknowledgement');

    // Every node, the two restarted ones included, answers with the same result
    // the API gave when it acknowledged the transaction: status, height,
    // position and per-action outcome (fills too).
    for (const [i, c] of clients.entries()) {
      for (const [hash, answered] of acked) {
        const tx = await c.tx(hash);
        assert.equal(tx.status, 'committed', `node ${i}: ${hash}`);
        assert.deepEqual(tx, answered, `node ${i}: the result of ${hash}`);
      }
    }

    // The same appHash at every height on every node (the API's blocks, and the metrics chain).
    // A block's signers and round come from its canonical certificate, the
    // next block's lastCommit; below every node's tip all of them hold it.
    const agreed = Math.min(
      ...(await Promise.all(clients.map((c) => c.status()))).map((s) => s.height),
    );
    await everyNodeAt(agreed + 1, 'every node past the compared heights');
    for (let h = 1; h <= agreed; h++) {
      const hashes = new Set(
        await Promise.all(clients.map((c) => c.block(h).then((b) => JSON.stringify(b)))),
      );
      assert.equal(hashes.size, 1, `height ${h}: ${[...hashes].join('\n')}`);
    }
  } finally {
    for (const p of procs)
      if (p.child.exitCode === null && p.child.signalCode === null) await kill9(p);
    cluster.remove();
  }
});
