// Opens the store and keeps its schema current. SQLite (better-sqlite3, WAL) is the embedded default and
// PostgreSQL (pg pool) serves several processes; the dialect is chosen here and nowhere else, so
// repositories are the same code on every database. `kind` lets a repository pick a dialect-only clause
// (FOR UPDATE SKIP LOCKED) in one place. On SQLite the transactions of one event-loop turn share a commit
// (sqlite-driver.ts); a transaction is still answered only once it is committed.
import SqliteDatabase from "better-sqlite3";
import {
  Kysely,
  type LogEvent,
  Migrator,
  PostgresDialect,
  type PostgresPool,
  type PostgresPoolClient,
  sql,
} from "kysely";
import pg from "pg";
import { createPrivateFile, tightenFile } from "../lib/private-files.js";
import { latestMigration, migrationProvider } from "./migrations/index.js";
import { namedStatementOf } from "./prepared.js";
import type { Database } from "./schema.js";
import { type CommitObserver, groupCommitDialect } from "./sqlite-driver.js";
import { type Answer, writeBehind } from "./write-behind.js";

export type Db = Kysely<Database>;

export type StoreKind = "sqlite" | "postgres";

export interface Store {
  kind: StoreKind;
  db: Db;
  /** Runs fn in one transaction: every change a service makes commits or rolls back together. */
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** `onCommit` is told of every COMMIT (its duration, and how many units shared it): the metrics. */
export function openSqliteStore(file: string, onCommit?: CommitObserver): Store {
  if (file !== ":memory:" && file !== "") {
    // The database holds card data: created 0600 (in a 0700 directory) before SQLite opens it, as SQLite
    // would create it 0644 and gives the -wal and -shm files it creates the database file's mode. Files an
    // older build left readable by others are tightened.
    createPrivateFile(file);
    tightenFile(`${file}-wal`);
    tightenFile(`${file}-shm`);
  }
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma("journal_mode = WAL");
  // FULL: every COMMIT is on disk before its answer. NORMAL in WAL mode may forget the last commits on a power
  // cut, and with them counted wrong tries (the brute-force defence). Group commit shares one sync among the
  // transactions of a turn; the cost is in BENCHMARKS.md ("synchronous = FULL").
  sqlite.pragma("synchronous = FULL");
  // Checkpoint every ~40 MB of WAL instead of every ~4 MB: the pages the authorisation path rewrites all the
  // time (counters, the audit tail, rate-limit rows) are then copied back once per checkpoint, not once per
  // few hundred requests. The file is cut back to 64 MB after each checkpoint.
  sqlite.pragma("wal_autocheckpoint = 10000");
  sqlite.pragma("journal_size_limit = 67108864");
  // RETURNING (counters, rate limits) buffers its rows in a temporary table: in memory, not in a temporary file
  // (the default) that is opened and closed for every statement (BENCHMARKS.md, "temp_store = MEMORY").
  sqlite.pragma("temp_store = MEMORY");
  sqlite.pragma("busy_timeout = 5000");
  sqlite.pragma("foreign_keys = ON");
  return storeOf("sqlite", new Kysely<Database>({ dialect: groupCommitDialect(sqlite, { onCommit }) }));
}

export interface PostgresOptions {
  poolSize: number;
  statementTimeoutMs: number;
  connectionTimeoutMs: number;
}

export function openPostgresStore(url: string, options: PostgresOptions, onCommit?: CommitObserver): Store {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize,
    connectionTimeoutMillis: options.connectionTimeoutMs,
    statement_timeout: options.statementTimeoutMs,
    // A statement may be sent before the answer to the one before it has come (write-behind.ts).
    pipeline: true,
  });
  // A client that loses its connection emits "error" (on the pool when idle, on the client otherwise);
  // without listeners that would crash the process. The query in flight fails (503) and the pool
  // reconnects on its own.
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  // Kysely's PostgreSQL driver commits with a plain COMMIT query, which its query log times (with the writes
  // that wait for it, write-behind.ts, sent in the same round trip); the log is only installed when observed
  // (Kysely skips its timing otherwise).
  const log = onCommit
    ? (event: LogEvent) => {
        if (event.level === "query" && event.query.sql === "commit")
          onCommit(event.queryDurationMillis / 1000, 1);
      }
    : undefined;
  return storeOf(
    "postgres",
    new Kysely<Database>({ dialect: new PostgresDialect({ pool: namingPool(pool) }), log }),
  );
}

