// Group commit, seen from a second connection to the same file: what a unit answers is committed, units of
// one turn share a commit, a unit that fails rolls back alone, and a transaction SQLite ends takes its whole
// group with it.
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import SqliteDatabase from "better-sqlite3";
import { Kysely, sql } from "kysely";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { openSqliteStore } from "./db.js";
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

/**
 * Another process writing to the same file, on a thread of its own: its busy waits (better-sqlite3 sleeps in
 * SQLite's busy handler) must not block this event loop, or a lock it waits for could never be released.
 */
class SecondWriter {
  readonly #worker: Worker;
  #replies: ((reply: WriterReply) => void)[] = [];
  constructor(path: string) {
    this.#worker = new Worker(
      `const { parentPort, workerData } = require("node:worker_threads");
       const Database = require(workerData.module);
       const db = new Database(workerData.path, { timeout: 5000 });
       const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
       parentPort.on("message", ({ op, sql, ms }) => {
         try {
           if (op === "write") db.prepare(sql).run();
           if (op === "hold") {
             // Takes the write lock, says so, keeps it for ms, then commits.
             db.prepare("begin immediate").run();
             parentPort.postMessage({ ok: true, locked: true });
             pause(ms);
             db.prepare(sql).run();
             db.prepare("commit").run();
           }
           if (op === "close") db.close();
           parentPort.postMessage({ ok: true });
         } catch (error) {
           parentPort.postMessage({ ok: false, code: error.code });
         }
       });`,
      { eval: true, workerData: { module: createRequire(import.meta.url).resolve("better-sqlite3"), path } },
    );
    this.#worker.on("message", (reply: WriterReply) => this.#replies.shift()?.(reply));
  }
  #next(): Promise<WriterReply> {
    return new Promise((resolve) => this.#replies.push(resolve));
  }
  /** Resolves once the write has committed (or failed). */
  write(text: string): Promise<WriterReply> {
    const reply = this.#next();
    this.#worker.postMessage({ op: "write", sql: text });
    return reply;
  }
  /** Resolves `locked` once the lock is taken, `done` once the write is committed and the lock released. */
  hold(ms: number, text: string): { locked: Promise<WriterReply>; done: Promise<WriterReply> } {
    const locked = this.#next();
    const done = this.#next();
    this.#worker.postMessage({ op: "hold", sql: text, ms });
    return { locked, done };
  }
  async close() {
    const reply = this.#next();
    this.#worker.postMessage({ op: "close" });
    await reply;
    await this.#worker.terminate();
  }
}
interface WriterReply {
  ok: boolean;
  code?: string;
  locked?: boolean;
}

