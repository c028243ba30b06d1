// What each card status allows on every path (domain/card.ts lifeCycle; docs/api.md "What each card status
// allows"), through the HTTP API on the native routes and a dialect's: a suspended card's secrets are frozen
// (no verify, read or Get Card Data) while its CVV keeps rotating and the program can still manage it; a
// closed card allows nothing; and a CVV or PIN whose try counter is Blocked is not handed out on any path.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSessionKey, importWrapKey, type WebCryptoKey } from "../src/client/secure-data.js";
import { expectedCvv, wrongCvv } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
let wrapKey: WebCryptoKey;
beforeAll(async () => {
  h = await createHarness({ secureDataPin: ["acme"] });
  const keys = (await h.call("GET", "/v1/secure-data/keys")).json().keys as {
    use: string;
    jwk: Parameters<typeof importWrapKey>[0];
  }[];
  wrapKey = await importWrapKey(keys.find((k) => k.use === "wrap")!.jwk);
});
afterAll(() => h.close());

const getCardData = async (t: string) =>
  h.call("POST", `/v1/cards/${t}/secure-data`, { key: (await createSessionKey(wrapKey)).key });

/** The answer of every path on a card, as status code and problem code. */
async function paths(t: string, cvv: string) {
  const answers = {
    verify: await h.call("POST", `/v1/cards/${t}/cvv/verify`, { cvv }),
    threddRead: await h.call("GET", `/api/v1/cards/${t}/cvv`),
    pinVerify: await h.call("POST", `/v1/cards/${t}/pin/verify`, { pin: "1234" }),
    read: await h.call("GET", `/v1/cards/${t}/cvv`),
    pinRead: await h.call("GET", `/v1/cards/${t}/pin`),
    secureData: await getCardData(t),
    reveal: await h.call("POST", `/v1/cards/${t}/reveal-sessions`, {
      fields: ["pan"],
      targetOrigin: "https://app.example",
    }),
    rotate: await h.call("POST", `/v1/cards/${t}/cvv/rotate`, {}),
    unblock: await h.call("POST", `/v1/cards/${t}/cvv/unblock`, {}),
  };
  return Object.fromEntries(
    Object.entries(answers).map(([path, r]) => [
      path,
      r.statusCode < 300
        ? r.statusCode
        : `${r.statusCode} ${r.json().code ?? r.json().errorCode ?? ""}`.trim(),
    ]),
  );
}

describe("what each card status allows", () => {
  it("active and inactive: every path", async () => {
    for (const status of ["active", "inactive"]) {
      const { publicToken: t } = await h.createCard({ type: "virtual", status });
      const answers = await paths(t, await expectedCvv(h, t));
      expect(answers, status).toEqual({
        verify: 200,
        threddRead: 200,
        pinVerify: 200,
        read: 200,
        pinRead: 200,
        secureData: 200,
        reveal: 201,
        rotate: 200,
        unblock: 204,
      });
    }
  });

  it("suspended: no verify, read, Get Card Data or reveal (409 card_blocked, no try used); rotation and unblock go on", async () => {
    const { publicToken: t } = await h.createCard({ type: "virtual" });
    const cvv = await expectedCvv(h, t);
    expect((await h.call("PATCH", `/v1/cards/${t}`, { status: "suspended" })).statusCode).toBe(200);
    const answers = await paths(t, cvv);
    expect(answers).toMatchObject({
      verify: "409 card_blocked",
      pinVerify: "409 card_blocked",
      read: "409 card_blocked",
      pinRead: "409 card_blocked",
      secureData: "409 card_blocked",
      reveal: "409 card_blocked",
      rotate: 200,
      unblock: 204,
    });
    expect(answers.threddRead).toMatch(/^409/);
    expect((await h.call("GET", `/v1/cards/${t}/cvv/status`)).json()).toMatchObject({ remainingTries: 3 });
    // Active again, the card verifies its (rotated) CVV.
    expect((await h.call("PATCH", `/v1/cards/${t}`, { status: "active" })).statusCode).toBe(200);
    const now = await expectedCvv(h, t);
    expect((await h.call("POST", `/v1/cards/${t}/cvv/verify`, { cvv: now })).json()).toMatchObject({
      result: "match",
    });
  });

  it("closed: nothing (409 card_closed)", async () => {
    const { publicToken: t } = await h.createCard({ type: "virtual" });
    const cvv = await expectedCvv(h, t);
    expect((await h.call("PATCH", `/v1/cards/${t}`, { status: "closed" })).statusCode).toBe(200);
    const answers = await paths(t, cvv);
    for (const [path, answer] of Object.entries(answers)) {
      if (path !== "threddRead") expect(answer, path).toBe("409 card_closed");
    }
  });
});

describe("a Blocked secret is not handed out", () => {
  it("a CVV blocked by wrong tries is not read or delivered by Get Card Data until unblocked", async () => {
    const { publicToken: t } = await h.createCard({ type: "virtual" });
    const wrong = await wrongCvv(h, t);
    for (let i = 0; i < 3; i++) await h.call("POST", `/v1/cards/${t}/cvv/verify`, { cvv: wrong });
    expect((await h.call("GET", `/v1/cards/${t}/cvv/status`)).json()).toMatchObject({ status: "Blocked" });

    const read = await h.call("GET", `/v1/cards/${t}/cvv`);
    expect(read.statusCode).toBe(409);
    expect(read.json()).toMatchObject({ code: "cvv_blocked" });
    const delivered = await getCardData(t);
    expect(delivered.statusCode).toBe(409);
    expect(delivered.json()).toMatchObject({ code: "cvv_blocked" });
    expect((await h.call("GET", `/api/v1/cards/${t}/cvv`)).statusCode).toBe(409);
    // The PIN, not blocked, is still read.
    expect((await h.call("GET", `/v1/cards/${t}/pin`)).statusCode).toBe(200);

    expect((await h.call("POST", `/v1/cards/${t}/cvv/unblock`, {})).statusCode).toBe(204);
    expect((await h.call("GET", `/v1/cards/${t}/cvv`)).statusCode).toBe(200);
    expect((await getCardData(t)).statusCode).toBe(200);
  });

  it("a PIN blocked by wrong tries is not read, nor delivered where the tenant delivers PINs", async () => {
    const { publicToken: t } = await h.createCard({ type: "virtual" });
    expect((await h.call("PUT", `/v1/cards/${t}/pin`, { pin: "1234" })).statusCode).toBe(204);
    for (let i = 0; i < 3; i++) await h.call("POST", `/v1/cards/${t}/pin/verify`, { pin: "0000" });
    expect((await h.call("GET", `/v1/cards/${t}/pin/status`)).json()).toMatchObject({ status: "Blocked" });
    expect((await h.call("GET", `/v1/cards/${t}/pin`)).json()).toMatchObject({ code: "pin_blocked" });
    expect((await getCardData(t)).json()).toMatchObject({ code: "pin_blocked" });
    expect((await h.call("POST", `/v1/cards/${t}/pin/unblock`, {})).statusCode).toBe(204);
    expect((await getCardData(t)).statusCode).toBe(200);
  });
});
