// Brute-force defence beyond the try counters: per-card and per-tenant limits on the verify, reveal and
// secure-data routes of every dialect → 429 problem with Retry-After, an audit record for every refused
// attempt, and a refused attempt never reaches the try counter.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/http/app.js";
import { createTokenVerifier } from "../src/http/auth.js";
import { systemClock } from "../src/lib/clock.js";
import { openRuntime } from "../src/runtime.js";
import { wrongCvv } from "./helpers/card-secrets.js";
import { createHarness, type Harness, TEST_JWT_SECRET } from "./helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({
    maxCvvTries: 99,
    env: {
      CARDVAULT_RATE_LIMIT_PER_CARD: "5",
      CARDVAULT_RATE_LIMIT_PER_TENANT: "40",
      CARDVAULT_RATE_LIMIT_WINDOW_SECONDS: "3600",
      // Few connections a process: the per-tenant bound on PostgreSQL is one attempt per open transaction.
      CARDVAULT_DB_POOL_SIZE: "4",
    },
  });
});
afterAll(() => h.close());

/**
 * A second runtime and app on the same database and data directory: its own connections, as a second `serve`
 * process has (real processes on PostgreSQL: test/postgres/multi-process.test.ts counters).
 */
async function secondApp() {
  const other = await openRuntime(h.config, { warn: () => {} });
  const app = await buildApp({
    services: other.services,
    idempotency: other.repos.idempotency,
    verifier: createTokenVerifier({ ...h.config.auth, hs256Secret: TEST_JWT_SECRET }, systemClock),
    store: other.store,
    keys: other.keys,
    clock: systemClock,
    bodyLimitBytes: h.config.bodyLimitBytes,
    idempotencyTtlHours: h.config.idempotencyTtlHours,
    apiDocs: false,
    publicUrl: h.config.publicUrl,
  });
  return {
    app,
    async close() {
      await app.close();
      await other.close();
    },
  };
}

async function blockedAudits(): Promise<Record<string, unknown>[]> {
  const rows = await h.runtime.store.db
    .selectFrom("audit_events")
    .select(["details", "outcome", "tenant_id"])
    .where("action", "=", "rate_limit.blocked")
    .execute();
  return rows.map((r) => ({ ...JSON.parse(r.details ?? "{}"), outcome: r.outcome, tenant: r.tenant_id }));
}

