// A model of what a crash can leave of a directory tree, for seeded crash
// drivers. While installed it wraps node:fs's writing calls (the storage's
// only way to the disk) and keeps, per file, the content its last finished
// sync made durable and the writes and cuts made since, and per directory the
// entries its last fsync made durable. Before each call that changes the disk
// it records images of what a crash there could leave:
//
//   kill      every write so far (the page cache survives a killed process);
//   power     only what syncs made durable (directory entries included);
//   torn      a kill in the middle of this write: every prefix length of it
//             (sampled for long writes);
//   mixed     seeded: each directory's entries durable or as written, each
//             file its durable content with a seeded subset of the writes
//             and cuts since, split in 512-byte sectors, applied in order,
//             its size that of the writes kept or the whole length written
//             (a hole reads as zeros: space allocated, data never written).
//
// Each image carries the driver's model (what it had acknowledged as durable
// when the call began), set with note(). Files named LOCK* are left out:
// the directory lock is advisory and has its own tests.

import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';

type Op =
  | { readonly kind: 'write'; readonly position: number; readonly bytes: Buffer }
  | { readonly kind: 'truncate'; readonly size: number };

interface Inode {
  durable: Buffer;
  pending: Op[];
}

export interface CrashImage<M> {
  readonly label: string;
  /** Path relative to the root → content. */
  readonly files: Map<string, Buffer>;
  readonly model: M;
}

const SECTOR = 512;

function apply(base: Buffer, ops: readonly Op[]): Buffer {
  let out = Buffer.from(base);
  for (const op of ops) {
    if (op.kind === 'truncate') {
      out =
        op.size <= out.length
          ? out.subarray(0, op.size)
          : Buffer.concat([out, Buffer.alloc(op.size - out.length)]);
    } else {
      const end = op.position + op.bytes.length;
      if (end > out.length) out = Buffer.concat([out, Buffer.alloc(end - out.length)]);
      op.bytes.copy(out, op.position);
    }
  }
  return Buffer.from(out);
}

