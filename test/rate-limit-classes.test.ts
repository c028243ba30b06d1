// The rate-limit classes beyond the shared verify budget: Get Card Data counts in a per-tenant bucket of its
// own (each costs an RSA private-key operation), and unblocks and on-demand rotations count per card per day
// (each hands a guesser fresh tries), on the native routes and the vendor dialects alike. A block is never
// limited. Ended windows are purged a bounded batch at a time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSessionKey, importWrapKey, type WebCryptoKey } from "../src/client/secure-data.js";
import { wrongCvv } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
let wrapKey: WebCryptoKey;
beforeAll(async () => {
  h = await createHarness({
    env: {
      CARDVAULT_RATE_LIMIT_PER_CARD: "100",
      CARDVAULT_RATE_LIMIT_PER_TENANT: "1000",
      CARDVAULT_RATE_LIMIT_WINDOW_SECONDS: "3600",
      CARDVAULT_RATE_LIMIT_SECURE_DATA_PER_TENANT: "3",
    },
  });
  const keys = (await h.call("GET", "/v1/secure-data/keys")).json().keys as {
    use: string;
    jwk: Parameters<typeof importWrapKey>[0];
  }[];
  wrapKey = await importWrapKey(keys.find((k) => k.use === "wrap")!.jwk);
});
afterAll(() => h.close());

async function refusals(action = "rate_limit.blocked") {
  const rows = await h.runtime.store.db
    .selectFrom("audit_events")
    .select(["details"])
    .where("action", "=", action)
    .execute();
  return rows.map((r) => JSON.parse(r.details ?? "{}") as Record<string, unknown>);
}

describe("secure-data: a per-tenant bucket of its own", () => {
  it("the tenant's 4th Get Card Data in the window is refused (garbage keys count too); its verifies and other tenants go on", async () => {
    const cards = await Promise.all(Array.from({ length: 4 }, () => h.createCard({ type: "virtual" })));
    const garbage = { key: Buffer.alloc(512, 7).toString("base64") };
    const statuses = [];
    statuses.push(
      (await h.call("POST", `/v1/cards/${cards[0]!.publicToken}/secure-data`, garbage)).statusCode,
    );
    statuses.push(
      (await h.call("POST", `/v1/cards/${cards[1]!.publicToken}/secure-data`, garbage)).statusCode,
    );
    const good = async (token: string, bearer?: string) =>
      h.call(
        "POST",
        `/v1/cards/${token}/secure-data`,
        { key: (await createSessionKey(wrapKey)).key },
        { token: bearer },
      );
    statuses.push((await good(cards[2]!.publicToken)).statusCode);
    const refused = await good(cards[3]!.publicToken);
    statuses.push(refused.statusCode);
    expect(statuses).toEqual([400, 400, 200, 429]);
    expect(refused.json()).toMatchObject({ code: "rate_limited" });
    expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    expect((await refusals()).filter((a) => a.kind === "secure-data")).toMatchObject([
      { limitedBy: "tenant", limit: 3, windowSeconds: 3600 },
    ]);

    // The tenant's own verifies are not in that bucket, and another tenant's Get Card Data is untouched.
    const cvv = await wrongCvv(h, cards[3]!.publicToken);
    expect((await h.call("POST", `/v1/cards/${cards[3]!.publicToken}/cvv/verify`, { cvv })).statusCode).toBe(
      200,
    );
    const globex = await h.token(undefined, "globex");
    const theirs = await h.createCard({ type: "virtual" }, globex);
    expect((await good(theirs.publicToken, globex)).statusCode).toBe(200);
  });
});

describe("manage: unblocks and on-demand rotations per card per day", () => {
  it("the 6th unblock of a card in a day is refused with 429 and a Retry-After of up to a day, on every path", async () => {
    const { publicToken } = await h.createCard({ type: "virtual" });
    const other = await h.createCard({ type: "virtual" });
    const unblocks = [
      () => h.call("POST", `/v1/cards/${publicToken}/cvv/unblock`, {}),
      () => h.call("POST", `/v1/cards/${publicToken}/pin/unblock`, {}),
      () => h.call("PUT", `/api/v1/cards/${publicToken}/cvv/status`, { status: "Unblocked" }),
      () => h.call("POST", `/api/v1/cards/${publicToken}/cvv`, {}),
      () => h.call("POST", `/thr/thredd/card-pin/${publicToken}/pin/unblock`, {}),
    ];
    const statuses = [];
    for (const unblock of unblocks) statuses.push((await unblock()).statusCode);
    expect(statuses).toEqual([204, 204, 204, 204, 204]);

    const refused = await h.call("POST", `/v1/cards/${publicToken}/cvv/unblock`, {});
    expect(refused.statusCode).toBe(429);
    const retryAfter = Number(refused.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    // A rotation on demand shares the bucket: it hands out a fresh CVV as an unblock hands out fresh tries.
    expect((await h.call("POST", `/v1/cards/${publicToken}/cvv/rotate`, {})).statusCode).toBe(429);
    expect((await h.call("POST", `/pismo/v2/cards/${publicToken}/reset-cvv`, {})).statusCode).toBe(429);
    expect(
      (await refusals()).filter((a) => a.kind === "manage" && a.publicToken === publicToken),
    ).toMatchObject([
      { limitedBy: "card", limit: 5, windowSeconds: 86_400 },
      { limitedBy: "card", limit: 5, windowSeconds: 86_400 },
      { limitedBy: "card", limit: 5, windowSeconds: 86_400 },
    ]);

    // A block is a safety action: never refused for being frequent. Another card's unblocks are its own.
    expect(
      (await h.call("PUT", `/api/v1/cards/${publicToken}/cvv/status`, { status: "Blocked" })).statusCode,
    ).toBe(204);
    expect((await h.call("GET", `/v1/cards/${publicToken}/cvv/status`)).json()).toMatchObject({
      status: "Blocked",
    });
    expect((await h.call("POST", `/v1/cards/${other.publicToken}/cvv/rotate`, {})).statusCode).toBe(200);
    expect((await h.call("POST", `/v1/cards/${other.publicToken}/cvv/unblock`, {})).statusCode).toBe(204);
  });
});

describe("ended windows", () => {
  it("are purged a bounded batch at a time; windows in progress stay", async () => {
    const repo = h.runtime.repos.rateLimits;
    const db = h.runtime.store.db;
    const ended = Array.from({ length: 5 }, (_, i) => ({
      bucket: `test:ended:${i}`,
      windowStart: "2020-01-01T00:00:00.000Z",
      windowEnd: "2020-01-01T00:01:00.000Z",
    }));
    await repo.increment(ended);
    await repo.increment([
      { bucket: "test:live", windowStart: "2020-01-01T00:00:00.000Z", windowEnd: "2999-01-01T00:00:00.000Z" },
    ]);
    const left = async () =>
      (await db.selectFrom("rate_limits").select("bucket").where("bucket", "like", "test:%").execute()).map(
        (r) => r.bucket,
      );
    const now = new Date().toISOString();
    expect(await repo.purgeExpired(now, 2)).toBe(2);
    expect(await left()).toHaveLength(4);
    expect(await repo.purgeExpired(now, 2)).toBe(2);
    expect(await repo.purgeExpired(now, 2)).toBe(1);
    expect(await repo.purgeExpired(now, 2)).toBe(0);
    expect(await left()).toEqual(["test:live"]);
  });
});
