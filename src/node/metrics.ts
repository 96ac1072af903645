// The node's Prometheus metrics (prom-client) and its small HTTP listener:
// GET /metrics, GET /health (200 while the node commits blocks with the chain;
// 503 once halted, while catching up with peers that are ahead, or when no
// block came for a while), GET /status (height, appHash, peers as JSON),
// GET /chain?from=&to= (block hashes and the previous appHash each header
// carries, from the block store: what operators and the e2e tests compare
// across nodes). Every label's values come from a fixed set of codes, never
// from what a client or a peer sent.

import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { blockHashOf } from '../consensus/index.ts';
import type { DropReason } from '../consensus/index.ts';
import { shownName } from '../api/check.ts';
import { toHex } from '../lib/bytes.ts';
import { ZommaError } from '../lib/errors.ts';
import { HEALTH_NO_BLOCK_MS } from '../lib/limits.ts';
import { buildInfo } from './build_info.ts';
import { loadCommitted } from './loop.ts';
import type { ZommaNode } from './node.ts';
import type { Storage } from './storage/index.ts';
import { recordLogSyncs } from './storage/index.ts';
import type { PeerVersionRefusal, TransportCounters } from './transport/index.ts';

/** Blocks one /chain answer covers at most. */
const CHAIN_QUERY_BLOCKS_MAX = 1_000;

export interface MetricsSources {
  readonly node: ZommaNode;
  readonly storage: Storage;
  readonly peersConnected: () => number;
  readonly chainId: string;
  readonly moniker: string;
  /** The peer transport's counters (absent over an in-process network). */
  readonly transport?: () => TransportCounters;
  /** Peers refused for their versions and not connected since (absent over an in-process network). */
  readonly versionRefusals?: () => PeerVersionRefusal[];
  /**
   * No block executed for this long makes /health answer 503 (default
   * HEALTH_NO_BLOCK_MS; the runtime adds the configured commit pause).
   */
  readonly noBlockMs?: number;
  /** Wall clock, ms (tests pass their own). */
  readonly nowMs?: () => number;
}

/** Why /health answers 503. */
export type HealthProblem = 'Halted' | 'CatchingUp' | 'NotCommitting';

export interface Health {
  readonly ok: boolean;
  readonly height: number;
  readonly problems: HealthProblem[];
  /** Since the last block this node executed (or since it started, before its first). */
  readonly lastBlockMsAgo: number;
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly commitLatency: Histogram;
  private readonly execution: Histogram;
  private readonly walSync: Histogram;
  private readonly steps: Histogram;
  private readonly exchangeRejected: Counter;
  private readonly nowMs: () => number;
  private lastBlockAtMs: number;

