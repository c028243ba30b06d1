// How many transactions and round trips an authorisation-path call costs on PostgreSQL, seen on the wire: the
// service's database link runs through a TCP proxy that reads both directions. Each ReadyForQuery the server
// sends answers one request of the client (a simple Query or an extended-protocol Sync); one whose status byte
// is 'I' (idle) ends a transaction — an explicit COMMIT or ROLLBACK, or a statement that ran on its own. A round
// trip ends when the server has answered every request the client sent: the client then waits, having nothing
// more on the wire (it pipelines what needs no answer in between: src/store/write-behind.ts). A verify, a CVV
// read and a PIN verify are one transaction each (lookup, counter step, audit row and the attempt's rate-limit
// count together). The server's ParseComplete messages count the statements it had to parse: the hot path's are
// named statements, parsed once per connection (src/store/db.ts).
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectedCvv, wrongCvv } from "../helpers/card-secrets.js";
import { type ConnectionWatch, type DatabaseProxy, startDatabaseProxy } from "../helpers/database-proxy.js";
import { createHarness, type Harness } from "../helpers/harness.js";

let h: Harness;
let proxy: DatabaseProxy;
let transactionsEnded = 0;
let roundTrips = 0;
let parses = 0;

/** Splits a stream into protocol messages (type byte, 4-byte length); `skipFirst`: the untyped startup message. */
function messages(each: (type: number, body: Buffer) => void, skipFirst = false) {
  let pending = Buffer.alloc(0);
  let untyped = skipFirst;
  return (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (untyped && pending.length >= 4) {
      const length = pending.readUInt32BE(0);
      if (pending.length < length) return;
      // An SSLRequest is answered by one byte, then the startup message follows; neither has a type byte.
      untyped = length === 8 && pending.readUInt32BE(4) === 80877103;
      pending = pending.subarray(length);
    }
    while (pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (pending.length < 1 + length) break;
      each(pending[0]!, pending.subarray(5, 1 + length));
      pending = pending.subarray(1 + length);
    }
  };
}

function watchConnection(): ConnectionWatch {
  let outstanding = 0;
  return {
    client: messages((type) => {
      if (type === 0x51 || type === 0x53) outstanding++; // 'Q' query, 'S' sync: each is answered by a ReadyForQuery
    }, true),
    server: messages((type, body) => {
      if (type === 0x31) parses++; // ParseComplete: the server parsed a statement
      if (type !== 0x5a) return; // ReadyForQuery
      if (body[0] === 0x49) transactionsEnded++;
      outstanding = Math.max(0, outstanding - 1);
      if (outstanding === 0) roundTrips++;
    }),
  };
}

const target = new URL(process.env.CARDVAULT_TEST_DATABASE_URL ?? "postgres://127.0.0.1:5432/postgres");
beforeAll(async () => {
  proxy = await startDatabaseProxy(target, watchConnection);
  h = await createHarness({
    env: { CARDVAULT_RATE_LIMIT_PER_CARD: "1000", CARDVAULT_RATE_LIMIT_PER_TENANT: "100000" },
    databaseUrlFor: proxy.urlFor,
  });
}, 30_000);
afterAll(async () => {
  await h.close();
  await proxy.cut();
});

/** Transactions the calls ended, per call. */
async function transactionsPer(calls: number, call: () => Promise<unknown>): Promise<number> {
  await call(); // the first call of a kind may prepare or prune; count the steady state
  const before = transactionsEnded;
  for (let i = 0; i < calls; i++) await call();
  return (transactionsEnded - before) / calls;
}

/** Round trips to the server, per call. */
async function roundTripsPer(calls: number, call: () => Promise<unknown>): Promise<number> {
  await call();
  const before = roundTrips;
  for (let i = 0; i < calls; i++) await call();
  return (roundTrips - before) / calls;
}

/** Statements the server parsed, per call, once every pooled connection has run the call. */
async function parsesPer(calls: number, call: () => Promise<unknown>): Promise<number> {
  await Promise.all(Array.from({ length: 2 * h.config.postgres.poolSize }, call));
  const before = parses;
  for (let i = 0; i < calls; i++) await call();
  return (parses - before) / calls;
}

