// What write-behind sends, and when: the round trips a connection made (the statements of each, in order), for
// each sequence a transaction makes. The server's side (that what is sent runs and does what its parts do) is
// tested on PostgreSQL in test/postgres/transactions.test.ts.
import { describe, expect, it } from "vitest";
import { namedStatement, namedStatementOf } from "./prepared.js";
import { type Answer, writeBehind } from "./write-behind.js";

const audit = namedStatement('insert into "audit_events" ("id", "action") values ($1, $2)', "deferred");
const event = namedStatement('insert into "outbox_events" ("id") values ($1)', "deferred");
const step = namedStatement(
  'update "cards" set "cvv_tries_remaining" = "cvv_tries_remaining" - $1 where "id" = $2',
  "deferred",
);
const count = namedStatement(
  "with input (bucket) as (values ($1::text)) insert into rate_limits (bucket) select bucket from input returning bucket",
  "carrier",
);
const readCard = 'select * from "cards" where "id" = $1 for update of "cards"';

const stepThenAudit =
  'with cardvault_write_1 as (update "cards" set "cvv_tries_remaining" = "cvv_tries_remaining" - $1 where "id" = $2) ' +
  'insert into "audit_events" ("id", "action") values ($3, $4)';

/** A connection that answers every statement with one row, and records its round trips. */
function connection(fail?: (text: string) => boolean) {
  const trips: { text: string; values: unknown[] }[][] = [];
  let batch: { text: string; values: unknown[] }[] | undefined;
  const writes = writeBehind(
    {
      send: async (text, values) => {
        if (batch) batch.push({ text, values });
        else trips.push([{ text, values }]);
        if (fail?.(text)) throw new Error(`failed: ${text.slice(0, 30)}`);
        return { command: "SELECT", rowCount: 1, rows: [{ answer: text.slice(0, 12) }] } satisfies Answer;
      },
      batch: (fn) => {
        batch = [];
        try {
          return fn();
        } finally {
          trips.push(batch);
          batch = undefined;
        }
      },
    },
    namedStatementOf,
  );
  return { query: writes.query, writes, texts: () => trips.map((t) => t.map((s) => s.text)), trips };
}