describe("SQLite group commit beside another process writing to the file", () => {
  let other: SecondWriter;
  let seq = 0;
  beforeAll(async () => {
    other = new SecondWriter(file);
    // Started and connected before any test counts on it.
    expect(await other.write("create table if not exists ping (x)")).toEqual({ ok: true });
  });
  afterAll(() => other.close());
  const otherInsert = () => `insert into items (id, n) values ('other-${++seq}', 0)`;
  /** A transaction whose first statement is a read, then a write: what the rotation scheduler's claim does. */
  const readThenWrite = (id: string) =>
    db.transaction().execute(async (tx) => {
      await tx.selectFrom("items").select("id").execute();
      await tx.insertInto("items").values({ id, n: 1 }).execute();
    });

  it("a group whose first statement is a read keeps its writes when the other process commits meanwhile", async () => {
    let otherCommit: Promise<WriterReply> | undefined;
    const results = await Promise.allSettled([
      db.transaction().execute(async (tx) => {
        await tx.selectFrom("items").select("id").execute();
        // The other process writes while the group is open (and, with BEGIN IMMEDIATE, waits for it).
        otherCommit = other.write(otherInsert());
        // Until it has committed (the old deferred BEGIN let it), or long enough to be sure it waits.
        await Promise.race([otherCommit, new Promise((resolve) => setTimeout(resolve, 100))]);
      }),
      insert("a"),
      readThenWrite("b"),
    ]);
    expect(
      results.map((r) => (r.status === "rejected" ? (r.reason as { code?: string }).code : "ok")),
    ).toEqual(["ok", "ok", "ok"]);
    expect(await otherCommit).toEqual({ ok: true });
    expect(committed()).toEqual(["a=1", "b=1", "other-1=0"]);
  });

  it("groups that begin with a read, under a stream of the other process's commits: no failures", async () => {
    let stop = false;
    let otherCommits = 0;
    const writer = (async () => {
      while (!stop) {
        expect(await other.write(otherInsert())).toEqual({ ok: true });
        otherCommits++;
      }
    })();
    const failures: string[] = [];
    let units = 0;
    const deadline = Date.now() + 400;
    for (let round = 0; Date.now() < deadline; round++) {
      const results = await Promise.allSettled([
        readThenWrite(`r${round}`),
        insert(`w${round}`),
        db.transaction().execute((tx) => tx.selectFrom("items").select("id").limit(1).execute()),
        insert(`x${round}`),
      ]);
      units += results.length;
      for (const r of results)
        if (r.status === "rejected") failures.push((r.reason as { code?: string }).code ?? "?");
      // Let the other process in between groups too.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    stop = true;
    await writer;
    expect(otherCommits).toBeGreaterThan(5);
    expect(units).toBeGreaterThan(20);
    expect(failures).toEqual([]);
  });

  it("a group waits for the other process's write lock instead of failing", async () => {
    const { locked, done } = other.hold(200, otherInsert());
    expect(await locked).toEqual({ ok: true, locked: true });
    const started = performance.now();
    const results = await Promise.allSettled([readThenWrite("a"), insert("b")]);
    const waited = performance.now() - started;
    expect(
      results.map((r) => (r.status === "rejected" ? (r.reason as { code?: string }).code : "ok")),
    ).toEqual(["ok", "ok"]);
    expect(await done).toEqual({ ok: true });
    expect(waited).toBeGreaterThan(100);
    expect(committed()).toEqual(["a=1", "b=1", `other-${seq}=0`]);
  });
});

describe("SQLite controlled transactions and savepoints", () => {
  it("db.startTransaction(): commit resolves only once the group has committed, beside the group's other units", async () => {
    const trx = await db.startTransaction().execute();
    await trx.insertInto("items").values({ id: "a", n: 1 }).execute();
    const other = insert("b"); // waits for the connection, then joins the next group
    await trx.commit().execute();
    expect(committed()).toContain("a=1");
    await other;
    expect(committed()).toEqual(["a=1", "b=1"]);
  });

  it("db.startTransaction(): a rollback keeps nothing of its own, and its group's other units commit", async () => {
    const a = insert("a"); // opens the group the controlled transaction joins
    const trx = await db.startTransaction().execute();
    await trx.insertInto("items").values({ id: "b", n: 1 }).execute();
    await trx.rollback().execute();
    expect(committed()).toEqual(["a=1"]);
    await a;
    await insert("c");
    expect(committed()).toEqual(["a=1", "c=1"]);
  });

  it("savepoints of a controlled transaction roll back and release through Kysely's API", async () => {
    const trx = await db.startTransaction().execute();
    await trx.insertInto("items").values({ id: "a", n: 1 }).execute();
    const afterA = await trx.savepoint("after_a").execute();
    await afterA.insertInto("items").values({ id: "b", n: 1 }).execute();
    await afterA.rollbackToSavepoint("after_a").execute();
    await afterA.insertInto("items").values({ id: "c", n: 1 }).execute();
    await afterA.releaseSavepoint("after_a").execute();
    const inside = await trx.selectFrom("items").select("id").orderBy("id").execute();
    await trx.commit().execute();
    expect(inside.map((r) => r.id)).toEqual(["a", "c"]);
    expect(committed()).toEqual(["a=1", "c=1"]);
  });

  it("a transaction in db.connection() is answered committed, and the connection goes on after it", async () => {
    const seen = await db.connection().execute(async (c) => {
      await c.transaction().execute((tx) => tx.insertInto("items").values({ id: "a", n: 1 }).execute());
      const afterCommit = committed();
      await c.insertInto("items").values({ id: "b", n: 1 }).execute();
      return afterCommit;
    });
    expect(seen).toEqual(["a=1"]);
    expect(committed()).toEqual(["a=1", "b=1"]);
  });

  it("refuses nested transactions and raw transaction statements with a message naming the supported API", async () => {
    const trx = await db.startTransaction().execute();
    await expect(trx.startTransaction().execute()).rejects.toThrow(/savepoint/);
    expect(() => trx.transaction()).toThrow(/not supported/); // Kysely's own refusal
    await expect(trx.savepoint("cardvault_unit").execute()).rejects.toThrow(/reserved/);
    await trx.insertInto("items").values({ id: "a", n: 1 }).execute();
    await trx.commit().execute();
    expect(committed()).toEqual(["a=1"]);
    for (const text of [
      "begin",
      "BEGIN IMMEDIATE",
      "commit",
      "end",
      "rollback",
      "savepoint x",
      "release x",
    ]) {
      await expect(sql.raw(text).execute(db), text).rejects.toThrow(/db\.transaction\(\)/);
    }
    await expect(
      db.transaction().execute((tx) => sql`savepoint x`.execute(tx)),
      "inside a transaction",
    ).rejects.toThrow(/savepoint/);
    await insert("b");
    expect(committed()).toEqual(["a=1", "b=1"]);
  });
});

describe("SQLite statement cache", () => {
  it("evicts the least recently used statement: a hot one survives a burst of one-off texts", async () => {
    const prepare = vi.spyOn(sqlite, "prepare");
    try {
      const hot = () => sql<{ v: number }>`select 0 as v`.execute(db);
      await hot();
      // More distinct texts than the cache holds (500), the hot statement used all along.
      for (let i = 1; i <= 1200; i++) {
        await sql`select ${sql.lit(i)} as v`.execute(db);
        if (i % 10 === 0) await hot();
      }
      expect(prepare.mock.calls.filter(([text]) => text === "select 0 as v").length).toBe(1);
      // The one-off texts were evicted: the first is prepared again.
      await sql`select ${sql.lit(1)} as v`.execute(db);
      expect(prepare.mock.calls.filter(([text]) => text === "select 1 as v").length).toBe(2);
    } finally {
      prepare.mockRestore();
    }
  });
});

describe("openSqliteStore", () => {
  it("syncs every commit (synchronous = FULL): a counted wrong try survives a power cut", async () => {
    const store = openSqliteStore(join(dir, "store.sqlite"));
    try {
      const { rows } = await sql<{ synchronous: number }>`PRAGMA synchronous`.execute(store.db);
      expect(rows[0]?.synchronous).toBe(2);
    } finally {
      await store.close();
    }
  });
});
