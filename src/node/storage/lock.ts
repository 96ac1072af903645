// The data directory's lock: one node per directory. Two processes appending
// to one WAL would interleave records and corrupt it, so the second refuses
// to start. The lock is a file `LOCK` holding the owner's pid, created
// atomically with its content (written to a private temporary file, then
// hard-linked into place: link fails if the name exists). A lock whose pid no
// longer runs is stale (the owner crashed, or was killed with -9) and is
// taken over; a lock held by another live pid is refused. Our own pid is
// refused only if this process holds the lock: otherwise an earlier process
// that had our pid left it (a node restarted in a container after a crash
// usually gets its predecessor's pid, pid 1 under `docker run`).

import {
  linkSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { StorageError } from './errors.ts';

export const LOCK_FILE = 'LOCK';

/** Lock paths (of real directory paths) this process holds. */
const heldHere = new Set<string>();

export interface DirLock {
  readonly path: string;
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

function readPid(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function lockedError(path: string, pid: number): StorageError {
  return new StorageError(
    'StorageLocked',
    path,
    null,
    `the data directory is in use by process ${pid} (another node on this home?); stop it first, or delete this file if that process is not a node`,
  );
}

/** Takes the lock of `dir` for this process; StorageLocked if a live process holds it. */
export function lockDirectory(dir: string): DirLock {
  const path = join(dir, LOCK_FILE);
  // One directory may be named by several paths.
  const key = join(realpathSync(dir), LOCK_FILE);
  const tmp = join(dir, `${LOCK_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, `${process.pid}\n`);
  try {
    // Two tries: the second after clearing a stale lock.
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(tmp, path);
        heldHere.add(key);
        return ownedLock(path, key);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      clearStale(path, key, dir);
    }
    const holder = readPid(path);
    throw lockedError(path, holder ?? 0);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Removes the lock at `path` if its pid is gone. It is moved aside first and
 * checked again there, so a lock another starter took meanwhile (its fresh
 * file moved by mistake) is put back and refused, not deleted.
 */
function clearStale(path: string, key: string, dir: string): void {
  const holder = readPid(path);
  if (holder !== null && holdsLock(holder, key)) throw lockedError(path, holder);
  const aside = join(dir, `${LOCK_FILE}.${process.pid}.stale`);
  try {
    renameSync(path, aside);
  } catch (error) {
    // Gone meanwhile: the next try links.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = readPid(aside);
  if (moved !== null && moved !== holder && holdsLock(moved, key)) {
    renameSync(aside, path);
    throw lockedError(path, moved);
  }
  unlinkSync(aside);
}

/**
 * The pid of a live process holding `dir`'s lock (this process, if it holds
 * it), or null: no lock, or one left by a process that is gone.
 */
export function lockHolder(dir: string): number | null {
  const path = join(dir, LOCK_FILE);
  const pid = readPid(path);
  if (pid === null) return null;
  let key: string;
  try {
    key = join(realpathSync(dir), LOCK_FILE);
  } catch {
    return null;
  }
  return holdsLock(pid, key) ? pid : null;
}

/** Whether the process `pid` may hold the lock `key` (heldHere). */
function holdsLock(pid: number, key: string): boolean {
  return pid === process.pid ? heldHere.has(key) : pidAlive(pid);
}

function ownedLock(path: string, key: string): DirLock {
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      heldHere.delete(key);
      if (readPid(path) === process.pid) rmSync(path, { force: true });
    },
  };
}
