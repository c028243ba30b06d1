import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

describe("audit events", () => {
  it("records actor, action, outcome, card and request id for reads and changes, paged by cursor", async () => {
    const card = await h.createCard();
    await h.call("GET", `/v1/cards/${card.publicToken}/cvv`, undefined, {
      headers: { "x-request-id": "req-cvv-read-1" },
    });
    await h.call("GET", `/v1/cards/${card.publicToken}/pin`);
    await h.call("POST", `/v1/cards/${card.publicToken}/pin/unblock`, {
      updatedBy: "Jane Ops",
      description: "called in",
    });

    const seen: {
      action: string;
      outcome: string;
      actor: string;
      publicToken: string | null;
      requestId: string | null;
      details: Record<string, unknown> | null;
    }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await h.call("GET", `/v1/audit-events?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(response.statusCode).toBe(200);
      const page = response.json() as { items: typeof seen; nextCursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items);
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(2);
    expect(seen.map((e) => e.action)).toEqual(["card.create", "cvv.read", "pin.read", "pin.unblock"]);
    expect(seen[1]).toMatchObject({
      actor: "test-user",
      outcome: "success",
      publicToken: card.publicToken,
      requestId: "req-cvv-read-1",
    });
    expect(seen[3]?.details).toMatchObject({ updatedBy: "Jane Ops", description: "called in" });
  });

  it("shows a tenant only its own events", async () => {
    const response = await h.call("GET", "/v1/audit-events", undefined, {
      token: await h.token(undefined, "globex"),
    });
    expect(response.json()).toEqual({ items: [], nextCursor: null });
  });

  it("rejects a bad cursor or limit", async () => {
    expect((await h.call("GET", "/v1/audit-events?limit=0")).statusCode).toBe(400);
    expect((await h.call("GET", "/v1/audit-events?limit=101")).statusCode).toBe(400);
    expect((await h.call("GET", "/v1/audit-events?cursor=zzz")).statusCode).toBe(400);
    expect((await h.call("GET", "/v1/audit-events?other=1")).statusCode).toBe(400);
  });
});
