// What write-behind sends, and when: the statements a connection received, in order, for each sequence a
// transaction makes. The server's side (that a combined statement runs and does what its parts do) is tested on
// PostgreSQL in test/postgres/transactions.test.ts.
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
const readCard = 'select * from "cards" where "id" = $1';

function connection() {
  const sent: { text: string; values: unknown[] }[] = [];
  const answer: Answer = { command: "SELECT", rowCount: 1, rows: [{ ok: 1 }] };
  const writes = writeBehind(async (text, values) => {
    sent.push({ text, values });
    return answer;
  }, namedStatementOf);
  return { sent, query: writes.query, writes };
}

describe("write-behind", () => {
  it("holds deferred writes in a transaction and sends them in front of the carrier, parameters renumbered", async () => {
    const c = connection();
    await c.query("begin");
    expect(await c.query(step, [1, "card_1"])).toEqual({ command: "DEFERRED", rowCount: null, rows: [] });
    await c.query(audit, ["a1", "cvv.verify"]);
    expect(c.sent.map((s) => s.text)).toEqual(["begin"]);
    expect((await c.query(count, ["tenant:acme"])).rows).toEqual([{ ok: 1 }]);
    await c.query("commit");
    expect(c.sent.map((s) => s.text)).toEqual([
      "begin",
      'with cardvault_write_1 as (update "cards" set "cvv_tries_remaining" = "cvv_tries_remaining" - $1 where "id" = $2), ' +
        'cardvault_write_2 as (insert into "audit_events" ("id", "action") values ($3, $4)), ' +
        "input (bucket) as (values ($5::text)) insert into rate_limits (bucket) select bucket from input returning bucket",
      "commit",
    ]);
    expect(c.sent[1]!.values).toEqual([1, "card_1", "a1", "cvv.verify", "tenant:acme"]);
    // The combination is a named statement too: parsed once per connection.
    expect(namedStatementOf(c.sent[1]!.text)?.name).toMatch(/^cardvault_\d+$/);
  });

  it("sends what waits as one statement before COMMIT, and before any statement that is not a carrier", async () => {
    const c = connection();
    await c.query("begin");
    await c.query(audit, ["a1", "card.create"]);
    await c.query(event, ["e1"]);
    await c.query("commit");
    expect(c.sent.map((s) => s.text)).toEqual([
      "begin",
      'with cardvault_write_1 as (insert into "audit_events" ("id", "action") values ($1, $2)) insert into "outbox_events" ("id") values ($3)',
      "commit",
    ]);
    const d = connection();
    await d.query("begin");
    await d.query(step, [1, "card_1"]);
    await d.query(readCard, ["card_1"]);
    expect(d.sent.map((s) => s.text)).toEqual(["begin", step, readCard]);
  });

  it("never lets one statement write a table twice, unless by inserts only", async () => {
    const c = connection();
    await c.query("begin");
    await c.query(step, [1, "card_1"]);
    await c.query(step, [1, "card_1"]); // two updates of one row: the first is sent before the second waits
    await c.query(audit, ["a1", "x"]);
    await c.query(audit, ["a2", "x"]); // inserts into one table share a statement
    await c.query("commit");
    expect(c.sent.map((s) => s.text)).toEqual([
      "begin",
      step,
      'with cardvault_write_1 as (update "cards" set "cvv_tries_remaining" = "cvv_tries_remaining" - $1 where "id" = $2), ' +
        'cardvault_write_2 as (insert into "audit_events" ("id", "action") values ($3, $4)) ' +
        'insert into "audit_events" ("id", "action") values ($5, $6)',
      "commit",
    ]);
  });

  it("a carrier that names a table the waiting writes touch goes on its own, after them", async () => {
    const reads = namedStatement(
      'insert into "audit_events" ("id") select "id" from "cards" where "id" = $1',
      "carrier",
    );
    const c = connection();
    await c.query("begin");
    await c.query(step, [1, "card_1"]);
    await c.query(reads, ["card_1"]);
    expect(c.sent.map((s) => s.text)).toEqual(["begin", step, reads]);
  });

  it("drops what waits on ROLLBACK, sends it before a SAVEPOINT, and runs everything at once outside a transaction", async () => {
    const c = connection();
    await c.query("begin");
    await c.query(audit, ["a1", "x"]);
    await c.query("rollback");
    expect(c.writes.waiting).toBe(0);
    await c.query(audit, ["a2", "x"]);
    expect(c.sent.map((s) => s.values)).toEqual([[], [], ["a2", "x"]]);

    const d = connection();
    await d.query("begin");
    await d.query(audit, ["a1", "x"]);
    await d.query('savepoint "s1"');
    await d.query(event, ["e1"]);
    await d.query('rollback to "s1"');
    expect(d.writes.waiting).toBe(0);
    await d.query(event, ["e2"]);
    await d.query("commit");
    expect(d.sent.map((s) => [s.text.slice(0, 20), s.values])).toEqual([
      ["begin", []],
      [audit.slice(0, 20), ["a1", "x"]],
      ['savepoint "s1"', []],
      ['rollback to "s1"', []],
      [event.slice(0, 20), ["e2"]],
      ["commit", []],
    ]);
  });

  it("refuses to combine a text it could not renumber safely", async () => {
    const literal = namedStatement('insert into "audit_events" ("id") values (\'$1\')', "deferred");
    const c = connection();
    await c.query("begin");
    await expect(c.query(literal, [])).rejects.toThrow(/without literals/);
  });
});
