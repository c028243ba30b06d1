// Group commit, seen from a second connection to the same file: what a unit answers is committed, units of
// one turn share a commit, a unit that fails rolls back alone, and a transaction SQLite ends takes its whole
// group with it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { Kysely, sql } from "kysely";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { groupCommitDialect } from "./sqlite-driver.js";

interface Tables {
  items: { id: string; n: number };
  notes: { item_id: string };
}

const dir = mkdtempSync(join(tmpdir(), "cardvault-driver-"));
const file = join(dir, "db.sqlite");
const sqlite = new SqliteDatabase(file);
sqlite.pragma("journal_mode = WAL");
sqlite.pragma("foreign_keys = ON");
const db = new Kysely<Tables>({ dialect: groupCommitDialect(sqlite) });
await db.schema
  .createTable("items")
  .addColumn("id", "text", (c) => c.primaryKey())
  .addColumn("n", "integer", (c) => c.notNull())
  .execute();
// A deferred foreign key is checked at COMMIT: the way to make a commit itself fail.
await sql`create table notes (item_id text not null references items (id) deferrable initially deferred)`.execute(
  db,
);
/** Another connection: it sees only what has been committed. */
const observer = new SqliteDatabase(file, { readonly: true });
const committed = () =>
  (observer.prepare("select id, n from items order by id").all() as Tables["items"][]).map(
    (r) => `${r.id}=${r.n}`,
  );
afterAll(async () => {
  observer.close();
  await db.destroy();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await db.deleteFrom("notes").execute();
  await db.deleteFrom("items").execute();
});

const insert = (id: string, n = 1) =>
  db.transaction().execute((tx) => tx.insertInto("items").values({ id, n }).execute());

