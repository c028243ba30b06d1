import SqliteDatabase from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { everyColumn, prepared } from "./prepared.js";

interface Tables {
  items: { id: string; owner: string; tries: number; note: string | null };
}

const db = new Kysely<Tables>({ dialect: new SqliteDialect({ database: new SqliteDatabase(":memory:") }) });
await db.schema
  .createTable("items")
  .addColumn("id", "text", (c) => c.primaryKey())
  .addColumn("owner", "text", (c) => c.notNull())
  .addColumn("tries", "integer", (c) => c.notNull())
  .addColumn("note", "text")
  .execute();
await db
  .insertInto("items")
  .values([
    { id: "a", owner: "acme", tries: 3, note: null },
    { id: "b", owner: "globex", tries: 0, note: "x" },
  ])
  .execute();
afterAll(() => db.destroy());

describe("prepared queries", () => {
  const byOwner = prepared((p: { owner: string; id: string }) =>
    db.selectFrom("items").selectAll().where("owner", "=", p.owner).where("id", "=", p.id),
  );
  const decrement = prepared((p: { id: string }) =>
    db
      .updateTable("items")
      .set((eb) => ({ tries: eb("tries", "-", 1) }))
      .where("id", "=", p.id)
      .where("tries", ">", 0)
      .returning("tries"),
  );

  it("binds each call's values and answers as the builder does", async () => {
    expect((await byOwner(db, { owner: "acme", id: "a" })).rows).toEqual(
      await db.selectFrom("items").selectAll().where("owner", "=", "acme").where("id", "=", "a").execute(),
    );
    expect((await byOwner(db, { owner: "globex", id: "a" })).rows).toEqual([]);
    expect((await byOwner(db, { owner: "globex", id: "b" })).rows).toEqual([
      { id: "b", owner: "globex", tries: 0, note: "x" },
    ]);
  });

  it("keeps the builder's constants (the 1 and the 0 of a guarded decrement)", async () => {
    expect((await decrement(db, { id: "a" })).rows).toEqual([{ tries: 2 }]);
    expect((await decrement(db, { id: "a" })).rows).toEqual([{ tries: 1 }]);
    expect((await decrement(db, { id: "b" })).rows).toEqual([]);
  });

  it("never splices a value into the SQL: one that looks like SQL or like a placeholder is just a value", async () => {
    expect((await byOwner(db, { owner: "acme' or '1'='1", id: "a" })).rows).toEqual([]);
    expect((await byOwner(db, { owner: "\u0000cardvault-parameter:owner", id: "a" })).rows).toEqual([]);
  });

  it("refuses a query that splices a parameter into its text instead of binding it", () => {
    const spliced = prepared((p: { owner: string }) =>
      db.selectFrom("items").selectAll().where("owner", "=", sql.lit(p.owner)),
    );
    expect(() => spliced(db, { owner: "acme" })).toThrow(/bound values/);
  });

  it("runs inside a transaction of the database it was built with", async () => {
    await db.transaction().execute(async (tx) => {
      expect((await decrement(tx, { id: "a" })).rows).toEqual([{ tries: 0 }]);
    });
    expect((await byOwner(db, { owner: "acme", id: "a" })).rows[0]?.tries).toBe(0);
  });
});

describe("everyColumn", () => {
  it("makes a prepared one-row insert that writes each call's values", async () => {
    const insert = prepared((p: Tables["items"]) =>
      db.insertInto("items").values(everyColumn(p, { id: true, owner: true, tries: true, note: true })),
    );
    await insert(db, { id: "c", owner: "acme", tries: 5, note: null });
    await insert(db, { id: "d", owner: "initech", tries: 1, note: "n" });
    expect(
      await db.selectFrom("items").selectAll().where("id", "in", ["c", "d"]).orderBy("id").execute(),
    ).toEqual([
      { id: "c", owner: "acme", tries: 5, note: null },
      { id: "d", owner: "initech", tries: 1, note: "n" },
    ]);
  });
});
