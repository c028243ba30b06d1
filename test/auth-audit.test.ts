// Refused requests in the audit log (issue 13, item 18): every 401 and 403 of authentication or authorisation
// is counted per caller and minute and written as one row with the count — in the tenant's log when the token
// verified in a registered tenant, in the operator's (no tenant) otherwise — never with the token in it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/http/app.js";
import { createTokenVerifier, mintToken } from "../src/http/auth.js";
import { fixedClock } from "../src/lib/clock.js";
import { REFUSED_CALLERS_PER_MINUTE } from "../src/services/audit.js";
import { createHarness, type Harness, TEST_JWT_SECRET } from "./helpers/harness.js";

const T0 = "2026-06-01T09:30:05.000Z";
const MINUTE = "2026-06-01T09:30:00.000Z";
const clock = fixedClock(T0);
let h: Harness;
beforeAll(async () => {
  h = await createHarness({ clock });
});
afterAll(() => h.close());

const CARD_URL = "/v1/cards/123456789";

function get(url: string, init: { bearer?: string; from?: string } = {}) {
  return h.app.inject({
    method: "GET",
    url,
    remoteAddress: init.from ?? "192.0.2.1",
    headers: init.bearer === undefined ? {} : { authorization: `Bearer ${init.bearer}` },
  });
}

const tokenFor = (options: {
  tenant?: string;
  subject?: string;
  scopes?: string[];
  ttlSeconds?: number;
  secret?: string;
}) =>
  mintToken({
    secret: options.secret ?? TEST_JWT_SECRET,
    tenantId: options.tenant ?? "acme",
    scopes: options.scopes ?? ["cards:read"],
    subject: options.subject ?? "test-user",
    ttlSeconds: options.ttlSeconds ?? 3600,
    tenantClaim: "tenant",
    clock,
  });

interface Row {
  tenant_id: string | null;
  actor: string;
  action: string;
  outcome: string;
  request_id: string | null;
  details: Record<string, unknown>;
}

/** Writes what is counted, then every refusal row, in order. */
async function refusalRows(): Promise<Row[]> {
  await h.runtime.services.refusals.flush();
  const rows = await h.runtime.store.db
    .selectFrom("audit_events")
    .selectAll()
    .where("action", "=", "auth.refused")
    .orderBy("id")
    .execute();
  return rows.map((r) => ({ ...r, details: JSON.parse(r.details ?? "{}") as Record<string, unknown> }));
}

async function clearRefusals() {
  await h.runtime.services.refusals.flush();
  await h.runtime.store.db.deleteFrom("audit_events").where("action", "=", "auth.refused").execute();
}