/**
 * The pool as Kysely sees it, with the hot path's fixed texts (prepared.ts) sent as named statements: pg parses
 * and plans a named statement once per connection, then only binds and runs it (a query config with `name`,
 * https://node-postgres.com/features/queries#prepared-statements). Inside a transaction, what nobody waits for
 * goes out with the next statement that is answered (write-behind.ts). Everything else goes through unchanged.
 */
function namingPool(pool: pg.Pool): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      // A named statement whose table changed shape since it was parsed (a migration run while this process
      // serves) fails with "cached plan must not change result type" (0A000) on this connection for good: the
      // connection is then closed on release, and its successor parses the statements anew.
      let stale = false;
      const send = async (text: string, values: unknown[]): Promise<Answer> => {
        const name = namedStatementOf(text)?.name;
        if (name === undefined) return client.query(text, values);
        try {
          return await client.query({ name, text, values });
        } catch (error) {
          if ((error as { code?: string }).code === "0A000") stale = true;
          throw error;
        }
      };
      const stream = client.connection.stream;
      const batch = <T>(fn: () => T): T => {
        stream.cork();
        try {
          return fn();
        } finally {
          stream.uncork();
        }
      };
      const writes = writeBehind({ send, batch }, namedStatementOf);
      return {
        query: writes.query as unknown as PostgresPoolClient["query"],
        // Writes still waiting belong to a transaction that never ended: the connection goes with them.
        release: (destroy?: boolean) => client.release(destroy || stale || writes.waiting > 0),
      };
    },
    end: () => pool.end(),
  };
}

function storeOf(kind: StoreKind, db: Db): Store {
  return {
    kind,
    db,
    transaction: (fn) => db.transaction().execute(fn),
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}

export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/** Both stores' codes for a write a unique index refused (SQLite's extended codes, PostgreSQL's SQLSTATE). */
const UNIQUE_VIOLATION = new Set(["SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY", "23505"]);

/** Whether a store error is a unique index refusing a write (a value already taken), on either store. */
export function isUniqueViolation(error: unknown): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    UNIQUE_VIOLATION.has(String((error as { code?: unknown }).code))
  );
}

export type SchemaState = "current" | "behind" | "ahead";

/** The database's schema does not match this build; the message says what to do. */
export class SchemaError extends Error {}

/**
 * Makes sure the schema is the one this build knows. `migrate: true` applies pending migrations (the
 * embedded store, and `cardvault migrate`); otherwise a pending migration is refused. A schema newer than
 * this build is always refused: an older build must not write to it.
 */
export async function ensureSchema(db: Db, options: { migrate: boolean }): Promise<string[]> {
  const state = await schemaState(db);
  if (state === "ahead") {
    throw new SchemaError(
      "The database schema is newer than this build of cardvault; upgrade cardvault before serving.",
    );
  }
  if (state === "behind") {
    if (!options.migrate)
      throw new SchemaError("The database schema is not up to date: run `cardvault migrate` first.");
    return migrateToLatest(db);
  }
  return [];
}

/** Compares the applied migrations with the ones this build knows, so serve can refuse a mismatch. */
export async function schemaState(db: Db): Promise<SchemaState> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const migrations = await migrator.getMigrations();
  if (migrations.some((m) => m.executedAt === undefined)) return "behind";
  const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
  return applied.rows.some((r) => r.name > latestMigration) ? "ahead" : "current";
}
