// Files under the data directory hold card data and key material (the database and its -wal/-shm, the keystore,
// the development secrets). Invariants kept here: a directory we create is 0700 and a file we create is 0600,
// whatever the umask (it can only take bits away, and mkdir/open apply it); a file other processes may read at
// the same time only ever appears whole (a private temporary file is written and synced, then renamed or
// linked into place); and a create-if-absent has exactly one winner across processes (link(2) fails with
// EEXIST for every loser, who then reads the winner's file).
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/** Creates `dir` and any missing parents 0700; a directory that already exists is left as it is. */
export function ensurePrivateDir(dir: string): void {
  const target = resolve(dir);
  const first = mkdirSync(target, { recursive: true, mode: DIR_MODE });
  if (first === undefined) return;
  // mkdir applied the umask; a umask that takes the owner's own bits would leave a directory we cannot use.
  const top = resolve(first);
  for (let d = target; ; d = dirname(d)) {
    chmodSync(d, DIR_MODE);
    if (d === top || dirname(d) === d) break;
  }
}

/**
 * Makes sure `file` exists and is 0600 before another program opens it: SQLite creates a new database file
 * 0644 less the umask, and gives its -wal and -shm files the database file's mode. An existing file is only
 * tightened (path chmod, never open/close: closing any descriptor of a file drops this process's POSIX locks
 * on it, which another SQLite connection in this process may hold).
 */
export function createPrivateFile(file: string): void {
  ensurePrivateDir(dirname(file));
  let fd: number;
  try {
    fd = openSync(file, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, FILE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    tightenFile(file);
    return;
  }
  try {
    fchmodSync(fd, FILE_MODE);
  } finally {
    closeSync(fd);
  }
}

/** Takes group and other permissions off a file that exists (an older build left its database 0644). */
export function tightenFile(file: string): void {
  const stat = statSync(file, { throwIfNoEntry: false });
  if (stat && (stat.mode & 0o077) !== 0) chmodSync(file, stat.mode & 0o700);
}

/**
 * Publishes `content` at `file` unless a file is already there. Of several processes racing to create the same
 * file exactly one wins (true); the others get false and must read the winner's file, which is already whole.
 */
export function createFileOnce(file: string, content: string): boolean {
  const tmp = writeTemporary(file, content);
  try {
    linkSync(tmp, file);
    syncDirectory(dirname(file));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Replaces `file` whole: a reader, or a crash, sees the old content or the new, never part of either. */
export function replaceFile(file: string, content: string): void {
  const tmp = writeTemporary(file, content);
  try {
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  syncDirectory(dirname(file));
}

/** A new 0600 file next to `file`, named for this process and a random suffix so racing writers never share one. */
function writeTemporary(file: string, content: string): string {
  ensurePrivateDir(dirname(file));
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, FILE_MODE);
  try {
    fchmodSync(fd, FILE_MODE);
    writeFileSync(fd, content);
    // Synced before it gets its name: after a power cut the name never points at an empty file.
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw error;
  }
  closeSync(fd);
  return tmp;
}

/** Makes a rename or link in `dir` durable; best effort (not every platform can open a directory). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // The file is already in place; only its durability across a power cut is at stake.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