describe("transactions per call on PostgreSQL", () => {
  it("a CVV verify, a CVV read and a PIN verify are one transaction each", async () => {
    const { publicToken } = await h.createCard();
    const cvv = await wrongCvv(h, publicToken);
    const verify = () => h.call("POST", `/v1/cards/${publicToken}/cvv/verify`, { cvv });
    const unblock = () => h.call("POST", `/v1/cards/${publicToken}/cvv/unblock`);
    expect(
      await transactionsPer(10, async () => {
        expect((await verify()).statusCode).toBe(200);
      }),
    ).toBe(1);
    await unblock();
    expect(await transactionsPer(10, () => h.call("GET", `/v1/cards/${publicToken}/cvv`))).toBe(1);
    await h.call("PUT", `/v1/cards/${publicToken}/pin`, { pin: "4821" });
    expect(
      await transactionsPer(10, () => h.call("POST", `/v1/cards/${publicToken}/pin/verify`, { pin: "4821" })),
    ).toBe(1);
  });

  it("a verify is three round trips: BEGIN with the locked card, its writes with the attempt's count, COMMIT", async () => {
    // BEGIN goes with the card's read; the counter step and the audit row wait in the transaction and travel with
    // the rate-limit count, in one statement (store/write-behind.ts). Before, each statement was a round trip (6).
    const { publicToken } = await h.createCard();
    const right = await expectedCvv(h, publicToken);
    const wrong = await wrongCvv(h, publicToken);
    const verify = (secret: "cvv" | "pin", value: string, result: string) => async () => {
      const body = secret === "cvv" ? { cvv: value } : { pin: value };
      const response = await h.call("POST", `/v1/cards/${publicToken}/${secret}/verify`, body);
      expect(response.json().result).toBe(result);
    };
    expect(await roundTripsPer(10, verify("cvv", right, "match"))).toBe(3);
    // Two wrong tries (the first is the warm-up) of the tenant's three.
    expect(await roundTripsPer(1, verify("cvv", wrong, "mismatch"))).toBe(3);
    await h.call("PUT", `/v1/cards/${publicToken}/pin`, { pin: "4821" });
    expect(await roundTripsPer(10, verify("pin", "4821", "match"))).toBe(3);
  });

  it("waiting writes land as written: two steps of one card both count, and a failing write undoes its transaction", async () => {
    const { publicToken } = await h.createCard();
    const { store, repos } = h.runtime;
    const card = (await repos.cards.findByToken("acme", publicToken))!;
    const wrongTry = { at: new Date().toISOString(), keep: 10 };
    const audit = (id: string) => ({
      id,
      tenant_id: "acme",
      card_id: card.id,
      public_token: null,
      actor: "test",
      action: "cvv.verify",
      outcome: "mismatch",
      request_id: null,
      details: null,
      created_at: wrongTry.at,
    });
    const auditId = `0190aaaa-0000-7000-8000-${Date.now().toString().padStart(12, "0")}`;
    await store.transaction(async (tx) => {
      await repos.cards.lockByToken("acme", publicToken, tx);
      // Two updates of one row may not share a statement (PostgreSQL would apply one of them): both count.
      await repos.cards.stepCounter(card.id, "cvv", "decrement", 3, wrongTry, tx);
      await repos.cards.stepCounter(card.id, "cvv", "decrement", 3, wrongTry, tx);
      await repos.audit.insert(audit(auditId), tx);
    });
    const after = (await repos.cards.findByToken("acme", publicToken))!;
    expect(after.cvv_tries_remaining).toBe(card.cvv_tries_remaining - 2);
    expect(after.cvv_wrong_tries).toBe(wrongTry.at.repeat(2));
    // The same audit id again: the insert fails where it is sent (at COMMIT), and the step before it goes too.
    await expect(
      store.transaction(async (tx) => {
        await repos.cards.stepCounter(card.id, "cvv", "decrement", 3, wrongTry, tx);
        await repos.audit.insert(audit(auditId), tx);
      }),
    ).rejects.toMatchObject({ code: "23505" });
    expect((await repos.cards.findByToken("acme", publicToken))!.cvv_tries_remaining).toBe(
      after.cvv_tries_remaining,
    );
  });

  it("a verify's statements are named: parsed once per connection, not on every call", async () => {
    const { publicToken } = await h.createCard();
    const cvv = await expectedCvv(h, publicToken);
    const verify = async () => {
      expect((await h.call("POST", `/v1/cards/${publicToken}/cvv/verify`, { cvv })).json().result).toBe(
        "match",
      );
    };
    expect(await parsesPer(20, verify)).toBe(0);
  });
  it("a migration that changes a table's shape under a running process costs each connection one failure at most", async () => {
    // The card lookup is `select cards.*`: a column added while this process serves changes its result type,
    // and PostgreSQL refuses the named statement (0A000) on every connection that parsed it before.
    const { publicToken } = await h.createCard();
    const cvv = await expectedCvv(h, publicToken);
    const verify = () => h.call("POST", `/v1/cards/${publicToken}/cvv/verify`, { cvv });
    const poolSize = h.config.postgres.poolSize;
    await Promise.all(Array.from({ length: 2 * poolSize }, verify));
    await sql`alter table cards add column upgrade_probe text`.execute(h.runtime.store.db);
    const statuses: number[] = [];
    for (let i = 0; i < 3 * poolSize; i++) statuses.push((await verify()).statusCode);
    expect(statuses.filter((s) => s !== 200).length).toBeLessThanOrEqual(poolSize);
    expect(statuses.slice(-poolSize)).toEqual(Array(poolSize).fill(200));
  });
});
