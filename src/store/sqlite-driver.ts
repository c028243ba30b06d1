// The SQLite driver: one better-sqlite3 connection shared by the whole process, its statements cached by SQL
// text (least recently used evicted first), and group commit. A commit to the WAL costs more than the short
// statements of a verify (see BENCHMARKS.md), so concurrent work shares commits: the first transaction (or
// write) opens a group with BEGIN IMMEDIATE, each transaction runs in a savepoint of it, and the COMMIT is
// queued behind the units already waiting for the connection at the end of the event-loop turn (setImmediate).
// Invariants:
// - Units of work (a statement, a transaction, a `db.connection()` callback) run one at a time, in order.
// - Nothing a unit ran inside a group is answered before that group has committed, whether the unit
//   succeeded or failed: what it wrote, or read and acted on, may not outlive the group. If the COMMIT fails,
//   or SQLite ends the transaction by itself (SQLITE_FULL, SQLITE_IOERR…), every unit of the group fails, and
//   a unit whose group is lost runs no further statement (it would land in a new group).
// - A group holds the file's write lock from its BEGIN: other processes on the file (`tenants add`, `keys
//   rotate`, a second `serve` or `worker`) wait for it, and it waits for theirs (the opener's busy_timeout),
//   instead of failing. With a deferred BEGIN a group whose first statement is a read would hold only a
//   snapshot, and every write after another process's commit would fail with SQLITE_BUSY_SNAPSHOT.
// - A read while no group is open runs on its own (WAL readers never wait for a writer); a PRAGMA or VACUUM
//   never runs inside another unit's group (that group is committed first: some, like wal_checkpoint, cannot
//   run in a transaction).
// - Transactions: `db.transaction().execute(fn)` and `db.startTransaction()` (whose commit and rollback also
//   resolve only once the group has committed), savepoints through Kysely's `trx.savepoint(name)`,
//   `rollbackToSavepoint`, `releaseSavepoint`. A transaction inside a transaction, and raw BEGIN, COMMIT,
//   ROLLBACK, SAVEPOINT or RELEASE, are refused at once: they would end or unbalance the shared group.
// Inside a transaction, never await the answer of a unit started before it: that answer waits for a COMMIT
// which waits for the transaction to end.
import type SqliteDatabase from "better-sqlite3";
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from "kysely";

export interface GroupCommitOptions {
  /** Prepared statements kept (by SQL text); the least recently used is dropped first. Default 500. */
  statementCacheSize?: number;
  /** Told of every COMMIT that succeeded: how long it took and how many units shared it (the metrics). */
  onCommit?: CommitObserver;
}

export type CommitObserver = (seconds: number, units: number) => void;

export function groupCommitDialect(
  sqlite: SqliteDatabase.Database,
  options: GroupCommitOptions = {},
): Dialect {
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () =>
      new GroupCommitDriver(sqlite, options.statementCacheSize ?? STATEMENT_CACHE_SIZE, options.onCommit),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  };
}

/** Units waiting for one shared COMMIT. */
class Group {
  readonly committed: Promise<void>;
  /** Why the group was lost, once it has been. */
  failure: unknown;
  /** Units that ran statements in it. */
  units = 0;
  #settle!: (error?: unknown) => void;
  constructor() {
    this.committed = new Promise<void>((resolve, reject) => {
      this.#settle = (error) => (error === undefined ? resolve() : reject(error));
    });
    // A group nobody waits for must not surface as an unhandled rejection.
    this.committed.catch(() => {});
  }
  commit() {
    this.#settle();
  }
  fail(error: unknown) {
    this.failure = error;
    this.#settle(error);
  }
}

/** IMMEDIATE: the group takes the write lock now, waiting (busy_timeout) for another process's, see above. */
const BEGIN = "begin immediate";
const COMMIT = "commit";
const ROLLBACK = "rollback";
const UNIT_SAVEPOINT = "cardvault_unit";
const SAVEPOINT = `savepoint ${UNIT_SAVEPOINT}`;
const RELEASE = `release ${UNIT_SAVEPOINT}`;
const ROLLBACK_TO = `rollback to ${UNIT_SAVEPOINT}`;
/** Multi-row inserts make one SQL text per row count: the cache is bounded, the hot statements stay. */
const STATEMENT_CACHE_SIZE = 500;
/** Statements that act on the connection or the file, not on rows; some cannot run inside a transaction. */
const CONNECTION_STATEMENT = /^\s*(pragma|vacuum)\b/i;
/** Transaction control is the driver's own: a caller's would end or unbalance the shared group. */
const TRANSACTION_STATEMENT = /^\s*(begin|commit|end|rollback|savepoint|release)\b/i;
const NESTED_TRANSACTION =
  "A transaction cannot start inside another on the SQLite store: use savepoints (`trx.savepoint(name)`, " +
  "`rollbackToSavepoint`, `releaseSavepoint`) of a `db.startTransaction()`, or one `db.transaction().execute()`.";
