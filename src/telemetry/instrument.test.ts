// The instrumented store counts what a transaction noted only once it has committed, never when it rolls back;
// the metrics cap tenant label values; the key provider wrapper times operations by name and passes results,
// errors and sessions through unchanged.
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import type { KeyProvider } from "../keys/key-provider.js";
import type { AuditEntry } from "../services/audit.js";
import { openSqliteStore } from "../store/db.js";
import { instrumentKeys, instrumentStore } from "./instrument.js";
import { createMetrics, MAX_TENANT_LABELS, OTHER_TENANT } from "./metrics.js";

async function samples(metrics: ReturnType<typeof createMetrics>, name: string) {
  const text = await metrics.scrape();
  return text.split("\n").filter((line) => line.startsWith(name));
}

describe("instrumentStore", () => {
  it("runs what a transaction noted after its commit, and nothing of a rolled-back one", async () => {
    const metrics = createMetrics();
    const store = instrumentStore(openSqliteStore(":memory:"), { metrics });
    const seen: string[] = [];
    const result = await store.transaction(async (tx) => {
      store.afterCommit(tx, () => seen.push("committed"));
      expect(seen).toEqual([]);
      return 42;
    });
    expect(result).toBe(42);
    expect(seen).toEqual(["committed"]);
    await expect(
      store.transaction(async (tx) => {
        store.afterCommit(tx, () => seen.push("rolled back"));
        throw new Error("no");
      }),
    ).rejects.toThrow("no");
    expect(seen).toEqual(["committed"]);
    store.afterCommit(store.db, () => seen.push("outside"));
    expect(seen).toEqual(["committed", "outside"]);
    expect(await samples(metrics, "cardvault_store_transaction_duration_seconds_count")).toEqual([
      'cardvault_store_transaction_duration_seconds_count{outcome="commit"} 1',
      'cardvault_store_transaction_duration_seconds_count{outcome="rollback"} 1',
    ]);
    await store.close();
  });
});

describe("the SQLite store's commit observer", () => {
  it("is told of each group commit with the number of units that shared it", async () => {
    const commits: number[] = [];
    const store = openSqliteStore(":memory:", (_seconds, units) => commits.push(units));
    await sql`create table t (n integer)`.execute(store.db);
    commits.length = 0;
    await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        store.transaction(async (tx) => {
          await sql`insert into t values (${n})`.execute(tx);
        }),
      ),
    );
    expect(commits).toEqual([5]);
    await sql`insert into t values (6)`.execute(store.db);
    expect(commits).toEqual([5, 1]);
    await store.close();
  });
});

describe("createMetrics", () => {
  it("gives the first tenants their own label value and every later one 'other'", async () => {
    const metrics = createMetrics();
    for (let i = 0; i < MAX_TENANT_LABELS + 20; i++) {
      metrics.audited(`t${i}`, { action: "cvv.verify", outcome: "match", details: { remainingTries: 3 } });
    }
    const lines = await samples(metrics, "cardvault_verify_total{");
    expect(lines).toHaveLength(MAX_TENANT_LABELS + 1);
    expect(lines).toContain(
      `cardvault_verify_total{secret="cvv",outcome="match",tenant="${OTHER_TENANT}"} 20`,
    );
  });

  it("takes label values only from fixed sets, whatever an audit row says", async () => {
    const metrics = createMetrics();
    // A row as another version (or a bug) might write it: the type system would refuse it here.
    metrics.audited("acme", {
      action: "rate_limit.blocked",
      outcome: "blocked",
      details: { kind: "4111111111111111" },
    } as unknown as AuditEntry);
    metrics.audited("acme", { action: "cvv.verify", outcome: "123" });
    metrics.httpRequest(undefined, "BREW", 404, 0.001);
    const text = await metrics.scrape();
    expect(text).toContain('cardvault_rate_limited_total{class="other",scope="tenant",tenant="acme"} 1');
    expect(text).not.toContain("4111111111111111");
    expect(text).not.toMatch(/outcome="123"/);
    expect(text).toContain('route="unmatched",method="other",status_code="404"');
  });
});

describe("instrumentKeys", () => {
  it("times operations by name and passes answers and errors through", async () => {
    const metrics = createMetrics();
    const provider = {
      activeKeyId: () => "cvk-1",
      verifyCvv: async (_card: unknown, presented: string) => presented === "123",
      openPin: async () => {
        throw new Error("boom");
      },
    } as unknown as KeyProvider;
    const keys = instrumentKeys(provider, { metrics });
    expect(keys.activeKeyId("cvk")).toBe("cvk-1");
    expect(await keys.verifyCvv({} as never, "123")).toBe(true);
    await expect(keys.openPin({} as never)).rejects.toThrow("boom");
    const lines = await samples(metrics, "cardvault_key_operation_duration_seconds_count");
    expect(lines).toEqual([
      'cardvault_key_operation_duration_seconds_count{operation="verifyCvv",outcome="ok"} 1',
      'cardvault_key_operation_duration_seconds_count{operation="openPin",outcome="error"} 1',
    ]);
  });
});
