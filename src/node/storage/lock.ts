// The data directory's lock: one node per directory. Two processes appending
// to one WAL would interleave records and corrupt it, so the second refuses
// to start. The lock is a file `LOCK` holding the owner's pid, created
// atomically with its content (written to a private temporary file, synced,
// then hard-linked into place: link fails if the name exists). A lock whose
// pid no longer runs is stale (the owner crashed, or was killed with -9) and
// is taken over; a lock held by another live pid is refused. Our own pid is
// refused only if this process holds the lock: otherwise an earlier process
// that had our pid left it (a node restarted in a container after a crash
// usually gets its predecessor's pid, pid 1 under `docker run`).
//
// A lock holding no pid (empty, or anything else) names no holder, so
// nothing tells whether a live process holds it: it is refused
// (StorageLockUnreadable), never taken over. None of ours looks like that:
// its content is synced before its name appears, so even a power cut leaves
// either no lock or one with a whole pid; such a file was written by
// something else, or damaged.
//
// The owner keeps the lock file open, and its identity (device and inode):
// check() tells it whether `LOCK` is still the file it linked (a data
// directory replaced under a running node takes its lock with it, and
// another node may take the new one), and release() removes only that file.
// Open, because a file deleted while nothing holds it frees its inode
// number, and the next file made (another node's lock) usually gets it.