  constructor(private readonly sources: MetricsSources) {
    const r = this.registry;
    const { node } = sources;
    const loop = node.loop;
    this.nowMs = sources.nowMs ?? Date.now;
    this.lastBlockAtMs = this.nowMs();
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(read());
        },
      });
    gauge('zomma_height', 'Last executed height', () => node.app.height);
    gauge('zomma_round', 'Current consensus round', () => loop.replica.round);
    gauge('zomma_mempool_txs', 'Transactions in the mempool', () => node.mempool.size);
    gauge('zomma_mempool_bytes', 'Bytes of transactions in the mempool', () => node.mempool.bytes);
    gauge('zomma_peers', 'Connected peers', () => sources.peersConnected());
    gauge('zomma_halted', '1 once the node has halted', () => (loop.haltReport === null ? 0 : 1));
    gauge('zomma_catching_up', '1 while fetching committed blocks of peers that are ahead', () =>
      loop.catchingUp() ? 1 : 0,
    );
    gauge(
      'zomma_signing_paused_until_height',
      'The double-sign watch: this validator signs nothing at heights up to this one (0: no pause since the node started)',
      () => loop.replica.signingPausedUntilHeight,
    );
    new Counter({
      name: 'zomma_storage_fsyncs_total',
      help: 'fdatasync calls of the WAL, block and results logs: foreground ones block the node thread, awaited ones its consensus step, background ones nothing',
      labelNames: ['where'],
      registers: [r],
      collect() {
        this.reset();
        this.inc({ where: 'foreground' }, recordLogSyncs.foreground);
        this.inc({ where: 'awaited' }, recordLogSyncs.awaited);
        this.inc({ where: 'background' }, recordLogSyncs.background);
      },
    });
    new Counter({
      name: 'zomma_txs_committed_total',
      help: 'Transactions in executed blocks',
      registers: [r],
      collect() {
        this.reset();
        this.inc(loop.stats.txsCommitted);
      },
    });
    new Counter({
      name: 'zomma_consensus_timeouts_total',
      help: 'Consensus timeouts that moved the replica on, by step (none on a healthy chain deciding in round 0)',
      labelNames: ['step'],
      registers: [r],
      collect() {
        this.reset();
        const t = loop.replica.timeoutsFired;
        this.inc({ step: 'propose' }, t.propose);
        this.inc({ step: 'prevote' }, t.prevote);
        this.inc({ step: 'precommit' }, t.precommit);
      },
    });
    new Counter({
      name: 'zomma_heights_decided_after_round0_total',
      help: 'Heights decided in a round after 0 (round 0 failed)',
      registers: [r],
      collect() {
        this.reset();
        this.inc(loop.stats.decidedAfterRound0);
      },
    });
    new Counter({
      name: 'zomma_consensus_dropped_total',
      help: 'Consensus input dropped, by reason',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        this.reset();
        const m = loop.replica.metrics;
        for (const reason of Object.keys(m) as DropReason[]) {
          if (m[reason] > 0) this.inc({ reason }, m[reason]);
        }
      },
    });
    new Counter({
      name: 'zomma_mempool_rejected_total',
      help: 'Transactions the mempool refused, by code',
      labelNames: ['code'],
      registers: [r],
      collect() {
        this.reset();
        for (const [code, n] of Object.entries(node.mempool.stats.rejected)) this.inc({ code }, n);
      },
    });
    if (sources.transport !== undefined) this.peerCounters(sources.transport);
    new Counter({
      name: 'zomma_catchup_pruned_total',
      help: 'Catch-up block requests answered pruned: sent (we pruned) and received (a peer had)',
      labelNames: ['direction'],
      registers: [r],
      collect() {
        this.reset();
        this.inc({ direction: 'sent' }, node.syncServer.stats.prunedAnswers);
        this.inc({ direction: 'received' }, node.syncServer.stats.prunedReceived);
      },
    });
    new Counter({
      name: 'zomma_sync_requests_dropped_total',
      help: "Peers' sync-channel messages this node did not serve, by reason (busy: over the budget all peers share, answered busy; damagedBlock: a stored block failed its checksum)",
      labelNames: ['reason'],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(node.syncServer.stats.dropped)) {
          if (n > 0) this.inc({ reason }, n);
        }
      },
    });
    const buckets = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000];
    this.commitLatency = new Histogram({
      name: 'zomma_commit_latency_ms',
      help: 'From entering a height to its commit, ms',
      buckets,
      registers: [r],
    });
    this.execution = new Histogram({
      name: 'zomma_block_execution_ms',
      help: 'Executing one block through the exchange, ms',
      buckets,
      registers: [r],
    });
    this.walSync = new Histogram({
      name: 'zomma_wal_fsync_ms',
      help: 'WAL fdatasync before a signed message leaves (or at a rotation), ms: every one',
      buckets: [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1_000],
      registers: [r],
    });
    this.steps = new Histogram({
      name: 'zomma_consensus_step_ms',
      help: 'Time in one consensus step of a round, ms (precommit: until its height is committed)',
      labelNames: ['step'],
      buckets,
      registers: [r],
    });
    this.exchangeRejected = new Counter({
      name: 'zomma_exchange_rejected_total',
      help: 'In executed blocks: transactions the exchange refused whole, and actions it refused, by code',
      labelNames: ['code'],
      registers: [r],
    });
    loop.onTiming((t) => {
      if (t.kind === 'walSync') this.walSync.observe(t.ms);
      else this.steps.observe({ step: t.step }, t.ms);
    });
    node.subscribe((b) => {
      this.lastBlockAtMs = this.nowMs();
      this.commitLatency.observe(loop.stats.lastCommitLatencyMs);
      this.execution.observe(b.executed.executionMs);
      for (const result of b.txs.results) {
        if (result === null) continue;
        // A transaction that ran is ok even when its actions were refused
        // (InsufficientFunds, AlreadyCredited, …): those are counted by action.
        if (result.code !== undefined) this.exchangeRejected.inc({ code: result.code });
        for (const action of result.actions) {
          if (!action.ok) this.exchangeRejected.inc({ code: action.code });
        }
      }
    });
  }

  /** What /health answers: ok while the node commits blocks with the chain. */
  health(): Health {
    const { node } = this.sources;
    const problems: HealthProblem[] = [];
    if (node.loop.haltReport !== null) problems.push('Halted');
    else if (node.loop.catchingUp()) problems.push('CatchingUp');
    const lastBlockMsAgo = Math.max(0, this.nowMs() - this.lastBlockAtMs);
    if (lastBlockMsAgo > (this.sources.noBlockMs ?? HEALTH_NO_BLOCK_MS)) {
      problems.push('NotCommitting');
    }
    return { ok: problems.length === 0, height: node.app.height, problems, lastBlockMsAgo };
  }

  private peerCounters(read: () => TransportCounters): void {
    const r = this.registry;
    new Counter({
      name: 'zomma_peer_dropped_total',
      help: 'Peer connections, frames or messages dropped by the transport, by reason',
      labelNames: ['reason'],
      registers: [r],
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(read().drops)) this.inc({ reason }, n);
      },
    });
    new Counter({
      name: 'zomma_peer_timeouts_total',
      help: 'Peer connections closed by keepalive: a ping went unanswered',
      registers: [r],
      collect() {
        this.reset();
        this.inc(read().drops.timeout);
      },
    });
    new Counter({
      name: 'zomma_peer_pings_total',
      help: 'Keepalive pings sent on idle peer connections',
      registers: [r],
      collect() {
        this.reset();
        this.inc(read().pings);
      },
    });
    new Counter({
      name: 'zomma_peer_connections_total',
      help: 'Peer connections that completed the handshake',
      registers: [r],
      collect() {
        this.reset();
        this.inc(read().connections);
      },
    });
  }

  status(): Record<string, unknown> {
    const { node } = this.sources;
    return {
      chainId: this.sources.chainId,
      moniker: this.sources.moniker,
      ...buildInfo(),
      height: node.app.height,
      appHash: toHex(node.app.appHash),
      round: node.loop.replica.round,
      peers: this.sources.peersConnected(),
      // Peers of other versions (a build not upgraded, or upgraded too early): refused.
      peersRefused: this.sources.versionRefusals?.() ?? [],
      mempoolTxs: node.mempool.size,
      halted: node.loop.haltReport,
      // Where it will stop for an upgrade (docs/operations.md, "Upgrades"), or null.
      haltHeight: node.loop.haltHeight,
    };
  }

  chain(
    from: number,
    to: number,
  ): { height: number; blockHash: string; previousAppHash: string }[] {
    const out = [];
    const last = Math.min(
      to,
      this.sources.storage.blocks.lastHeight(),
      from + CHAIN_QUERY_BLOCKS_MAX - 1,
    );
    for (let h = Math.max(1, from); h <= last; h++) {
      const stored = loadCommitted(this.sources.storage, h);
      if (stored === null) continue;
      out.push({
        height: h,
        blockHash: toHex(blockHashOf(stored.block)),
        previousAppHash: toHex(stored.block.header.previousAppHash),
      });
    }
    return out;
  }
}

