// The SQLite driver: one better-sqlite3 connection shared by the whole process, its statements cached by SQL
// text, and group commit. A commit to the WAL costs more than the short statements of a verify (see
// BENCHMARKS.md), so concurrent work shares commits: the first transaction (or write) opens a group with
// BEGIN, each transaction runs in a savepoint of it, and the COMMIT is queued behind the units already
// waiting for the connection at the end of the event-loop turn (setImmediate).
// Invariants:
// - Units of work (a statement, a transaction, a `db.connection()` callback) run one at a time, in order.
// - Nothing a unit ran inside a group is answered before that group has committed, whether the unit
//   succeeded or failed: what it wrote, or read and acted on, may not outlive the group. If the COMMIT fails,
//   or SQLite ends the transaction by itself (SQLITE_FULL, SQLITE_IOERR…), every unit of the group fails, and
//   a unit whose group is lost runs no further statement (it would land in a new group).
// - A read while no group is open runs on its own; a PRAGMA or VACUUM never runs inside another unit's group
//   (that group is committed first: some, like wal_checkpoint, cannot run in a transaction).
// Not supported: `db.startTransaction()` (its commit would resolve before the group's) and raw BEGIN/COMMIT.
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

export function groupCommitDialect(sqlite: SqliteDatabase.Database): Dialect {
  return {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new GroupCommitDriver(sqlite),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  };
}

/** Units waiting for one shared COMMIT. */
class Group {
  readonly committed: Promise<void>;
  /** Why the group was lost, once it has been. */
  failure: unknown;
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

const BEGIN = "begin";
const COMMIT = "commit";
const ROLLBACK = "rollback";
const SAVEPOINT = "savepoint cardvault_unit";
const RELEASE = "release cardvault_unit";
const ROLLBACK_TO = "rollback to cardvault_unit";
const STATEMENT_CACHE_SIZE = 500;
/** Statements that act on the connection or the file, not on rows; some cannot run inside a transaction. */
const CONNECTION_STATEMENT = /^\s*(pragma|vacuum)\b/i;

/** A statement and what the driver needs to know of it, worked out once when it is prepared. */
interface Prepared {
  statement: SqliteDatabase.Statement;
  /** A PRAGMA or VACUUM: never run inside another unit's group. */
  onConnection: boolean;
}

class GroupCommitDriver implements Driver {
  readonly #sqlite: SqliteDatabase.Database;
  readonly #statements = new Map<string, Prepared>();
  readonly #connection: DatabaseConnection;
  readonly #queue: (() => void)[] = [];
  #locked = false;
  /** The open group: BEGIN has run and its COMMIT is scheduled. */
  #group: Group | undefined;
  /** The group the unit holding the connection ran in, if any. */
  #unitGroup: Group | undefined;

  constructor(sqlite: SqliteDatabase.Database) {
    this.#sqlite = sqlite;
    this.#connection = {
      executeQuery: <R>(query: CompiledQuery) => this.#execute<R>(query),
      streamQuery: () => {
        throw new Error("Streaming queries are not supported by the SQLite store.");
      },
    };
  }

  async init() {}

  acquireConnection(): Promise<DatabaseConnection> {
    return this.#lock().then(() => {
      this.#unitGroup = undefined;
      return this.#connection;
    });
  }

  async beginTransaction() {
    this.#assertGroupAlive();
    if (!this.#group) this.#open();
    this.#unitGroup = this.#group;
    this.#run(SAVEPOINT);
  }

  async commitTransaction() {
    this.#run(RELEASE);
  }

  async rollbackTransaction() {
    // If SQLite ended the transaction by itself, the error that did it is the one the caller sees.
    if (this.#group && this.#unitGroup === this.#group && this.#sqlite.inTransaction) {
      this.#run(ROLLBACK_TO);
      this.#run(RELEASE);
    }
  }

  async releaseConnection() {
    const group = this.#unitGroup;
    this.#unlock();
    if (group) await group.committed;
  }

  /** After the units already waiting; anything queued later fails on the closed database instead of hanging. */
  async destroy() {
    await this.#lock();
    if (this.#group) this.#commit(this.#group);
    this.#sqlite.close();
    this.#unlock();
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

  #commit(group: Group) {
    this.#group = undefined;
    try {
      this.#run(COMMIT);
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

  #execute<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      this.#assertGroupAlive();
      const { statement, onConnection } = this.#prepare(query.sql);
      if (onConnection) {
        if (this.#group && !this.#unitGroup) this.#commit(this.#group);
      } else if (!this.#group && !statement.readonly) {
        // A write outside a transaction joins a group too: a commit of its own would cost more than it does.
        this.#open();
      }
      // A statement run while a group is open sees, and may change, the group's uncommitted state.
      this.#unitGroup ??= this.#group;
      return Promise.resolve(this.#step(statement, query.parameters) as QueryResult<R>);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** A group cannot commit while one of its units holds the connection, so a different group means it was lost. */
  #assertGroupAlive() {
    if (this.#unitGroup && this.#unitGroup !== this.#group) throw this.#unitGroup.failure;
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
    if (!prepared) {
      prepared = { statement: this.#sqlite.prepare(text), onConnection: CONNECTION_STATEMENT.test(text) };
      // Bounded: multi-row inserts make one SQL text per row count.
      if (this.#statements.size >= STATEMENT_CACHE_SIZE)
        this.#statements.delete(this.#statements.keys().next().value as string);
      this.#statements.set(text, prepared);
    }
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
