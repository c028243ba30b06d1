// An exclusive lock across processes for the read-modify-write steps on a shared file (the keystore: create,
// add missing key types, rotate, retire). Node has no flock(2); SQLite's POSIX advisory locks do the same job:
// BEGIN EXCLUSIVE on an empty database file that is never written. The invariant it keeps: the kernel drops the
// lock when its holder exits or is killed, so a process that dies half-way never leaves a stale lock that
// wedges the next start, and no pid file or age guess is needed. The lock file stays (deleting a lock file
// while another process waits on it would let two holders in) and, like every file here, is 0600.
import SqliteDatabase from "better-sqlite3";
import { createPrivateFile } from "./private-files.js";

/** Another process held the lock for longer than the wait allowed. */
export class LockTimeoutError extends Error {}

/** Long enough for a holder generating RSA keys on a busy machine; a live holder rarely takes a second. */
const DEFAULT_WAIT_MS = 60_000;

/** Runs `fn` while holding the lock `lockFile` (waiting up to `waitMs` for another holder). */
export function withFileLock<T>(lockFile: string, fn: () => T, options: { waitMs?: number } = {}): T {
  const waitMs = options.waitMs ?? DEFAULT_WAIT_MS;
  createPrivateFile(lockFile);
  // SQLite's busy handler retries the lock with short sleeps until the timeout: the wait blocks this thread,
  // which is what the synchronous callers (start-up, CLI commands) want anyway.
  const db = new SqliteDatabase(lockFile, { timeout: waitMs });
  try {
    try {
      db.exec("BEGIN EXCLUSIVE");
    } catch (error) {
      if ((error as { code?: string }).code === "SQLITE_BUSY") {
        throw new LockTimeoutError(
          `Another process has held ${lockFile} for over ${Math.round(waitMs / 1000)} s; is a cardvault command stuck?`,
        );
      }
      throw error;
    }
    try {
      return fn();
    } finally {
      db.exec("ROLLBACK");
    }
  } finally {
    db.close();
  }
}