describe("rate limits", () => {
  it("refuses an attempt over the limit before any work: no CVV is compared, no try counted", async () => {
    const { publicToken } = await h.createCard();
    const cvv = await wrongCvv(h, publicToken);
    const keys = h.runtime.keys;
    const verifyCvv = keys.verifyCvv;
    let compared = 0;
    keys.verifyCvv = (...args) => {
      compared++;
      return verifyCvv(...args);
    };
    try {
      const statuses = [];
      for (let i = 0; i < 8; i++)
        statuses.push((await h.call("POST", `/v1/cards/${publicToken}/cvv/verify`, { cvv })).statusCode);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      expect(compared).toBe(5);
    } finally {
      keys.verifyCvv = verifyCvv;
    }
    expect((await h.call("GET", `/v1/cards/${publicToken}/cvv/status`)).json().remainingTries).toBe(99 - 5);
  });

  it("per card: the 6th CVV verification in a window is refused with 429 + Retry-After, audited, uncounted", async () => {
    const { publicToken } = await h.createCard();
    const cvv = await wrongCvv(h, publicToken);
    const answers = [];
    for (let i = 0; i < 8; i++)
      answers.push(await h.call("POST", `/v1/cards/${publicToken}/cvv/verify`, { cvv }));
    expect(answers.map((a) => a.statusCode)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const refused = answers[5]!;
    expect(refused.headers["content-type"]).toContain("application/problem+json");
    expect(refused.json()).toMatchObject({ status: 429, code: "rate_limited" });
    const retryAfter = Number(refused.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    // Five counted mismatches, not eight: a refused attempt never reaches the counter.
    expect((await h.call("GET", `/v1/cards/${publicToken}/cvv/status`)).json()).toMatchObject({
      remainingTries: 94,
    });
    const audits = (await blockedAudits()).filter((a) => a.publicToken === publicToken);
    expect(audits).toHaveLength(3);
    expect(audits[0]).toMatchObject({ kind: "verify", limitedBy: "card", outcome: "blocked" });
  });

  it("the card budget is shared by PIN verification, CVV and PIN reads of the same card; other cards are free", async () => {
    const { publicToken } = await h.createCard();
    const other = (await h.createCard()).publicToken;
    const statuses = [];
    for (const [method, path, body] of [
      ["GET", "cvv", undefined],
      ["GET", "pin", undefined],
      ["POST", "pin/verify", { pin: "0000" }],
      ["GET", "cvv", undefined],
      ["GET", "pin", undefined],
      ["POST", "pin/verify", { pin: "0000" }],
    ] as const) {
      statuses.push((await h.call(method, `/v1/cards/${publicToken}/${path}`, body)).statusCode);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    expect((await h.call("GET", `/v1/cards/${other}/cvv`)).statusCode).toBe(200);
    // Routes that reveal nothing are not limited.
    expect((await h.call("GET", `/v1/cards/${publicToken}/cvv/status`)).statusCode).toBe(200);
  });

  it("dialect routes are limited like their native twins (per card, the dialect's error shape)", async () => {
    const doc = (await h.app.inject({ method: "GET", url: "/openapi.json" })).json() as {
      paths: Record<string, Record<string, { security?: { bearer: string[] }[] }>>;
    };
    const dialectReveal = Object.entries(doc.paths).find(
      ([path, ops]) => !path.startsWith("/v1/") && ops.get?.security?.[0]?.bearer[0] === "cvv:read",
    );
    if (!dialectReveal) return; // no dialect exposes a CVV read in this build
    const { publicToken } = await h.createCard();
    const url = dialectReveal[0].replace(/\{[^}]+\}/, publicToken);
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await h.call("GET", url)).statusCode);
    expect(statuses.at(-1)).toBe(429);
  });

  it("per tenant: once the tenant's window is used up every card is refused; other tenants are not", async () => {
    const cards = await Promise.all(Array.from({ length: 12 }, () => h.createCard()));
    let refused = 0;
    for (const { publicToken } of cards) {
      for (let i = 0; i < 4; i++) {
        const r = await h.call("GET", `/v1/cards/${publicToken}/cvv`);
        if (r.statusCode === 429) refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
    expect((await blockedAudits()).some((a) => a.limitedBy === "tenant" && a.tenant === "acme")).toBe(true);
    const globex = await h.token(undefined, "globex");
    const theirs = await h.createCard({ type: "virtual" }, globex);
    expect(
      (await h.call("GET", `/v1/cards/${theirs.publicToken}/cvv`, undefined, { token: globex })).statusCode,
    ).toBe(200);
  });

  it("holds across processes: two apps on one database share every window", async () => {
    const second = await secondApp();
    try {
      const token = await h.token(undefined, "globex");
      const { publicToken } = await h.createCard({ type: "virtual" }, token);
      const statuses = [];
      for (let i = 0; i < 7; i++) {
        const app = i % 2 === 0 ? h.app : second.app;
        const r = await app.inject({
          method: "GET",
          url: `/v1/cards/${publicToken}/pin`,
          headers: { authorization: `Bearer ${token}` },
        });
        statuses.push(r.statusCode);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
    } finally {
      await second.close();
    }
  });

  it("per tenant, two apps at once: the tenant's limit holds within one attempt per open transaction, every attempt counted", async () => {
    // 80 reads of 20 cards (4 each: under the card limit of 5) at once, half through each app: only the tenant's
    // limit of 40 can refuse them. SQLite has one writer: exactly 40 go through. On PostgreSQL the tenant's
    // count is spread over shard rows and an attempt does not see the counts of transactions still open on other
    // shards: at most one extra per open transaction, i.e. both pools' connections but the attempt's own
    // (docs/security.md). Forgetting the tenant's limit lets all 80 through.
    await h.runtime.services.tenants.add({ id: "initech", maxCvvTries: 99, maxPinTries: 99 });
    const token = await h.token(undefined, "initech");
    const cards = await Promise.all(
      Array.from({ length: 20 }, () => h.createCard({ type: "virtual" }, token)),
    );
    const second = await secondApp();
    // On SQLite the reads go through one app: two stores on one SQLite file in one process block each other's
    // event loop (one sleeps in busy_timeout on the thread while the other holds the write lock across an await),
    // which separate processes never do; SQLite's cross-process sharing is the sequential test above.
    const apps = h.runtime.store.kind === "postgres" ? [h.app, second.app] : [h.app];
    try {
      const read = (i: number) =>
        apps[i % apps.length]!.inject({
          method: "GET",
          url: `/v1/cards/${cards[i % cards.length]!.publicToken}/cvv`,
          headers: { authorization: `Bearer ${token}` },
        });
      const statuses = (await Promise.all(Array.from({ length: 80 }, (_, i) => read(i)))).map(
        (r) => r.statusCode,
      );
      expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
      const allowed = statuses.filter((s) => s === 200).length;
      const openTransactions = h.runtime.store.kind === "postgres" ? 2 * h.config.postgres.poolSize : 1;
      expect(allowed).toBeGreaterThanOrEqual(40);
      expect(allowed).toBeLessThanOrEqual(40 + openTransactions - 1);
      // Every attempt is counted once in the tenant's rows, the refused ones included.
      const rows = await h.runtime.store.db
        .selectFrom("rate_limits")
        .select(["bucket", "count"])
        .where((eb) => eb.or([eb("bucket", "=", "tenant:initech"), eb("bucket", "like", "tenant:initech#%")]))
        .execute();
      expect(rows.reduce((n, r) => n + Number(r.count), 0)).toBe(80);
      if (h.runtime.store.kind === "postgres") expect(rows.length).toBeGreaterThan(1);
      // From now on both apps refuse the tenant.
      for (const app of [h.app, second.app]) {
        const refused = await app.inject({
          method: "GET",
          url: `/v1/cards/${cards[0]!.publicToken}/cvv`,
          headers: { authorization: `Bearer ${token}` },
        });
        expect(refused.statusCode).toBe(429);
      }
    } finally {
      await second.close();
    }
  });

  it("malformed attempts are refused by validation before they are counted", async () => {
    const before = await h.runtime.store.db.selectFrom("rate_limits").selectAll().execute();
    const r = await h.call(
      "POST",
      "/v1/cards/123456789/cvv/verify",
      { cvv: "12x" },
      { token: await h.token(undefined, "globex") },
    );
    expect(r.statusCode).toBe(400);
    expect(await h.runtime.store.db.selectFrom("rate_limits").selectAll().execute()).toEqual(before);
  });
});