/** A small seeded generator (xorshift32): the same seed, the same images. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}

export class CrashDisk<M> {
  readonly images: CrashImage<M>[] = [];
  private readonly inodes = new Map<number, Inode>();
  /** Directory path → name → inode id (-1 for a subdirectory), as written and as synced. */
  private readonly live = new Map<string, Map<string, number>>();
  private readonly synced = new Map<string, Map<string, number>>();
  private readonly fds = new Map<number, { id: number | null; dir: string | null; pos: number }>();
  private nextId = 1;
  private model: M;
  private readonly random: () => number;
  private real: Partial<typeof fs> | null = null;
  private points = 0;
  /** Mixed images per crash point. */
  mixedPerPoint = 2;
  /** Torn prefixes per write at most (both ends always). */
  tornPerWrite = 8;

  constructor(
    readonly root: string,
    model: M,
    seed: number,
  ) {
    this.model = model;
    this.random = rng(seed);
    this.scan(root);
  }

  /** Takes the tree as it is now as durable. */
  private scan(dir: string): void {
    const entries = new Map<string, number>();
    for (const name of fs.readdirSync(dir)) {
      if (name.startsWith('LOCK')) continue;
      const path = join(dir, name);
      if (fs.statSync(path).isDirectory()) {
        entries.set(name, -1);
        this.scan(path);
      } else {
        const id = this.nextId++;
        this.inodes.set(id, { durable: fs.readFileSync(path), pending: [] });
        entries.set(name, id);
      }
    }
    this.live.set(dir, entries);
    this.synced.set(dir, new Map(entries));
  }

  /** The driver's model as of now: attached to the images of later crash points. */
  note(model: M): void {
    this.model = model;
  }

  get crashPoints(): number {
    return this.points;
  }

  private inTree(path: string): boolean {
    const rel = relative(this.root, path);
    return !rel.startsWith('..') && !basename(path).startsWith('LOCK');
  }

  private idOf(path: string): number | undefined {
    return this.live.get(dirname(path))?.get(basename(path));
  }

  private files(
    dirs: 'live' | 'synced' | (() => 'live' | 'synced'),
    content: (id: number) => Buffer,
  ): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    const walk = (dir: string): void => {
      const which = typeof dirs === 'function' ? dirs() : dirs;
      const entries = (which === 'live' ? this.live : this.synced).get(dir);
      if (entries === undefined) return;
      for (const [name, id] of entries) {
        const path = join(dir, name);
        if (id === -1) {
          out.set(`${relative(this.root, path)}/`, Buffer.alloc(0));
          walk(path);
        } else {
          out.set(relative(this.root, path), content(id));
        }
      }
    };
    walk(this.root);
    return out;
  }

  private volatile(id: number): Buffer {
    const inode = this.inodes.get(id)!;
    return apply(inode.durable, inode.pending);
  }

  /** The durable content and a seeded subset of the pending writes (sectors) and cuts. */
  private mixed(id: number): Buffer {
    const inode = this.inodes.get(id)!;
    const kept: Op[] = [];
    let written = inode.durable.length;
    for (const op of inode.pending) {
      if (op.kind === 'truncate') {
        written = op.size;
        if (this.random() < 0.5) kept.push(op);
        continue;
      }
      written = Math.max(written, op.position + op.bytes.length);
      for (let at = op.position; at < op.position + op.bytes.length;) {
        const next = Math.min(
          op.position + op.bytes.length,
          (Math.floor(at / SECTOR) + 1) * SECTOR,
        );
        if (this.random() < 0.5) {
          kept.push({
            kind: 'write',
            position: at,
            bytes: op.bytes.subarray(at - op.position, next - op.position),
          });
        }
        at = next;
      }
    }
    const image = apply(inode.durable, kept);
    // The size as the kept writes leave it, or the whole length written (zeros in the holes).
    if (this.random() < 0.5 && written > image.length) {
      return Buffer.concat([image, Buffer.alloc(written - image.length)]);
    }
    return image;
  }

  private crashPoint(what: string, torn?: { id: number; position: number; bytes: Buffer }): void {
    const point = this.points++;
    const label = `#${point} before ${what}`;
    const model = this.model;
    this.images.push({
      label: `${label} (kill)`,
      files: this.files('live', (id) => this.volatile(id)),
      model,
    });
    this.images.push({
      label: `${label} (power)`,
      files: this.files('synced', (id) => this.inodes.get(id)!.durable),
      model,
    });
    if (torn !== undefined) {
      const n = torn.bytes.length;
      const cuts = new Set<number>([1, n - 1]);
      if (n <= this.tornPerWrite + 2) for (let k = 1; k < n; k++) cuts.add(k);
      else while (cuts.size < this.tornPerWrite) cuts.add(1 + Math.floor(this.random() * (n - 1)));
      for (const k of [...cuts].filter((k) => k > 0 && k < n).sort((a, b) => a - b)) {
        const files = this.files('live', (id) =>
          id === torn.id
            ? apply(this.volatile(id), [
                { kind: 'write', position: torn.position, bytes: torn.bytes.subarray(0, k) },
              ])
            : this.volatile(id),
        );
        this.images.push({ label: `${label} (torn at ${k} of ${n})`, files, model });
      }
    }
    for (let i = 0; i < this.mixedPerPoint; i++) {
      const files = this.files(
        () => (this.random() < 0.5 ? 'live' : 'synced'),
        (id) => this.mixed(id),
      );
      this.images.push({ label: `${label} (mixed ${i})`, files, model });
    }
  }

  install(): void {
    // The functions as they are, before the patch (a copy: fs's own are replaced).
    const real = { ...fs } as typeof fs;
    const patched = {
      openSync: (path: fs.PathLike, flags: fs.OpenMode, mode?: fs.Mode): number => {
        const p = String(path);
        const creating = typeof flags === 'string' && /[wa]/.test(flags);
        if (this.inTree(p) && creating) this.crashPoint(`open ${relative(this.root, p)} ${flags}`);
        const fd = real.openSync(path, flags, mode);
        if (this.inTree(p)) {
          if (real.fstatSync(fd).isDirectory()) {
            this.fds.set(fd, { id: null, dir: p, pos: 0 });
          } else {
            let id = this.idOf(p);
            if (id === undefined) {
              id = this.nextId++;
              this.inodes.set(id, { durable: Buffer.alloc(0), pending: [] });
              this.live.get(dirname(p))!.set(basename(p), id);
            } else if (typeof flags === 'string' && flags.startsWith('w')) {
              this.inodes.get(id)!.pending.push({ kind: 'truncate', size: 0 });
            }
            this.fds.set(fd, { id, dir: null, pos: 0 });
          }
        }
        return fd;
      },
      closeSync: (fd: number): void => {
        this.fds.delete(fd);
        real.closeSync(fd);
      },
      writeSync: (
        fd: number,
        buffer: Uint8Array,
        offset?: number,
        length?: number,
        position?: number,
      ): number => {
        const entry = this.fds.get(fd);
        if (entry === undefined || entry.id === null) {
          return (real.writeSync as (...a: unknown[]) => number)(
            fd,
            buffer,
            offset,
            length,
            position,
          );
        }
        const source = buffer;
        const from = typeof offset === 'number' ? offset : 0;
        const len = typeof length === 'number' ? length : source.length - from;
        const at = typeof position === 'number' ? position : entry.pos;
        const bytes = Buffer.from(source.subarray(from, from + len));
        this.crashPoint(`write ${len} at ${at}`, { id: entry.id, position: at, bytes });
        const n = (real.writeSync as (...a: unknown[]) => number)(
          fd,
          buffer,
          offset,
          length,
          position,
        );
        this.inodes.get(entry.id)!.pending.push({
          kind: 'write',
          position: at,
          bytes: bytes.subarray(0, n),
        });
        if (typeof position !== 'number') entry.pos += n;
        return n;
      },
      ftruncateSync: (fd: number, len?: number): void => {
        const entry = this.fds.get(fd);
        if (entry?.id != null) this.crashPoint(`ftruncate ${len}`);
        real.ftruncateSync(fd, len);
        if (entry?.id != null)
          this.inodes.get(entry.id)!.pending.push({ kind: 'truncate', size: len ?? 0 });
      },
      fsyncSync: (fd: number): void => {
        this.syncPoint(fd, 'fsync');
        real.fsyncSync(fd);
        this.synced_(fd);
      },
      fdatasyncSync: (fd: number): void => {
        this.syncPoint(fd, 'fdatasync');
        real.fdatasyncSync(fd);
        this.synced_(fd);
      },
      fdatasync: (fd: number, callback: fs.NoParamCallback): void => {
        this.syncPoint(fd, 'fdatasync (async)');
        const entry = this.fds.get(fd);
        const count = entry?.id != null ? this.inodes.get(entry.id)!.pending.length : 0;
        real.fdatasync(fd, (error) => {
          if (error === null && entry?.id != null) {
            const inode = this.inodes.get(entry.id)!;
            inode.durable = apply(inode.durable, inode.pending.slice(0, count));
            inode.pending = inode.pending.slice(count);
          }
          callback(error);
        });
      },
      renameSync: (from: fs.PathLike, to: fs.PathLike): void => {
        const f = String(from);
        const t = String(to);
        if (this.inTree(f)) this.crashPoint(`rename ${relative(this.root, f)}`);
        real.renameSync(from, to);
        if (this.inTree(f)) {
          const id = this.idOf(f)!;
          this.live.get(dirname(f))!.delete(basename(f));
          this.live.get(dirname(t))!.set(basename(t), id);
        }
      },
      unlinkSync: (path: fs.PathLike): void => {
        const p = String(path);
        if (this.inTree(p)) this.crashPoint(`unlink ${relative(this.root, p)}`);
        real.unlinkSync(path);
        if (this.inTree(p)) this.live.get(dirname(p))!.delete(basename(p));
      },
      rmSync: (path: fs.PathLike, options?: fs.RmOptions): void => {
        const p = String(path);
        const there = this.inTree(p) && this.idOf(p) !== undefined;
        if (there) this.crashPoint(`rm ${relative(this.root, p)}`);
        real.rmSync(path, options);
        if (there) this.live.get(dirname(p))!.delete(basename(p));
      },
      mkdirSync: (path: fs.PathLike, options?: fs.MakeDirectoryOptions): string | undefined => {
        const p = String(path);
        const made = real.mkdirSync(path, options as fs.MakeDirectoryOptions & { recursive: true });
        if (this.inTree(p) && !this.live.has(p)) {
          this.live.get(dirname(p))!.set(basename(p), -1);
          this.live.set(p, new Map());
          this.synced.set(p, new Map());
        }
        return made;
      },
    } as unknown as Partial<typeof fs>;
    this.real = Object.fromEntries(Object.keys(patched).map((k) => [k, fs[k as keyof typeof fs]]));
    Object.assign(fs, patched);
    syncBuiltinESMExports();
  }

  private syncPoint(fd: number, what: string): void {
    const entry = this.fds.get(fd);
    if (entry === undefined) return;
    this.crashPoint(`${what} ${entry.dir !== null ? relative(this.root, entry.dir) + '/' : ''}`);
  }

  private synced_(fd: number): void {
    const entry = this.fds.get(fd);
    if (entry === undefined) return;
    if (entry.dir !== null) {
      this.synced.set(entry.dir, new Map(this.live.get(entry.dir)!));
      return;
    }
    const inode = this.inodes.get(entry.id!)!;
    inode.durable = apply(inode.durable, inode.pending);
    inode.pending = [];
  }

  uninstall(): void {
    if (this.real === null) return;
    Object.assign(fs, this.real);
    syncBuiltinESMExports();
    this.real = null;
  }
}

/** Writes `image` into `dir` (emptied first). */
export function materialize(dir: string, files: Map<string, Buffer>): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const [path, bytes] of [...files].sort(([a], [b]) => a.length - b.length)) {
    if (path.endsWith('/')) fs.mkdirSync(join(dir, path), { recursive: true });
    else {
      fs.mkdirSync(dirname(join(dir, path)), { recursive: true });
      fs.writeFileSync(join(dir, path), bytes);
    }
  }
}
