// The Payblr PSP dialect at /thr/thredd: the seed's flows on exactly the seed's paths (card-cvv/…,
// card-pin/…), Create Card answering 201, CVV status with remaining tries, the unblocks resetting the counters
// to their maximum, Get Card Data, and Thredd's error shape (Payblr passes Thredd's through).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createSessionKey,
  importSigningKey,
  importWrapKey,
  openCardData,
  type PublishedKey,
  threddCardDataRequest,
} from "../../src/client/secure-data.js";
import { isLuhnValid } from "../../src/crypto/luhn.js";
import { expectedCvv, wrongCvv } from "../helpers/card-secrets.js";
import { createHarness, type Harness } from "../helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness({ maxCvvTries: 4, maxPinTries: 3 });
});
afterAll(() => h.close());

const base = "/thr/thredd";

async function createPayblrCard(overrides: Record<string, unknown> = {}) {
  const response = await h.call("POST", `${base}/cards`, {
    cardType: "Virtual",
    cardHolder: { firstName: "Ada", lastName: "Lovelace" },
    ...overrides,
  });
  expect(response.statusCode, response.body).toBe(201);
  return response.json() as {
    publicToken: string;
    maskedPan: string;
    expiryDate: string;
    embossName: string;
  };
}

describe("Payblr: cards", () => {
  it("POST /cards answers 201 with the Thredd create-card fields; GET /cards/{t} and GET|PUT …/status work", async () => {
    const card = await createPayblrCard({ customerReference: "ref-1" });
    expect(card).toMatchObject({ embossName: "Ada Lovelace", customerReference: "ref-1" });
    const t = card.publicToken;
    expect((await h.call("GET", `${base}/cards/${t}`)).json()).toMatchObject({
      publicToken: t,
      cardStatusCode: "00",
    });

    const status = await h.call("GET", `${base}/cards/${t}/status`);
    expect(status.statusCode).toBe(200);
    expect(status.json()).toMatchObject({
      status: "Active",
      cardStatusCode: "00",
      cardStatusDescription: "00 (Active)",
    });
    const put = await h.call("PUT", `${base}/cards/${t}/status`, { cardStatusCode: "02", updatedBy: "ops" });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({ status: "Inactive", cardStatusCode: "02", updatedBy: "ops" });
    expect((await h.call("PUT", `${base}/cards/${t}/status`, { cardStatusCode: "00" })).json()).toMatchObject(
      { status: "Active" },
    );
  });

  it("refuses a cardholder name with NUL, CR/LF or a bidi override: 400 (Hardening II)", async () => {
    for (const lastName of ["Love\u0000lace", "Lovelace\r\n", "\u202eLovelace"]) {
      const response = await h.call("POST", `${base}/cards`, {
        cardType: "Virtual",
        cardHolder: { firstName: "Ada", lastName },
      });
      expect(response.statusCode, JSON.stringify(lastName)).toBe(400);
      expect(response.body).toContain("cardHolder");
    }
  });

  it("physical cards start inactive unless activateNow is true", async () => {
    const { publicToken } = await createPayblrCard({ cardType: "Physical" });
    expect((await h.call("GET", `${base}/cards/${publicToken}/status`)).json()).toMatchObject({
      cardStatusCode: "02",
    });
  });
});

describe("Payblr: 1. CVV status retrieval and 4. unblock CVV", () => {
  it("reports status and remaining tries, Blocked at 0 after wrong tries via the native API, back to the maximum on PUT", async () => {
    const { publicToken: t } = await createPayblrCard();
    const statusUrl = `${base}/card-cvv/${t}/cvv/status`;
    expect((await h.call("GET", statusUrl)).json()).toEqual({ status: "Unblocked", remainingTries: "4" });

    const wrong = await wrongCvv(h, t);
    await h.call("POST", `/v1/cards/${t}/cvv/verify`, { cvv: wrong });
    expect((await h.call("GET", statusUrl)).json()).toEqual({ status: "Unblocked", remainingTries: "3" });
    for (let i = 0; i < 3; i++) await h.call("POST", `/v1/cards/${t}/cvv/verify`, { cvv: wrong });
    expect((await h.call("GET", statusUrl)).json()).toEqual({ status: "Blocked", remainingTries: "0" });
    const right = await expectedCvv(h, t);
    expect((await h.call("POST", `/v1/cards/${t}/cvv/verify`, { cvv: right })).json()).toMatchObject({
      result: "blocked",
    });

    // The seed's "Unblock CVV": PUT with no body at all.
    const unblock = await h.call("PUT", statusUrl);
    expect(unblock.statusCode).toBe(204);
    expect((await h.call("GET", statusUrl)).json()).toEqual({ status: "Unblocked", remainingTries: "4" });
    expect((await h.call("POST", `/v1/cards/${t}/cvv/verify`, { cvv: right })).json()).toMatchObject({
      result: "match",
    });

    // Thredd's body works too, including an explicit block, and lands in the audit record.
    expect(
      (
        await h.call("PUT", statusUrl, {
          status: "Blocked",
          description: "cardholder request",
          updatedBy: "app",
        })
      ).statusCode,
    ).toBe(204);
    expect((await h.call("GET", statusUrl)).json()).toEqual({ status: "Blocked", remainingTries: "0" });
    const audit = await h.runtime.store.db
      .selectFrom("audit_events")
      .select("details")
      .where("public_token", "=", t)
      .where("action", "=", "cvv.block")
      .executeTakeFirstOrThrow();
    expect(JSON.parse(audit.details!)).toMatchObject({ description: "cardholder request", updatedBy: "app" });
  });

  it("has no clear-CVV read: the seed sends CVV retrieval to Get Card Data", async () => {
    const { publicToken: t } = await createPayblrCard();
    const response = await h.call("GET", `${base}/card-cvv/${t}/cvv`);
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ code: "not_found", errors: { resource: expect.any(Array) } });
  });
});