export async function startMetricsServer(
  metrics: NodeMetrics,
  host: string,
  port: number,
): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    // A failed read (a damaged block, a store closed while stopping) must not
    // become an unhandled rejection, which would end the node's process.
    answer(metrics, req, res).catch((error: unknown) => {
      if (res.headersSent) return void res.destroy();
      const code = error instanceof ZommaError ? error.code : 'InternalError';
      const message = error instanceof Error ? error.message : String(error);
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code, message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      // Once listening, an 'error' is a failed accept: unhandled, it would end the process.
      server.on('error', () => {});
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  // An IPv6 address goes in brackets in a URL.
  const shown = host.includes(':') ? `[${host}]` : host;
  return { server, url: `http://${shown}:${bound}` };
}

/**
 * What a request this listener does not serve is told: most often one meant
 * for the API, which a bare code would not tell its sender.
 */
function notServed(method: string, pathname: string): { code: string; message: string } {
  return {
    code: method === 'GET' ? 'NotFound' : 'MethodNotAllowed',
    message:
      `no route ${shownName(method)} ${shownName(pathname)} here: this is a node's metrics ` +
      'listener, which serves GET /metrics, /health, /status and /chain; the API listens on ' +
      'a port of its own',
  };
}

async function answer(
  metrics: NodeMetrics,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const json = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const method = req.method ?? '';
  if (method !== 'GET') return json(405, notServed(method, url.pathname));
  switch (url.pathname) {
    case '/metrics':
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(await metrics.registry.metrics());
      return;
    case '/health': {
      const health = metrics.health();
      return json(health.ok ? 200 : 503, health);
    }
    case '/status':
      return json(200, metrics.status());
    case '/chain': {
      const from = Number(url.searchParams.get('from') ?? '1');
      const to = Number(url.searchParams.get('to') ?? String(Number.MAX_SAFE_INTEGER));
      if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 1 || to < from) {
        return json(400, { code: 'BadQuery', message: 'from and to are heights, from ≤ to' });
      }
      return json(200, metrics.chain(from, to));
    }
    default:
      return json(404, notServed(method, url.pathname));
  }
}