describe("write-behind", () => {
  it("sends a verify in three round trips: BEGIN with the read, the writes with the count, COMMIT", async () => {
    const c = connection();
    expect(await c.query("begin")).toMatchObject({ command: "BEGIN" });
    expect((await c.query(readCard, ["card_1"])).rows).toEqual([{ answer: "select * fro" }]);
    expect(await c.query(step, [1, "card_1"])).toEqual({ command: "DEFERRED", rowCount: null, rows: [] });
    await c.query(audit, ["a1", "cvv.verify"]);
    expect(c.trips).toHaveLength(1);
    expect((await c.query(count, ["tenant:acme"])).rows).toEqual([{ answer: "with cardvau" }]);
    await c.query("commit");
    expect(c.texts()).toEqual([
      ["begin", readCard],
      [
        'with cardvault_write_1 as (update "cards" set "cvv_tries_remaining" = "cvv_tries_remaining" - $1 where "id" = $2), ' +
          'cardvault_write_2 as (insert into "audit_events" ("id", "action") values ($3, $4)), ' +
          "input (bucket) as (values ($5::text)) insert into rate_limits (bucket) select bucket from input returning bucket",
      ],
      ["commit"],
    ]);
    expect(c.trips[1]![0]!.values).toEqual([1, "card_1", "a1", "cvv.verify", "tenant:acme"]);
    // The combination is a named statement too: parsed once per connection.
    expect(namedStatementOf(c.trips[1]![0]!.text)?.name).toMatch(/^cardvault_\d+$/);
  });

  it("sends waiting writes with the next statement that is answered, before it, and with COMMIT", async () => {
    const c = connection();
    await c.query("begin");
    await c.query(step, [1, "card_1"]);
    await c.query(audit, ["a1", "x"]);
    await c.query(readCard, ["card_1"]); // not a carrier: it reads what waits, so it goes after it
    await c.query(event, ["e1"]);
    await c.query("commit");
    expect(c.texts()).toEqual([
      ["begin", stepThenAudit, readCard],
      [event, "commit"],
    ]);
  });

  it("never lets one statement write a table twice, unless by inserts only", async () => {
    const c = connection();
    await c.query("begin");
    await c.query(step, [1, "card_1"]);
    await c.query(step, [1, "card_1"]); // two updates of one row: two statements
    await c.query(audit, ["a1", "x"]);
    await c.query(audit, ["a2", "x"]); // inserts into one table share one
    await c.query("commit");
    expect(c.texts()).toEqual([
      [
        "begin",
        step,
        'with cardvault_write_1 as (update "cards" set "cvv_tries_remaining" = "cvv_tries_remaining" - $1 where "id" = $2), ' +
          'cardvault_write_2 as (insert into "audit_events" ("id", "action") values ($3, $4)) ' +
          'insert into "audit_events" ("id", "action") values ($5, $6)',
        "commit",
      ],
    ]);
  });

  it("sends a carrier that names a table the waiting writes touch after them, not with them", async () => {
    const reads = namedStatement(
      'insert into "audit_events" ("id") select "id" from "cards" where "id" = $1',
      "carrier",
    );
    const c = connection();
    await c.query("begin");
    await c.query(step, [1, "card_1"]);
    await c.query(reads, ["card_1"]);
    expect(c.texts()).toEqual([["begin", step, reads]]);
  });

  it("drops what waits on ROLLBACK, sends nothing for a transaction that sent nothing, and nothing waits outside one", async () => {
    const c = connection();
    await c.query("begin");
    await c.query(audit, ["a1", "x"]);
    expect(c.writes.waiting).toBe(2);
    expect(await c.query("rollback")).toMatchObject({ command: "ROLLBACK" });
    expect(c.writes.waiting).toBe(0);
    await c.query("begin");
    expect(await c.query("commit")).toMatchObject({ command: "COMMIT" });
    expect(c.trips).toEqual([]);
    await c.query(audit, ["a2", "x"]);
    expect(c.trips).toEqual([[{ text: audit, values: ["a2", "x"] }]]);

    const d = connection();
    await d.query("begin");
    await d.query(audit, ["a1", "x"]);
    await d.query('savepoint "s1"');
    await d.query(event, ["e1"]);
    await d.query('rollback to "s1"');
    await d.query(event, ["e2"]);
    await d.query("commit");
    expect(d.texts()).toEqual([["begin", audit, 'savepoint "s1"'], ['rollback to "s1"'], [event, "commit"]]);
    expect(d.trips[2]![0]!.values).toEqual(["e2"]);
  });

  it("raises a waiting write's error at the statement it went out with", async () => {
    const c = connection((text) => text.startsWith("insert"));
    await c.query("begin");
    await c.query(readCard, ["card_1"]);
    await c.query(audit, ["a1", "x"]);
    await expect(c.query("commit")).rejects.toThrow(/failed: insert into "audit_events"/);
  });

  it("refuses a deferred text it could not combine safely, where it is written", async () => {
    const literal = namedStatement('insert into "audit_events" ("id") values (\'$1\')', "deferred");
    const c = connection();
    await c.query("begin");
    await expect(c.query(literal, [])).rejects.toThrow(/without literals/);
    const returning = namedStatement('update "cards" set "version" = $1 returning "id"', "deferred");
    const upsert = namedStatement(
      'insert into "rate_limits" ("bucket") values ($1) on conflict ("bucket") do nothing',
      "deferred",
    );
    await expect(c.query(returning, [1])).rejects.toThrow(/one plain INSERT, UPDATE or DELETE/);
    await expect(c.query(upsert, ["b"])).rejects.toThrow(/one plain INSERT, UPDATE or DELETE/);
  });

  it("names the short combinations of the hot paths, and sends a long batch's unnamed", async () => {
    const c = connection();
    await c.query("begin");
    for (let i = 0; i < 6; i++) await c.query(audit, [`a${i}`, "key.rotate"]);
    await c.query("commit");
    const batch = c.trips[0]![1]!;
    expect(batch.values).toHaveLength(12);
    expect(batch.text).toContain("cardvault_write_5 as (");
    expect(namedStatementOf(batch.text)).toBeUndefined();
  });
});