describe("Payblr: 2. retrieve PIN, 3. PIN status, 5. unblock PIN", () => {
  it("sets, reads, blocks via the native API and unblocks with the counter back to its maximum", async () => {
    const { publicToken: t } = await createPayblrCard();
    expect((await h.call("POST", `${base}/card-pin/${t}/pin`, { cardPin: "004821" })).statusCode).toBe(204);
    const pin = await h.call("GET", `${base}/card-pin/${t}/pin`);
    expect(pin.statusCode).toBe(200);
    expect(pin.json()).toEqual({ pin: "004821" });
    const statusUrl = `${base}/card-pin/${t}/pin/status`;
    expect((await h.call("GET", statusUrl)).json()).toEqual({
      status: "Unblocked",
      remainingTries: "3",
      remainingOfflineTries: "3",
    });

    for (let i = 0; i < 3; i++) await h.call("POST", `/v1/cards/${t}/pin/verify`, { pin: "111111" });
    expect((await h.call("GET", statusUrl)).json()).toMatchObject({ status: "Blocked", remainingTries: "0" });

    const unblock = await h.call("POST", `${base}/card-pin/${t}/pin/unblock`, {});
    expect(unblock.statusCode).toBe(204);
    expect((await h.call("GET", statusUrl)).json()).toEqual({
      status: "Unblocked",
      remainingTries: "3",
      remainingOfflineTries: "3",
    });
    expect((await h.call("GET", `/v1/cards/${t}/pin/status`)).json()).toMatchObject({
      remainingTries: 3,
      maxTries: 3,
    });

    // Payblr's "5. Unblock PIN" is a POST without a body, so no Content-Type either (Thredd's own answers 415).
    for (let i = 0; i < 3; i++) await h.call("POST", `/v1/cards/${t}/pin/verify`, { pin: "111111" });
    const bare = await h.app.inject({
      method: "POST",
      url: `${base}/card-pin/${t}/pin/unblock`,
      headers: { authorization: `Bearer ${await h.token()}` },
    });
    expect(bare.statusCode, bare.body).toBe(204);
    expect((await h.call("GET", statusUrl)).json()).toMatchObject({
      status: "Unblocked",
      remainingTries: "3",
    });
  });
});

describe("Payblr: Get Card Data", () => {
  it("POST /cards/{t}/encrypted delivers PAN, CVV and expiry the client verifies and opens", async () => {
    const card = await createPayblrCard();
    const t = card.publicToken;
    const keys = (await h.call("GET", "/v1/secure-data/keys")).json().keys as PublishedKey[];
    const wrapKey = await importWrapKey(keys.find((k) => k.use === "wrap")!.jwk);
    const signingKey = await importSigningKey(keys.find((k) => k.use === "sign")!.jwk);
    const { key, sessionKey } = await createSessionKey(wrapKey);
    const response = await h.call("POST", `${base}/cards/${t}/encrypted`, threddCardDataRequest(key));
    expect(response.statusCode).toBe(200);
    const data = await openCardData(response.json(), sessionKey, signingKey);
    expect(isLuhnValid(data.PAN)).toBe(true);
    expect(`${data.PAN.slice(0, 6)}******${data.PAN.slice(-4)}`).toBe(card.maskedPan);
    expect(data.CVV).toBe(await expectedCvv(h, t));
    expect(data).not.toHaveProperty("PIN");
    const replay = await h.call("POST", `${base}/cards/${t}/encrypted`, { key });
    expect(replay.statusCode).toBe(409);
    expect(replay.json()).toMatchObject({ code: "session_key_replayed" });
  });
});

describe("Payblr: errors in Thredd's shape", () => {
  it("answers 400, 401 and 404 as problem+json with type, title, status, traceId and errors", async () => {
    const bad = await h.call("POST", `${base}/cards`, { cardType: "Virtual" });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(bad.json()).toMatchObject({
      status: 400,
      title: expect.any(String),
      traceId: expect.any(String),
      errors: { cardHolder: ["is required"] },
    });

    const { publicToken: t } = await createPayblrCard();
    const unauthorised = await h.call("GET", `${base}/card-pin/${t}/pin/status`, undefined, { token: null });
    expect(unauthorised.statusCode).toBe(401);
    expect(unauthorised.json()).toMatchObject({
      status: 401,
      code: "unauthorized",
      errors: { resource: expect.any(Array) },
    });

    const missing = await h.call("GET", `${base}/card-cvv/999999999/cvv/status`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ status: 404, code: "card_not_found" });
    expect((await h.call("GET", `${base}/nope`)).statusCode).toBe(404);
  });
});
