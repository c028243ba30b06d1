import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditActions, expectedCvv, wrongCvv } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

describe("CVV", () => {
  it("reads the CVV derived from the card's PAN, expiry and service code under the CVK, and audits the read", async () => {
    const card = await h.createCard();
    const response = await h.call("GET", `/v1/cards/${card.publicToken}/cvv`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ cvv: await expectedCvv(h, card.publicToken) });
    expect(await auditActions(h, card.publicToken)).toEqual(["card.create:success", "cvv.read:success"]);
  });

  it("starts Unblocked with the tenant's maximum", async () => {
    const card = await h.createCard();
    const response = await h.call("GET", `/v1/cards/${card.publicToken}/cvv/status`);
    expect(response.json()).toEqual({ status: "Unblocked", remainingTries: 3, maxTries: 3 });
  });

  it("counts wrong tries down to Blocked, then answers blocked even to the right CVV until unblocked", async () => {
    const card = await h.createCard();
    const t = card.publicToken;
    const right = await expectedCvv(h, t);
    const wrong = await wrongCvv(h, t);
    const verify = async (cvv: string) => (await h.call("POST", `/v1/cards/${t}/cvv/verify`, { cvv })).json();

    expect(await verify(wrong)).toEqual({ result: "mismatch", status: "Unblocked", remainingTries: 2 });
    expect(await verify(right)).toEqual({ result: "match", status: "Unblocked", remainingTries: 3 });
    expect(await verify(wrong)).toEqual({ result: "mismatch", status: "Unblocked", remainingTries: 2 });
    expect(await verify(wrong)).toEqual({ result: "mismatch", status: "Unblocked", remainingTries: 1 });
    expect(await verify(wrong)).toEqual({ result: "mismatch", status: "Blocked", remainingTries: 0 });
    expect(await verify(right)).toEqual({ result: "blocked", status: "Blocked", remainingTries: 0 });
    expect((await h.call("GET", `/v1/cards/${t}/cvv/status`)).json()).toEqual({
      status: "Blocked",
      remainingTries: 0,
      maxTries: 3,
    });

    const unblock = await h.call("POST", `/v1/cards/${t}/cvv/unblock`, {
      description: "cardholder called",
      updatedBy: "agent 7",
    });
    expect(unblock.statusCode).toBe(204);
    expect(unblock.body).toBe("");
    expect((await h.call("GET", `/v1/cards/${t}/cvv/status`)).json()).toMatchObject({
      status: "Unblocked",
      remainingTries: 3,
    });
    expect(await verify(right)).toEqual({ result: "match", status: "Unblocked", remainingTries: 3 });

    const actions = await auditActions(h, t);
    expect(actions.filter((a) => a.startsWith("cvv.verify"))).toEqual([
      "cvv.verify:mismatch",
      "cvv.verify:match",
      "cvv.verify:mismatch",
      "cvv.verify:mismatch",
      "cvv.verify:mismatch",
      "cvv.verify:blocked",
      "cvv.verify:match",
    ]);
    const unblockRow = await h.runtime.store.db
      .selectFrom("audit_events")
      .selectAll()
      .where("action", "=", "cvv.unblock")
      .where("public_token", "=", t)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(unblockRow.details!)).toMatchObject({
      description: "cardholder called",
      updatedBy: "agent 7",
    });

    const events = await h.runtime.repos.outbox.list("acme");
    const types = events.filter((e) => e.payload.includes(t)).map((e) => e.type);
    expect(types).toEqual(["card.created", "cvv.blocked", "cvv.unblocked"]);
  });

  it("unblocks without a body and at any time", async () => {
    const card = await h.createCard();
    const response = await h.call("POST", `/v1/cards/${card.publicToken}/cvv/unblock`);
    expect(response.statusCode).toBe(204);
  });

  it("rejects a CVV that is not three digits with a field error and counts nothing", async () => {
    const card = await h.createCard();
    for (const cvv of ["12", "1234", "12a", 123, null, ""]) {
      const response = await h.call("POST", `/v1/cards/${card.publicToken}/cvv/verify`, { cvv });
      expect(response.statusCode, String(cvv)).toBe(400);
      expect(response.headers["content-type"]).toMatch(/application\/problem\+json/);
      expect(response.json()).toMatchObject({
        status: 400,
        code: "validation_failed",
        errors: { cvv: expect.any(Array) },
      });
    }
    expect((await h.call("GET", `/v1/cards/${card.publicToken}/cvv/status`)).json()).toMatchObject({
      remainingTries: 3,
    });
  });

  it("answers 409 for every CVV operation on a closed card", async () => {
    const card = await h.createCard();
    await h.call("PATCH", `/v1/cards/${card.publicToken}`, { status: "closed" });
    const t = card.publicToken;
    for (const [method, url, body] of [
      ["GET", `/v1/cards/${t}/cvv`, undefined],
      ["GET", `/v1/cards/${t}/cvv/status`, undefined],
      ["POST", `/v1/cards/${t}/cvv/verify`, { cvv: "123" }],
      ["POST", `/v1/cards/${t}/cvv/unblock`, {}],
    ] as const) {
      const response = await h.call(method, url, body);
      expect(response.statusCode, url).toBe(409);
      expect(response.json()).toMatchObject({ code: "card_closed" });
    }
  });
});
