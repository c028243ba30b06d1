import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixedClock } from "../src/lib/clock.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
const clock = fixedClock(new Date());
beforeAll(async () => {
  h = await createHarness({ clock });
});
afterAll(() => h.close());

const countCards = async () =>
  Number(
    (
      await h.runtime.store.db
        .selectFrom("cards")
        .select((eb) => eb.fn.countAll().as("n"))
        .executeTakeFirstOrThrow()
    ).n,
  );

describe("idempotency keys", () => {
  it("replays the first response to a retry with the same key and request, creating one card", async () => {
    const before = await countCards();
    const headers = { "idempotency-key": "create-1" };
    const first = await h.call("POST", "/v1/cards", { type: "virtual" }, { headers });
    const second = await h.call("POST", "/v1/cards", { type: "virtual" }, { headers });
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.json()).toEqual(first.json());
    expect(second.headers["idempotent-replayed"]).toBe("true");
    expect(await countCards()).toBe(before + 1);
  });

  it("accepts Thredd's IdempotencyKey spelling", async () => {
    const before = await countCards();
    const headers = { IdempotencyKey: "7f1c6a0e-4a59-4d4a-9d5e-0b5c0f0a1111" };
    const first = await h.call("POST", "/v1/cards", { type: "physical" }, { headers });
    const second = await h.call("POST", "/v1/cards", { type: "physical" }, { headers });
    expect(second.json().publicToken).toBe(first.json().publicToken);
    expect(await countCards()).toBe(before + 1);
  });

  it("refuses the same key with a different request (422) and changes nothing", async () => {
    const headers = { "idempotency-key": "create-2" };
    await h.call("POST", "/v1/cards", { type: "virtual" }, { headers });
    const before = await countCards();
    const other = await h.call("POST", "/v1/cards", { type: "physical" }, { headers });
    expect(other.statusCode).toBe(422);
    expect(other.json()).toMatchObject({ code: "idempotency_key_reused" });
    expect(await countCards()).toBe(before);
  });

  it("keys are per tenant", async () => {
    const headers = { "idempotency-key": "shared-key" };
    const a = await h.call("POST", "/v1/cards", { type: "virtual" }, { headers });
    const b = await h.call(
      "POST",
      "/v1/cards",
      { type: "virtual" },
      { headers, token: await h.token(undefined, "globex") },
    );
    expect(a.statusCode).toBe(201);
    expect(b.statusCode).toBe(201);
    expect(b.json().publicToken).not.toBe(a.json().publicToken);
  });

  it("a verification retried with its key is counted once", async () => {
    const { publicToken } = await h.createCard();
    const headers = { "idempotency-key": "verify-1" };
    const url = `/v1/cards/${publicToken}/cvv/verify`;
    const bodies = await Promise.all([1, 2, 3].map(() => h.call("POST", url, { cvv: "000" }, { headers })));
    const results = bodies.map((b) => b.json());
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    const status = (await h.call("GET", `/v1/cards/${publicToken}/cvv/status`)).json();
    expect(status.remainingTries).toBeGreaterThanOrEqual(2);
  });

  it("concurrent requests with one key create one card", async () => {
    const before = await countCards();
    const headers = { "idempotency-key": "race-1" };
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => h.call("POST", "/v1/cards", { type: "virtual" }, { headers })),
    );
    expect(responses.every((r) => r.statusCode === 201)).toBe(true);
    expect(new Set(responses.map((r) => r.json().publicToken)).size).toBe(1);
    expect(await countCards()).toBe(before + 1);
  });

  it("keeps keys for 24 hours, then lets them be used again", async () => {
    const headers = { "idempotency-key": "expiring" };
    const first = await h.call("POST", "/v1/cards", { type: "virtual" }, { headers });
    clock.advance(23 * 3_600_000);
    const retry = await h.call("POST", "/v1/cards", { type: "virtual" }, { headers, token: await h.token() });
    expect(retry.json().publicToken).toBe(first.json().publicToken);
    clock.advance(2 * 3_600_000);
    const later = await h.call("POST", "/v1/cards", { type: "virtual" }, { headers, token: await h.token() });
    expect(later.statusCode).toBe(201);
    expect(later.json().publicToken).not.toBe(first.json().publicToken);
  });

  it("rejects a malformed key", async () => {
    const response = await h.call(
      "POST",
      "/v1/cards",
      { type: "virtual" },
      {
        headers: { "idempotency-key": "x".repeat(300) },
        token: await h.token(),
      },
    );
    expect(response.statusCode).toBe(400);
  });

  it("does not keep a 409 concurrent_update: the retry with the same key goes through", async () => {
    const token = await h.token(); // at the clock's time (earlier tests moved it past the default token's life)
    const card = await h.createCard({ type: "virtual" }, token);
    const cards = h.runtime.repos.cards;
    const setCounter = cards.setCounter;
    // Every round of the unblock loses its guarded write, as under a storm of concurrent changes.
    cards.setCounter = async () => false;
    const headers = { "idempotency-key": "unblock-under-contention" };
    const url = `/v1/cards/${card.publicToken}/cvv/unblock`;
    try {
      const first = await h.call("POST", url, {}, { headers, token });
      expect(first.statusCode).toBe(409);
      expect(first.json().code).toBe("concurrent_update");
    } finally {
      cards.setCounter = setCounter;
    }
    const retry = await h.call("POST", url, {}, { headers, token });
    expect(retry.headers["idempotent-replayed"]).toBeUndefined();
    expect(retry.statusCode).toBe(204);
  });

  it("scopes a key to its caller: another subject of the tenant with the same key gets its own answer", async () => {
    const alice = await h.token(undefined, "acme", "alice");
    const bob = await h.token(undefined, "acme", "bob");
    const headers = { "idempotency-key": "same-key-two-callers" };
    const first = await h.call("POST", "/v1/cards", { type: "virtual" }, { headers, token: alice });
    const second = await h.call("POST", "/v1/cards", { type: "virtual" }, { headers, token: bob });
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(201);
    expect(second.headers["idempotent-replayed"]).toBeUndefined();
    expect(second.json().publicToken).not.toBe(first.json().publicToken);
    const again = await h.call("POST", "/v1/cards", { type: "virtual" }, { headers, token: alice });
    expect(again.headers["idempotent-replayed"]).toBe("true");
    expect(again.json().publicToken).toBe(first.json().publicToken);
  });
});
