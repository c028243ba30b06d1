// Try counters under concurrency, over a real HTTP port: 50 wrong verifications at once against a card with
// 3 tries count exactly 3 mismatches; the rest answer blocked.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wrongCvv } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
let base: string;
beforeAll(async () => {
  h = await createHarness();
  await h.app.listen({ host: "127.0.0.1", port: 0 });
  const address = h.app.server.address();
  base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});
afterAll(() => h.close());

async function burst(path: string, body: unknown, n: number) {
  const token = await h.token();
  const responses = await Promise.all(
    Array.from({ length: n }, () =>
      fetch(`${base}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { result: string; remainingTries: number },
      })),
    ),
  );
  return responses;
}

describe("concurrent wrong tries", () => {
  it("CVV: 50 at once against max 3 → exactly 3 mismatches, 47 blocked, status Blocked with 0 left", async () => {
    const { publicToken } = await h.createCard();
    const responses = await burst(
      `/v1/cards/${publicToken}/cvv/verify`,
      { cvv: await wrongCvv(h, publicToken) },
      50,
    );
    expect(responses.every((r) => r.status === 200)).toBe(true);
    const results = responses.map((r) => r.body.result);
    expect(results.filter((r) => r === "mismatch")).toHaveLength(3);
    expect(results.filter((r) => r === "blocked")).toHaveLength(47);
    expect(
      responses
        .filter((r) => r.body.result === "mismatch")
        .map((r) => r.body.remainingTries)
        .sort(),
    ).toEqual([0, 1, 2]);
    expect((await h.call("GET", `/v1/cards/${publicToken}/cvv/status`)).json()).toEqual({
      status: "Blocked",
      remainingTries: 0,
      maxTries: 3,
    });
    const audited = await h.runtime.store.db
      .selectFrom("audit_events")
      .select("outcome")
      .where("public_token", "=", publicToken)
      .where("action", "=", "cvv.verify")
      .execute();
    expect(audited.filter((a) => a.outcome === "mismatch")).toHaveLength(3);
    expect(audited.filter((a) => a.outcome === "blocked")).toHaveLength(47);
  });

  it("PIN: the same", async () => {
    const { publicToken } = await h.createCard();
    await h.call("PUT", `/v1/cards/${publicToken}/pin`, { pin: "4321" });
    const responses = await burst(`/v1/cards/${publicToken}/pin/verify`, { pin: "0000" }, 50);
    const results = responses.map((r) => r.body.result);
    expect(results.filter((r) => r === "mismatch")).toHaveLength(3);
    expect(results.filter((r) => r === "blocked")).toHaveLength(47);
    expect((await h.call("GET", `/v1/cards/${publicToken}/pin/status`)).json()).toMatchObject({
      status: "Blocked",
      remainingTries: 0,
    });
  });
});