const RAW_TRANSACTION_STATEMENT =
  "BEGIN, COMMIT, ROLLBACK, SAVEPOINT and RELEASE are run by the SQLite store's driver: use " +
  "`db.transaction().execute(fn)` or `db.startTransaction()` with `trx.savepoint(name)`.";

/** A statement and what the driver needs to know of it, worked out once when it is prepared. */
interface Prepared {
  statement: SqliteDatabase.Statement;
  /** A PRAGMA or VACUUM: never run inside another unit's group. */
  onConnection: boolean;
  /** BEGIN, COMMIT, SAVEPOINT…: refused from callers. */
  controlsTransaction: boolean;
}

/**
 * One unit of work: what Kysely holds between acquireConnection and releaseConnection. Its own object, so
 * that a unit that gave the connection back to wait for its group's COMMIT (a committed transaction) is told
 * apart from the one holding it now.
 */
class Unit implements DatabaseConnection {
  /** Its statements run now; no other unit's do until it lets go. */
  holding = true;
  /** The group it ran statements in since it last took the connection. */
  group: Group | undefined;
  inTransaction = false;
  released = false;
  readonly #execute: (unit: Unit, query: CompiledQuery) => Promise<QueryResult<unknown>>;
  constructor(execute: (unit: Unit, query: CompiledQuery) => Promise<QueryResult<unknown>>) {
    this.#execute = execute;
  }
  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return this.#execute(this, query) as Promise<QueryResult<R>>;
  }
  streamQuery(): never {
    throw new Error("Streaming queries are not supported by the SQLite store.");
  }
}

class GroupCommitDriver implements Driver {
  readonly #sqlite: SqliteDatabase.Database;
  /** In use order: the first key is the least recently used. */
  readonly #statements = new Map<string, Prepared>();
  readonly #statementCacheSize: number;
  #lastStatement: Prepared | undefined;
  readonly #queue: (() => void)[] = [];
  readonly #executeQuery = (unit: Unit, query: CompiledQuery) => this.#execute(unit, query);
  #locked = false;
  /** The open group: BEGIN has run and its COMMIT is scheduled. */
  #group: Group | undefined;

  readonly #onCommit: CommitObserver | undefined;

  constructor(sqlite: SqliteDatabase.Database, statementCacheSize: number, onCommit?: CommitObserver) {
    this.#sqlite = sqlite;
    this.#statementCacheSize = statementCacheSize;
    this.#onCommit = onCommit;
  }

  async init() {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#lock();
    return new Unit(this.#executeQuery);
  }

  async beginTransaction(connection: DatabaseConnection) {
    const unit = connection as Unit;
    if (unit.inTransaction) throw new Error(NESTED_TRANSACTION);
    // A db.connection() unit that committed a transaction before gave the connection back meanwhile.
    if (!unit.holding) await this.#take(unit);
    this.#assertGroupAlive(unit);
    if (!this.#group) this.#open();
    this.#join(unit);
    this.#run(SAVEPOINT);
    unit.inTransaction = true;
  }

  /**
   * Resolves once the group has committed: Kysely answers a `startTransaction()`'s commit without waiting for
   * releaseConnection. The group's COMMIT needs the connection, so the unit lets go of it first.
   */
  async commitTransaction(connection: DatabaseConnection) {
    const unit = connection as Unit;
    this.#assertGroupAlive(unit);
    this.#run(RELEASE);
    unit.inTransaction = false;
    await this.#letGo(unit);
  }

  async rollbackTransaction(connection: DatabaseConnection) {
    const unit = connection as Unit;
    if (!unit.holding) return;
    try {
      // If SQLite ended the transaction by itself, the error that did it is the one the caller sees.
      if (unit.inTransaction && this.#group && unit.group === this.#group && this.#sqlite.inTransaction) {
        this.#run(ROLLBACK_TO);
        this.#run(RELEASE);
      }
    } finally {
      unit.inTransaction = false;
      // It may have acted on what the group's earlier units wrote: answered after the COMMIT too.
      await this.#letGo(unit);
    }
  }

  async savepoint(connection: DatabaseConnection, name: string) {
    this.#savepointCommand(connection as Unit, "savepoint", name);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string) {
    this.#savepointCommand(connection as Unit, "rollback to", name);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string) {
    this.#savepointCommand(connection as Unit, "release", name);
  }

  async releaseConnection(connection: DatabaseConnection) {
    const unit = connection as Unit;
    unit.released = true;
    if (unit.inTransaction) await this.rollbackTransaction(unit);
    else if (unit.holding) await this.#letGo(unit);
  }

  /** After the units already waiting; anything queued later fails on the closed database instead of hanging. */
  async destroy() {
    await this.#lock();
    if (this.#group) this.#commit(this.#group);
    this.#sqlite.close();
    this.#unlock();
  }

  /** Gives the connection to the next unit and waits for the group this unit ran in, if any. */
  async #letGo(unit: Unit) {
    const group = unit.group;
    unit.group = undefined;
    unit.holding = false;
    this.#unlock();
    if (group) await group.committed;
  }

  async #take(unit: Unit) {
    await this.#lock();
    unit.holding = true;
  }

  #savepointCommand(unit: Unit, command: string, name: string) {
    if (!unit.inTransaction) throw new Error(`A savepoint needs an open transaction (${command} ${name}).`);
    if (name.toLowerCase() === UNIT_SAVEPOINT)
      throw new Error(`The savepoint name ${UNIT_SAVEPOINT} is reserved by the store.`);
    this.#assertGroupAlive(unit);
    this.#run(`${command} "${name.replaceAll('"', '""')}"`);
  }

