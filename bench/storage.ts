// bench/storage.ts — the measurement behind docs/decisions/0002-storage.md:
// which embedded engine should hold the consensus WAL and the block store.
// Side by side, in one run, on the same disk: plain files (write + fdatasync),
// LMDB through `lmdb` (synchronous, durable commits) and SQLite through
// `better-sqlite3` (WAL journal, synchronous=FULL). For each engine:
//   - WAL appends of a vote-sized record, durable before the call returns
//     (the latency that bounds a consensus step: a signature waits for it);
//   - block-store writes of ~100 KB blocks, durable before the call returns;
//   - random reads of blocks by height.
// Rounds are interleaved and the best round of each is kept, because the
// machine is shared and noisy. Prints one JSON line.
//
//   node --import tsx bench/storage.ts [--dir /path/on/the/node/disk] [--rounds 3]

import {
  closeSync,
  fdatasyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
} from 'node:fs';
import { writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { open as openLmdb } from 'lmdb';
import { createRequire } from 'node:module';
import { openWal } from '../src/node/storage/wal.ts';
import { openFileBlockStore } from '../src/node/storage/block_store.ts';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: tmpdir() },
    rounds: { type: 'string', default: '3' },
    appends: { type: 'string', default: '400' },
    blocks: { type: 'string', default: '200' },
    reads: { type: 'string', default: '20000' },
  },
});
const rounds = Number(values.rounds);
const appendCount = Number(values.appends);
const blockCount = Number(values.blocks);
const readCount = Number(values.reads);

// better-sqlite3 ships no type declarations: the little used here, typed by hand.
interface SqliteStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  pluck(): SqliteStatement;
}
interface SqliteDatabase {
  pragma(statement: string): unknown;
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  close(): void;
}
const Database = createRequire(import.meta.url)('better-sqlite3') as new (
  path: string,
) => SqliteDatabase;

const RECORD_BYTES = 200;
const BLOCK_BYTES = 100 * 1024;

function filled(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const record = filled(RECORD_BYTES, 7);
const block = filled(BLOCK_BYTES, 11);

interface Engine {
  readonly name: string;
  /** Appends `n` records, each durable before the next; returns the elapsed ns. */
  walAppends(dir: string, n: number): bigint;
  /** Saves `n` blocks at heights 1..n, each durable; returns the elapsed ns. */
  blockWrites(dir: string, n: number): bigint;
  /** Reads `reads` random heights in 1..n (after writing them); returns the elapsed ns. */
  blockReads(dir: string, n: number, reads: number): bigint;
}

function timed(run: () => void): bigint {
  const start = process.hrtime.bigint();
  run();
  return process.hrtime.bigint() - start;
}

/** Deterministic heights in 1..n (xorshift), so each engine reads the same sequence. */
function heights(n: number, count: number): number[] {
  const out: number[] = [];
  let x = 0x9e3779b9;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.push(((x >>> 0) % n) + 1);
  }
  return out;
}

// Plain files: the WAL is our record log (length, checksums, fdatasync); the
// raw variant is a bare write + fdatasync, the floor any engine pays.
const rawFile: Engine = {
  name: 'rawFile',
  walAppends(dir, n) {
    const fd = openSync(join(dir, 'raw.log'), 'a');
    const elapsed = timed(() => {
      for (let i = 0; i < n; i++) {
        writeSync(fd, record);
        fdatasyncSync(fd);
      }
    });
    closeSync(fd);
    return elapsed;
  },
  blockWrites(dir, n) {
    const fd = openSync(join(dir, 'raw-blocks.log'), 'a');
    const elapsed = timed(() => {
      for (let i = 0; i < n; i++) {
        writeSync(fd, block);
        fdatasyncSync(fd);
      }
    });
    closeSync(fd);
    return elapsed;
  },
  blockReads(dir, n, reads) {
    this.blockWrites(dir, n);
    const fd = openSync(join(dir, 'raw-blocks.log'), 'r');
    const buffer = new Uint8Array(BLOCK_BYTES);
    const order = heights(n, reads);
    const elapsed = timed(() => {
      for (const h of order) readSync(fd, buffer, 0, BLOCK_BYTES, (h - 1) * BLOCK_BYTES);
    });
    closeSync(fd);
    return elapsed;
  },
};

const files: Engine = {
  name: 'files',
  walAppends(dir, n) {
    const { wal } = openWal(join(dir, 'wal.log'));
    const elapsed = timed(() => {
      for (let i = 0; i < n; i++) wal.append(record, true);
    });
    wal.close();
    return elapsed;
  },
  blockWrites(dir, n) {
    const store = openFileBlockStore(join(dir, 'blocks'));
    const elapsed = timed(() => {
      for (let h = 1; h <= n; h++) store.save(h, block);
    });
    store.close();
    return elapsed;
  },
  blockReads(dir, n, reads) {
    this.blockWrites(dir, n);
    const store = openFileBlockStore(join(dir, 'blocks'));
    const order = heights(n, reads);
    const elapsed = timed(() => {
      for (const h of order) store.load(h);
    });
    store.close();
    return elapsed;
  },
};