describe("SQLite group commit", () => {
  it("answers a transaction only once it is committed, and commits a turn's transactions together", async () => {
    const seen: string[][] = [];
    let duringGroup: string[] = ["not run"];
    await Promise.all([
      ...["a", "b", "c"].map((id) =>
        insert(id).then(() => {
          seen.push(committed());
        }),
      ),
      // A fourth unit of the same turn runs after the three: they are written but not yet committed.
      db.transaction().execute(async () => {
        duringGroup = committed();
      }),
    ]);
    expect(duringGroup).toEqual([]);
    // Each answer came after one shared commit: every caller already saw all three.
    expect(seen).toEqual([
      ["a=1", "b=1", "c=1"],
      ["a=1", "b=1", "c=1"],
      ["a=1", "b=1", "c=1"],
    ]);
  });

  it("a write outside a transaction opens a group too, instead of committing on its own", async () => {
    let seenByWrite: string[] = [];
    await Promise.all([
      db
        .insertInto("items")
        .values({ id: "a", n: 1 })
        .execute()
        .then(() => {
          seenByWrite = committed();
        }),
      insert("b"),
    ]);
    // Had it committed alone, its answer would have come before "b" was committed.
    expect(seenByWrite).toEqual(["a=1", "b=1"]);
  });

  it("rolls back a failing transaction alone; the rest of its group commits", async () => {
    const results = await Promise.allSettled([
      insert("a"),
      db.transaction().execute(async (tx) => {
        await tx.insertInto("items").values({ id: "b", n: 1 }).execute();
        await tx.insertInto("items").values({ id: "a", n: 2 }).execute(); // duplicate key
      }),
      insert("c"),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect(committed()).toEqual(["a=1", "c=1"]);
  });

  it("a read while a group is open sees its writes and answers after its commit", async () => {
    const write = insert("a", 7);
    const read = db
      .selectFrom("items")
      .select("n")
      .executeTakeFirst()
      .then((row) => ({ row, committed: committed() }));
    await write;
    expect(await read).toEqual({ row: { n: 7 }, committed: ["a=7"] });
  });

  it("runs units one at a time: a transaction that awaits keeps the others out", async () => {
    const order: string[] = [];
    await Promise.all([
      db.transaction().execute(async (tx) => {
        order.push("first begins");
        await tx.insertInto("items").values({ id: "a", n: 1 }).execute();
        await new Promise((resolve) => setTimeout(resolve, 20));
        order.push("first ends");
      }),
      db.transaction().execute(async (tx) => {
        order.push("second begins");
        await tx.updateTable("items").set({ n: 2 }).where("id", "=", "a").execute();
      }),
    ]);
    expect(order).toEqual(["first begins", "first ends", "second begins"]);
    expect(committed()).toEqual(["a=2"]);
  });

  /** Runs fn with the file unable to grow: a big enough write fails with SQLITE_FULL, which ends the transaction. */
  async function withFullDisk<T>(fn: () => Promise<T>): Promise<T> {
    const pages = sqlite.pragma("page_count", { simple: true }) as number;
    sqlite.pragma(`max_page_count = ${pages + 2}`);
    try {
      return await fn();
    } finally {
      sqlite.pragma("max_page_count = 1073741823");
    }
  }
  const big = "x".repeat(200_000);

  it("when SQLite ends the transaction by itself (SQLITE_FULL), every unit of the group fails", async () => {
    const results = await withFullDisk(() =>
      Promise.allSettled([
        insert("a"),
        db.transaction().execute((tx) => tx.insertInto("notes").values({ item_id: big }).execute()),
        insert("c"),
      ]),
    );
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "fulfilled"]);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: "SQLITE_FULL" });
    expect(committed()).toEqual(["c=1"]);
    // The store goes on: the next group commits.
    await insert("d");
    expect(committed()).toEqual(["c=1", "d=1"]);
  });

  it("a unit whose group was lost runs no further statement, even if it catches the error", async () => {
    const result = await withFullDisk(() =>
      db
        .transaction()
        .execute(async (tx) => {
          await tx.insertInto("items").values({ id: "a", n: 1 }).execute();
          await tx
            .insertInto("notes")
            .values({ item_id: big })
            .execute()
            .catch(() => {});
          await tx.insertInto("items").values({ id: "b", n: 1 }).execute();
        })
        .then(
          () => "answered",
          (error) => error.code,
        ),
    );
    expect(result).toBe("SQLITE_FULL");
    // Let any group that might have been opened after the loss commit: "b" must not be in it.
    await insert("z");
    expect(committed()).toEqual(["z=1"]);
  });

  it("a transaction that fails after reading its group's writes is answered after the commit too", async () => {
    const write = insert("a", 7);
    const failing = db
      .transaction()
      .execute(async (tx) => {
        const row = await tx.selectFrom("items").select("n").where("id", "=", "a").executeTakeFirst();
        throw new Error(`found n=${row?.n}`);
      })
      .catch((error: Error) => ({ message: error.message, committed: committed() }));
    await write;
    expect(await failing).toEqual({ message: "found n=7", committed: ["a=7"] });
  });

  it("a PRAGMA never runs inside another unit's group: the group is committed first", async () => {
    const write = insert("a");
    const { rows } = await sql<{ busy: number }>`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
    await write;
    expect(rows[0]?.busy).toBe(0);
    expect(committed()).toEqual(["a=1"]);
  });

  it("when the COMMIT fails, every unit of the group fails, nothing is kept and the next group commits", async () => {
    const results = await Promise.allSettled([
      insert("a"),
      db.transaction().execute((tx) => tx.insertInto("notes").values({ item_id: "missing" }).execute()),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({
      code: "SQLITE_CONSTRAINT_FOREIGNKEY",
    });
    expect(committed()).toEqual([]);
    await insert("b");
    expect(committed()).toEqual(["b=1"]);
  });

  it("a write outside a transaction is answered committed; a PRAGMA with no group open runs on its own", async () => {
    await db.insertInto("items").values({ id: "a", n: 1 }).execute();
    expect(committed()).toEqual(["a=1"]);
    const { rows } = await sql<{ busy: number }>`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
    expect(rows[0]?.busy).toBe(0);
  });
});