  #open() {
    // Only a failed ROLLBACK after a failed COMMIT leaves a transaction open with no group: end it first.
    if (this.#sqlite.inTransaction) this.#run(ROLLBACK);
    this.#run(BEGIN);
    const group = new Group();
    this.#group = group;
    // After this turn's I/O callbacks, behind the units already waiting for the connection.
    setImmediate(() => {
      this.#lock().then(() => {
        try {
          if (this.#group === group) this.#commit(group);
        } finally {
          this.#unlock();
        }
      });
    });
  }

  /** The unit runs in the open group (if any), counted once. */
  #join(unit: Unit) {
    if (unit.group === this.#group || !this.#group) return;
    unit.group = this.#group;
    this.#group.units++;
  }

  #commit(group: Group) {
    this.#group = undefined;
    try {
      // In WAL mode the group already holds the write lock, so COMMIT does not wait for another process; if it
      // fails all the same, the group fails as a whole.
      const started = this.#onCommit ? performance.now() : 0;
      this.#run(COMMIT);
      this.#onCommit?.((performance.now() - started) / 1000, group.units);
      group.commit();
    } catch (error) {
      group.fail(error);
      // A failed COMMIT may leave the transaction open: end it so the next group starts clean.
      if (this.#sqlite.inTransaction) {
        try {
          this.#run(ROLLBACK);
        } catch {
          // The group already fails with the COMMIT's error; a next BEGIN would report this one.
        }
      }
    }
  }

  #execute(unit: Unit, query: CompiledQuery): Promise<QueryResult<unknown>> {
    if (!unit.holding) {
      if (unit.released) return Promise.reject(new Error("This connection has been released."));
      // A db.connection() unit after a committed transaction: it takes the connection again.
      return this.#take(unit).then(() => this.#execute(unit, query));
    }
    try {
      this.#assertGroupAlive(unit);
      const { statement, onConnection, controlsTransaction } = this.#prepare(query.sql);
      if (controlsTransaction) throw new Error(RAW_TRANSACTION_STATEMENT);
      if (onConnection) {
        if (this.#group && !unit.group) this.#commit(this.#group);
      } else if (!this.#group && !statement.readonly) {
        // A write outside a transaction joins a group too: a commit of its own would cost more than it does.
        this.#open();
      }
      // A statement run while a group is open sees, and may change, the group's uncommitted state.
      if (!unit.group) this.#join(unit);
      return Promise.resolve(this.#step(statement, query.parameters));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** A group cannot commit while one of its units holds the connection, so a different group means it was lost. */
  #assertGroupAlive(unit: Unit) {
    if (unit.group && unit.group !== this.#group) throw unit.group.failure;
  }

  #run(text: string): QueryResult<unknown> {
    return this.#step(this.#prepare(text).statement, []);
  }

  #step(statement: SqliteDatabase.Statement, parameters: readonly unknown[]): QueryResult<unknown> {
    try {
      if (statement.reader) return { rows: statement.all(parameters) };
      const { changes, lastInsertRowid } = statement.run(parameters);
      return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
    } catch (error) {
      // SQLite ended the transaction by itself (SQLITE_FULL, SQLITE_IOERR…): the whole group is lost.
      if (this.#group && !this.#sqlite.inTransaction) {
        const group = this.#group;
        this.#group = undefined;
        group.fail(error);
      }
      throw error;
    }
  }

  /** Statements are kept by text: preparing costs more than running the short queries of a verify. */
  #prepare(text: string): Prepared {
    let prepared = this.#statements.get(text);
    if (prepared) {
      // Most recently used last (a verify runs the same few texts in turn; moving is skipped when it is last).
      if (prepared !== this.#lastStatement) {
        this.#statements.delete(text);
        this.#statements.set(text, prepared);
        this.#lastStatement = prepared;
      }
      return prepared;
    }
    prepared = {
      statement: this.#sqlite.prepare(text),
      onConnection: CONNECTION_STATEMENT.test(text),
      controlsTransaction: TRANSACTION_STATEMENT.test(text),
    };
    if (this.#statements.size >= this.#statementCacheSize)
      this.#statements.delete(this.#statements.keys().next().value as string);
    this.#statements.set(text, prepared);
    this.#lastStatement = prepared;
    return prepared;
  }

  #lock(): Promise<void> {
    if (!this.#locked) {
      this.#locked = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#queue.push(resolve));
  }

  #unlock() {
    const next = this.#queue.shift();
    if (next) next();
    else this.#locked = false;
  }
}