import {
  closeSync,
  fstatSync,
  fsyncSync,
  linkSync,
  openSync,
  readSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { assert } from '../../lib/assert.ts';
import { StorageError, replacedError } from './errors.ts';

export const LOCK_FILE = 'LOCK';

/** Bytes of a lock file read: a pid and its newline many times over, and enough to show what else is there. */
const LOCK_READ_BYTES_MAX = 64;
/** Characters of an unreadable lock's content quoted in the error. */
const LOCK_QUOTED_CHARS_MAX = 32;

/** Lock paths (of real directory paths) this process holds. */
const heldHere = new Set<string>();

export interface DirLock {
  readonly path: string;
  /** The pid of the stale lock this one replaced (its process gone), or null: there was none. */
  readonly tookOverFrom: number | null;
  /** StorageReplaced unless `path` is still the lock file this process linked. */
  check(): void;
  /** Removes the lock file if it is still ours; idempotent. */
  release(): void;
}

/** Whether a process with this pid runs (EPERM: it runs under another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What a lock file holds: a pid, or what was found instead of one; null if there is no lock. */
type LockContent = { readonly pid: number } | { readonly unreadable: string } | null;

function readLock(path: string): LockContent {
  let bytes: Buffer;
  let sizeBytes: number;
  try {
    const fd = openSync(path, 'r');
    try {
      sizeBytes = fstatSync(fd).size;
      bytes = Buffer.alloc(LOCK_READ_BYTES_MAX);
      bytes = bytes.subarray(0, readSync(fd, bytes, 0, LOCK_READ_BYTES_MAX, 0));
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    return { unreadable: `cannot be read (${code ?? String(error)})` };
  }
  const text = bytes.toString('latin1');
  const digits = /^\s*([0-9]+)\s*$/.exec(text);
  const pid = digits === null ? NaN : Number(digits[1]);
  if (sizeBytes <= LOCK_READ_BYTES_MAX && Number.isSafeInteger(pid) && pid > 0) return { pid };
  if (sizeBytes === 0) return { unreadable: 'is empty' };
  const quoted = JSON.stringify(text.slice(0, LOCK_QUOTED_CHARS_MAX));
  const more = sizeBytes > LOCK_QUOTED_CHARS_MAX ? `… (${sizeBytes} bytes)` : '';
  return { unreadable: `holds ${quoted}${more}` };
}

function lockedError(path: string, pid: number): StorageError {
  return new StorageError(
    'StorageLocked',
    path,
    null,
    `the data directory is in use by process ${pid} (another node on this home?); stop it first, or delete this file if that process is not a node`,
  );
}

function unreadableError(path: string, found: string): StorageError {
  return new StorageError(
    'StorageLockUnreadable',
    path,
    null,
    `the data directory's lock ${found}, not the pid of the process holding it: nothing tells whether a node still runs on this home, so the lock is not taken over. If none does (no 'zomma node --home' for it in ps), delete this file and start again`,
  );
}

/** A file's identity: what `LOCK` is compared with (device and inode numbers, exact). */
interface FileId {
  readonly dev: bigint;
  readonly ino: bigint;
}

/** The lock file this process made: open, with its identity. */
interface OwnFile extends FileId {
  readonly fd: number;
}

/**
 * Writes this process's pid to `tmp`, durably, and returns the file still
 * open (the lock, once linked). Synced first: a lock whose name survived a
 * power cut without its content would hold no pid, and be refused at the
 * restart.
 */
function writeOwnLock(tmp: string): OwnFile {
  const fd = openSync(tmp, 'w');
  try {
    const text = Buffer.from(`${process.pid}\n`);
    let done = 0;
    while (done < text.length) done += writeSync(fd, text, done, text.length - done, done);
    fsyncSync(fd);
    const { dev, ino } = fstatSync(fd, { bigint: true });
    return { fd, dev, ino };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * Takes the lock of `dir` for this process; StorageLocked if a live process
 * holds it, StorageLockUnreadable if the lock there holds no pid.
 */
export function lockDirectory(dir: string): DirLock {
  const path = join(dir, LOCK_FILE);
  // One directory may be named by several paths.
  const key = join(realpathSync(dir), LOCK_FILE);
  const tmp = join(dir, `${LOCK_FILE}.${process.pid}.tmp`);
  const own = writeOwnLock(tmp);
  let linked = false;
  try {
    let tookOverFrom: number | null = null;
    // Two tries: the second after clearing a stale lock.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(tmp, path);
        linked = true;
        heldHere.add(key);
        return ownedLock(path, key, own, tookOverFrom);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      tookOverFrom = clearStale(path, key, dir);
    }
    const holder = readLock(path);
    if (holder !== null && 'unreadable' in holder) throw unreadableError(path, holder.unreadable);
    throw lockedError(path, holder?.pid ?? 0);
  } finally {
    if (!linked) closeSync(own.fd);
    rmSync(tmp, { force: true });
  }
}

/**
 * Removes the lock at `path` if its pid is gone, and returns that pid (null:
 * the lock was gone already). It is moved aside first and checked again
 * there, so a lock another starter took meanwhile (its fresh file moved by
 * mistake) is put back and refused, not deleted.
 */
function clearStale(path: string, key: string, dir: string): number | null {
  const found = readLock(path);
  // Gone meanwhile: the next try links.
  if (found === null) return null;
  if ('unreadable' in found) throw unreadableError(path, found.unreadable);
  if (holdsLock(found.pid, key)) throw lockedError(path, found.pid);
  const aside = join(dir, `${LOCK_FILE}.${process.pid}.stale`);
  try {
    renameSync(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const moved = readLock(aside);
  if (moved !== null && 'unreadable' in moved) {
    renameSync(aside, path);
    throw unreadableError(path, moved.unreadable);
  }
  if (moved !== null && moved.pid !== found.pid && holdsLock(moved.pid, key)) {
    renameSync(aside, path);
    throw lockedError(path, moved.pid);
  }
  unlinkSync(aside);
  return found.pid;
}

/**
 * The pid of a live process holding `dir`'s lock (this process, if it holds
 * it), or null: no lock, or one left by a process that is gone.
 * StorageLockUnreadable if the lock holds no pid (it may be held).
 */
export function lockHolder(dir: string): number | null {
  const path = join(dir, LOCK_FILE);
  const found = readLock(path);
  if (found === null) return null;
  if ('unreadable' in found) throw unreadableError(path, found.unreadable);
  let key: string;
  try {
    key = join(realpathSync(dir), LOCK_FILE);
  } catch {
    return null;
  }
  return holdsLock(found.pid, key) ? found.pid : null;
}

/** Whether the process `pid` may hold the lock `key` (heldHere). */
function holdsLock(pid: number, key: string): boolean {
  return pid === process.pid ? heldHere.has(key) : pidAlive(pid);
}

/** Null if `path` is still the lock file `own`, else what became of it. */
function lockMoved(path: string, own: OwnFile): string | null {
  if (fstatSync(own.fd, { bigint: true }).nlink === 0n) {
    return 'the lock file this node took was deleted';
  }
  const now = statSync(path, { bigint: true, throwIfNoEntry: false });
  if (now === undefined) return 'the lock file this node took is no longer at this path';
  if (now.dev !== own.dev || now.ino !== own.ino) {
    return 'another file is at this path than the lock this node took';
  }
  return null;
}

function ownedLock(path: string, key: string, own: OwnFile, tookOverFrom: number | null): DirLock {
  let held = true;
  return {
    path,
    tookOverFrom,
    check() {
      assert(held, `${path} was released`);
      const moved = lockMoved(path, own);
      if (moved !== null) throw replacedError(path, moved);
    },
    release() {
      if (!held) return;
      held = false;
      heldHere.delete(key);
      // Only the file this process linked: after its directory was replaced
      // (a backup restored under it), LOCK may be another node's, or a copy.
      let ours: boolean;
      try {
        ours = lockMoved(path, own) === null;
      } catch {
        // Cannot be looked at: left as a crash would leave it (the next start checks its pid).
        ours = false;
      }
      closeSync(own.fd);
      if (ours) rmSync(path, { force: true });
    },
  };
}
