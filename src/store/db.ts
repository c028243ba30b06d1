// Opens the store and keeps its schema current. SQLite (better-sqlite3, WAL) is the embedded default; the
// dialect is chosen here and nowhere else, so repositories are the same code on every database.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { Kysely, Migrator, SqliteDialect, sql } from "kysely";
import { latestMigration, migrationProvider } from "./migrations/index.js";
import type { Database } from "./schema.js";

export type Db = Kysely<Database>;

export interface Store {
  db: Db;
  /** Runs fn in one transaction: every change a service makes commits or rolls back together. */
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function openSqliteStore(file: string): Store {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  const sqlite = new SqliteDatabase(file);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("busy_timeout = 5000");
  sqlite.pragma("foreign_keys = ON");
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  return {
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

export type SchemaState = "current" | "behind" | "ahead";

/** Compares the applied migrations with the ones this build knows, so serve can refuse a mismatch. */
export async function schemaState(db: Db): Promise<SchemaState> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const migrations = await migrator.getMigrations();
  if (migrations.some((m) => m.executedAt === undefined)) return "behind";
  const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
  return applied.rows.some((r) => r.name > latestMigration) ? "ahead" : "current";
}
