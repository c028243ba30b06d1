// The store refuses writes: read-only (SQLite query_only, PostgreSQL default_transaction_read_only) and disk
// full (SQLite max_page_count pinned: SQLITE_FULL, as ENOSPC gives) → a clear 503 problem, nothing half-
// written (digest of the tables), service resumes without a restart. Not chmod or a tiny tmpfs: the suite
// runs as root (permissions are not enforced) and cannot mount.
import { createHash } from "node:crypto";
import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../helpers/harness.js";
import { testStore } from "../helpers/test-database.js";

let h: Harness;
let card: string;
beforeAll(async () => {
  h = await createHarness();
  card = (await h.createCard()).publicToken;
});
afterAll(() => h?.close());

async function digest(): Promise<string> {
  const hash = createHash("sha256");
  for (const table of [
    "cards",
    "audit_events",
    "outbox_events",
    "webhook_deliveries",
    "idempotency_keys",
    "rate_limits",
  ] as const) {
    const rows = await h.runtime.store.db.selectFrom(table).selectAll().execute();
    hash.update(
      `${table}:${rows
        .map((r) => JSON.stringify(r))
        .sort()
        .join("\n")}`,
    );
  }
  return hash.digest("hex");
}

/** Every kind of write a client can cause, each expected to be refused whole. */
const writes = () =>
  [
    ["POST", "/v1/cards", { type: "virtual" }],
    ["POST", `/v1/cards/${card}/cvv/verify`, { cvv: "000" }],
    ["PUT", `/v1/cards/${card}/pin`, { pin: "4321" }],
    ["GET", `/v1/cards/${card}/cvv`, undefined], // audited read
    ["POST", `/v1/cards/${card}/cvv/rotate`, {}],
  ] as const;

async function expectRefusedWhole() {
  for (const [method, url, body] of writes()) {
    const before = await digest();
    const response = await h.call(method, url, body);
    expect(response.statusCode, `${method} ${url}: ${response.body}`).toBe(503);
    expect(response.json()).toMatchObject({ status: 503, code: "service_unavailable" });
    expect(response.json().detail).toMatch(/Nothing was changed/);
    expect(await digest(), `${method} ${url} wrote something`).toBe(before);
  }
}

async function expectServing() {
  for (const [method, url, body] of writes()) {
    const response = await h.call(method, url, body);
    expect(response.statusCode, `${method} ${url}: ${response.body}`).toBeLessThan(300);
  }
}

describe.skipIf(testStore !== "sqlite")("SQLite: read-only and full", () => {
  it("read-only database: 503 problems, nothing written, recovers without a restart", async () => {
    await sql`PRAGMA query_only = ON`.execute(h.runtime.store.db);
    await expectRefusedWhole();
    expect((await h.call("GET", `/v1/cards/${card}`)).statusCode).toBe(200); // plain reads keep working
    await sql`PRAGMA query_only = OFF`.execute(h.runtime.store.db);
    await expectServing();
  });

  it("disk full: 503 problems, nothing half-written, recovers without a restart", async () => {
    const db = h.runtime.store.db;
    // Let the WAL land in the main file so growth is attempted there, then pin the size.
    await sql`PRAGMA wal_checkpoint(TRUNCATE)`.execute(db);
    const pages = (await sql<{ page_count: number }>`PRAGMA page_count`.execute(db)).rows[0]!.page_count;
    await sql.raw(`PRAGMA max_page_count = ${pages}`).execute(db);
    // Fill the free space left in existing pages: the first writes may still fit, later ones cannot.
    let full = 0;
    for (let i = 0; i < 400 && full === 0; i++) {
      const before = await digest();
      const r = await h.call("POST", "/v1/cards", { type: "virtual", cardholderName: "x".repeat(100) });
      if (r.statusCode === 503) {
        full++;
        expect(r.json()).toMatchObject({ code: "service_unavailable" });
        expect(await digest()).toBe(before);
      } else expect(r.statusCode).toBe(201);
    }
    expect(full).toBe(1);
    await sql`PRAGMA max_page_count = 1073741823`.execute(db);
    await expectServing();
  });
});

describe.skipIf(testStore !== "postgres")("PostgreSQL: read-only database", () => {
  it("default_transaction_read_only: 503 problems, nothing written, recovers without a restart", async () => {
    const db = h.runtime.store.db;
    const name = (await sql<{ db: string }>`select current_database() as db`.execute(db)).rows[0]!.db;
    const setReadOnly = async (on: boolean) => {
      // From an administrative session of its own: the service's sessions are the ones made read-only.
      const admin = new pg.Client({ connectionString: process.env.CARDVAULT_TEST_DATABASE_URL });
      await admin.connect();
      try {
        await admin.query(`ALTER DATABASE ${name} SET default_transaction_read_only = ${on ? "on" : "off"}`);
        // Sessions pick the setting up when they connect: end the pool's sessions, it reconnects by itself.
        await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1", [
          name,
        ]);
      } finally {
        await admin.end();
      }
    };
    await setReadOnly(true);
    // The first request after the reconnect may meet a terminated connection: also a 503.
    for (let i = 0; i < 3; i++) await h.call("POST", "/v1/cards", { type: "virtual" });
    await expectRefusedWhole();
    await setReadOnly(false);
    for (let i = 0; i < 3; i++) await h.call("GET", "/readyz");
    await expectServing();
  });
});