describe("refused requests are audited (Hardening II, item 18)", () => {
  it("bad, expired, wrongly signed or missing tokens: one operator row per client address and minute, with the count", async () => {
    await clearRefusals();
    const expired = await tokenFor({ ttlSeconds: -120 });
    const forged = await tokenFor({ secret: "another-secret-that-is-long-enough-for-hs256" });
    const unsigned = `${expired.split(".").slice(0, 2).join(".")}.`;
    for (let i = 0; i < 5; i++) expect((await get(CARD_URL)).statusCode).toBe(401);
    for (const bearer of ["not-a-jwt", expired, forged]) {
      expect((await get(CARD_URL, { bearer })).statusCode).toBe(401);
    }
    for (const bearer of [forged, unsigned]) {
      expect((await get(CARD_URL, { bearer, from: "2001:db8::7" })).statusCode).toBe(401);
    }

    const rows = await refusalRows();
    expect(rows.map((r) => [r.tenant_id, r.actor, r.outcome, r.details])).toEqual([
      [null, "client:192.0.2.1", "unauthorized", { count: 5, minute: MINUTE, reason: "no_token" }],
      [null, "client:192.0.2.1", "unauthorized", { count: 3, minute: MINUTE, reason: "token_refused" }],
      [null, "client:2001:db8::7", "unauthorized", { count: 2, minute: MINUTE, reason: "token_refused" }],
    ]);
    expect(rows.every((r) => r.request_id !== null)).toBe(true);
    // No token, and no part of one, in any row.
    const written = JSON.stringify(rows);
    for (const token of [expired, forged, unsigned]) {
      for (const part of token.split(".").filter(Boolean)) expect(written).not.toContain(part);
    }
  });

  it("a verified token that lacks the scope: a row per subject, minute and scope in the tenant's log, readable there", async () => {
    await clearRefusals();
    const limited = await tokenFor({ subject: "support-desk", scopes: ["cards:read"] });
    for (let i = 0; i < 4; i++)
      expect((await get(`${CARD_URL}/cvv`, { bearer: limited })).statusCode).toBe(403);
    expect((await get(`${CARD_URL}/pin`, { bearer: limited })).statusCode).toBe(403);

    expect((await refusalRows()).map((r) => [r.tenant_id, r.actor, r.outcome, r.details])).toEqual([
      ["acme", "support-desk", "forbidden", { count: 4, minute: MINUTE, scope: "cvv:read" }],
      ["acme", "support-desk", "forbidden", { count: 1, minute: MINUTE, scope: "pin:read" }],
    ]);
    const acme = (await h.call("GET", "/v1/audit-events?limit=100")).json() as {
      items: { action: string; actor: string; outcome: string; details: Record<string, unknown> }[];
    };
    expect(acme.items.filter((e) => e.action === "auth.refused")).toEqual([
      expect.objectContaining({
        actor: "support-desk",
        outcome: "forbidden",
        details: expect.objectContaining({ count: 4 }),
      }),
      expect.objectContaining({
        actor: "support-desk",
        outcome: "forbidden",
        details: expect.objectContaining({ count: 1 }),
      }),
    ]);
    const globex = (
      await h.call("GET", "/v1/audit-events", undefined, { token: await h.token(undefined, "globex") })
    ).json();
    expect(globex.items).toEqual([]);
  });

  it("a verified token of an unregistered tenant: an operator row naming the subject and the tenant it claimed", async () => {
    await clearRefusals();
    const stranger = await tokenFor({ tenant: "initech", subject: "svc-initech", scopes: ["cards:read"] });
    for (let i = 0; i < 3; i++) expect((await get(CARD_URL, { bearer: stranger })).statusCode).toBe(403);
    expect((await refusalRows()).map((r) => [r.tenant_id, r.actor, r.outcome, r.details])).toEqual([
      [null, "svc-initech", "unknown_tenant", { count: 3, minute: MINUTE, tenant: "initech" }],
    ]);
    expect(await h.runtime.services.audit.list(null, { limit: 10 })).toMatchObject({
      items: [{ actor: "svc-initech", outcome: "unknown_tenant" }],
    });
  });

  it("counts per minute: a minute's counts are written once it is over; a caller refused in two minutes has two rows", async () => {
    await clearRefusals();
    await get(CARD_URL);
    expect(await h.runtime.services.refusals.flushEnded()).toBe(0); // the minute is not over
    clock.advance(60_000);
    await get(CARD_URL);
    await get(CARD_URL);
    expect(await h.runtime.services.refusals.flushEnded()).toBe(1); // the first minute's row
    const rows = await refusalRows();
    expect(rows.map((r) => [r.actor, r.details.minute, r.details.count])).toEqual([
      ["client:192.0.2.1", MINUTE, 1],
      ["client:192.0.2.1", "2026-06-01T09:31:00.000Z", 2],
    ]);
    clock.set(T0);
  });

  it("a flood does not amplify writes: 1,500 bad requests from one address are one row; from 1,500 addresses a bounded number", async () => {
    await clearRefusals();
    const N = 1500;
    for (let i = 0; i < N; i++) await get(CARD_URL, { bearer: "garbage" });
    expect((await refusalRows()).map((r) => r.details.count)).toEqual([N]);

    await clearRefusals();
    for (let i = 0; i < N; i++)
      await get(CARD_URL, { bearer: "garbage", from: `198.51.${i >> 8}.${i & 255}` });
    const rows = await refusalRows();
    expect(rows.length).toBe(REFUSED_CALLERS_PER_MINUTE + 1);
    expect(rows.reduce((sum, r) => sum + Number(r.details.count), 0)).toBe(N);
    expect(rows.at(-1)).toMatchObject({
      actor: "(other callers)",
      details: { count: N - REFUSED_CALLERS_PER_MINUTE },
    });
  });

  it("what is counted is written when the app closes", async () => {
    await clearRefusals();
    const app = await buildApp({
      services: h.runtime.services,
      idempotency: h.runtime.repos.idempotency,
      verifier: createTokenVerifier({ ...h.config.auth, hs256Secret: TEST_JWT_SECRET }, clock),
      store: h.runtime.store,
      keys: h.runtime.keys,
      clock,
      bodyLimitBytes: h.config.bodyLimitBytes,
      idempotencyTtlHours: h.config.idempotencyTtlHours,
      apiDocs: false,
      publicUrl: h.config.publicUrl,
    });
    await app.inject({ method: "GET", url: CARD_URL, remoteAddress: "203.0.113.9" });
    await app.close();
    const rows = await h.runtime.store.db
      .selectFrom("audit_events")
      .select("actor")
      .where("action", "=", "auth.refused")
      .execute();
    expect(rows).toEqual([{ actor: "client:203.0.113.9" }]);
  });
});