function lmdbAt(path: string) {
  // overlappingSync off: the commit returns only after its fsync, as the WAL needs.
  return openLmdb<Uint8Array, number>({
    path,
    encoding: 'binary',
    keyEncoding: 'uint32',
    compression: false,
    overlappingSync: false,
  });
}

const lmdb: Engine = {
  name: 'lmdb',
  walAppends(dir, n) {
    const db = lmdbAt(join(dir, 'wal.lmdb'));
    const elapsed = timed(() => {
      for (let i = 1; i <= n; i++) db.putSync(i, record);
    });
    db.close();
    return elapsed;
  },
  blockWrites(dir, n) {
    const db = lmdbAt(join(dir, 'blocks.lmdb'));
    const elapsed = timed(() => {
      for (let h = 1; h <= n; h++) db.putSync(h, block);
    });
    db.close();
    return elapsed;
  },
  blockReads(dir, n, reads) {
    this.blockWrites(dir, n);
    const db = lmdbAt(join(dir, 'blocks.lmdb'));
    const order = heights(n, reads);
    let bytes = 0;
    const elapsed = timed(() => {
      for (const h of order) bytes += db.get(h)!.length;
    });
    db.close();
    if (bytes !== reads * BLOCK_BYTES) throw new Error('lmdb read back the wrong size');
    return elapsed;
  },
};

function sqliteAt(path: string) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  // FULL: every commit fsyncs the SQLite WAL, so a returned insert is durable.
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v BLOB NOT NULL)');
  return db;
}

const sqlite: Engine = {
  name: 'sqlite',
  walAppends(dir, n) {
    const db = sqliteAt(join(dir, 'wal.sqlite'));
    const insert = db.prepare('INSERT INTO kv (k, v) VALUES (?, ?)');
    const elapsed = timed(() => {
      for (let i = 1; i <= n; i++) insert.run(i, record);
    });
    db.close();
    return elapsed;
  },
  blockWrites(dir, n) {
    const db = sqliteAt(join(dir, 'blocks.sqlite'));
    const insert = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
    const elapsed = timed(() => {
      for (let h = 1; h <= n; h++) insert.run(h, block);
    });
    db.close();
    return elapsed;
  },
  blockReads(dir, n, reads) {
    this.blockWrites(dir, n);
    const db = sqliteAt(join(dir, 'blocks.sqlite'));
    const select = db.prepare('SELECT v FROM kv WHERE k = ?').pluck();
    const order = heights(n, reads);
    let bytes = 0;
    const elapsed = timed(() => {
      for (const h of order) bytes += (select.get(h) as Uint8Array).length;
    });
    db.close();
    if (bytes !== reads * BLOCK_BYTES) throw new Error('sqlite read back the wrong size');
    return elapsed;
  },
};

const engines = [rawFile, files, lmdb, sqlite];
type Best = { walAppendUs: number; blockWriteUs: number; blockReadUs: number };
const best = new Map<string, Best>();
for (const e of engines)
  best.set(e.name, { walAppendUs: Infinity, blockWriteUs: Infinity, blockReadUs: Infinity });

const toUs = (ns: bigint, n: number): number => Number(ns) / 1000 / n;

for (let round = 0; round < rounds; round++) {
  for (const engine of engines) {
    const dir = mkdtempSync(join(values.dir, `zomma-bench-${engine.name}-`));
    try {
      const b = best.get(engine.name)!;
      b.walAppendUs = Math.min(
        b.walAppendUs,
        toUs(engine.walAppends(dir, appendCount), appendCount),
      );
      b.blockWriteUs = Math.min(
        b.blockWriteUs,
        toUs(engine.blockWrites(dir, blockCount), blockCount),
      );
      const readDir = join(dir, 'read');
      mkdirSync(readDir);
      b.blockReadUs = Math.min(
        b.blockReadUs,
        toUs(engine.blockReads(readDir, blockCount, readCount), readCount),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const result: Record<string, unknown> = {
  bench: 'storage',
  recordBytes: RECORD_BYTES,
  blockBytes: BLOCK_BYTES,
  appends: appendCount,
  blocks: blockCount,
  reads: readCount,
  rounds,
};
const ours = best.get('files')!;
for (const [name, b] of best) {
  result[name] = {
    walAppendUs: round2(b.walAppendUs),
    walAppendsPerS: Math.round(1e6 / b.walAppendUs),
    blockWriteUs: round2(b.blockWriteUs),
    blockReadUs: round2(b.blockReadUs),
    blockReadsPerS: Math.round(1e6 / b.blockReadUs),
  };
  if (name !== 'files') {
    result[`${name}VsFiles`] = {
      walAppend: round2(b.walAppendUs / ours.walAppendUs),
      blockWrite: round2(b.blockWriteUs / ours.blockWriteUs),
      blockRead: round2(b.blockReadUs / ours.blockReadUs),
    };
  }
}
console.log(JSON.stringify(result));
