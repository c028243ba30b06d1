// The Thredd Cards API dialect at /api/v1: a Thredd client's flows, step by step as the seed walks them
// (create, read the CVV, wrong tries through the native API until Blocked, unblock through the dialect,
// tries back to the maximum; the same for the PIN), card status codes, Get Card Data, and Thredd's errors.
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
import { ALL_SCOPES, createHarness, type Harness } from "../helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

const base = "/api/v1";
const newCard = (overrides: Record<string, unknown> = {}) => ({
  cardType: "Virtual",
  cardHolder: { title: "Mr", firstName: "Jon", lastName: "Smith" },
  customerReference: "CustNo12345A",
  ...overrides,
});

async function createThreddCard(overrides: Record<string, unknown> = {}) {
  const response = await h.call("POST", `${base}/cards`, newCard(overrides));
  expect(response.statusCode, response.body).toBe(200);
  return response.json() as { publicToken: string; maskedPan: string; expiryDate: string };
}

const nativeVerifyCvv = (t: string, cvv: string) => h.call("POST", `/v1/cards/${t}/cvv/verify`, { cvv });
const nativeVerifyPin = (t: string, pin: string) => h.call("POST", `/v1/cards/${t}/pin/verify`, { pin });

function expectThreddProblem(response: Awaited<ReturnType<Harness["call"]>>, status: number, code: string) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const body = response.json();
  expect(body).toMatchObject({ status, code, traceId: response.headers["x-request-id"] });
  expect(Object.keys(body).sort()).toEqual([
    "code",
    "detail",
    "errors",
    "status",
    "title",
    "traceId",
    "type",
  ]);
  for (const messages of Object.values(body.errors as Record<string, unknown>)) {
    expect(messages).toEqual(expect.arrayContaining([expect.any(String)]));
  }
  return body as { title: string; errors: Record<string, string[]> };
}

describe("Thredd: cards", () => {
  it("POST /cards answers 200 with exactly Thredd's create-card fields", async () => {
    const response = await h.call("POST", `${base}/cards`, newCard());
    expect(response.statusCode).toBe(200);
    const card = response.json();
    expect(Object.keys(card).sort()).toEqual(
      ["customerReference", "embossName", "expiryDate", "maskedPan", "publicToken", "startDate"].sort(),
    );
    expect(card).toMatchObject({ customerReference: "CustNo12345A", embossName: "Mr Jon Smith" });
    expect(card.publicToken).toMatch(/^[0-9]{9}$/);
    expect(card.maskedPan).toMatch(/^400000\*{6}[0-9]{4}$/);
    expect(card.startDate).toBe(new Date().toISOString().slice(0, 10));
    expect(card.expiryDate).toMatch(/^20[0-9]{2}-[0-9]{2}-[0-9]{2}$/);
  });

  it("accepts the documented Thredd fields it does not use, and refuses any other field", async () => {
    await createThreddCard({
      cardHolder: {
        title: "Mr",
        firstName: "Jon",
        lastName: "Smith",
        dateOfBirth: "1982-11-03",
        mobile: "+441",
        email: "j@x.test",
      },
      address: {
        addressLine1: "32 Western Drive",
        addressLine2: "Flat 2",
        city: "Leeds",
        postCode: "S25 2BZ",
        country: "GBR",
      },
      virtualCardImageDetails: { virtualCardImageId: "4155", imageSize: 1 },
      cardProduct: 10005,
      designId: "New Card Brand",
      activateNow: true,
    });
    for (const [body, field] of [
      [newCard({ nickname: "x" }), "nickname"],
      [newCard({ cardHolder: { firstName: "A", lastName: "B", nickname: "x" } }), "cardHolder.nickname"],
      [newCard({ address: { County: "Yorkshire" } }), "address.County"],
      [newCard({ NickName: "x" }), "NickName"],
      [newCard({ cardType: "MasterVirtual" }), "cardType"],
      [newCard({ cardHolder: { firstName: "A" } }), "cardHolder.lastName"],
      [{ cardHolder: { firstName: "A", lastName: "B" } }, "cardType"],
    ] as const) {
      const problem = expectThreddProblem(
        await h.call("POST", `${base}/cards`, body),
        400,
        "validation_failed",
      );
      expect(problem.title).toBe("One or more validation errors occurred.");
      expect(Object.keys(problem.errors), JSON.stringify(body)).toContain(field);
    }
  });

  it("refuses a cardholder name outside the embossing set: 400 with a cardHolder field error (Hardening II)", async () => {
    for (const cardHolder of [
      { firstName: "Jon\u0000", lastName: "Smith" },
      { firstName: "Jon", lastName: "Smith\r\nX" },
      { title: "Mr\u202e", firstName: "Jon", lastName: "Smith" },
      { firstName: "Jon", lastName: "Sm\u200fith" },
    ]) {
      const problem = expectThreddProblem(
        await h.call("POST", `${base}/cards`, newCard({ cardHolder })),
        400,
        "validation_failed",
      );
      expect(Object.keys(problem.errors).join(), JSON.stringify(cardHolder)).toMatch(/^cardHolder/);
    }
    const ok = await createThreddCard({
      cardHolder: { title: "Dr", firstName: "Zoë", lastName: "O'Brien-Müller" },
    });
    expect(ok).toMatchObject({ embossName: "Dr Zoë O'Brien-Müller" });
  });

  it("activates as Thredd does (virtual active, physical inactive, unless activateNow says otherwise) and honours expiryDate", async () => {
    const statusOf = async (t: string) =>
      (await h.call("GET", `${base}/cards/${t}/status`)).json().cardStatusCode;
    expect(await statusOf((await createThreddCard()).publicToken)).toBe("00");
    expect(await statusOf((await createThreddCard({ activateNow: false })).publicToken)).toBe("02");
    expect(await statusOf((await createThreddCard({ cardType: "Physical" })).publicToken)).toBe("02");
    expect(
      await statusOf((await createThreddCard({ cardType: "Physical", activateNow: true })).publicToken),
    ).toBe("00");

    expect((await createThreddCard({ expiryDate: "2031-06-15" })).expiryDate).toBe("2031-06-30");
    expect((await createThreddCard({ expiryDate: "2031-02" })).expiryDate).toBe("2031-02-28");
    const past = expectThreddProblem(
      await h.call("POST", `${base}/cards`, newCard({ expiryDate: "2020-01" })),
      400,
      "validation_failed",
    );
    expect(Object.keys(past.errors)).toEqual(["expiryDate"]);
  });

  it("GET /cards/{publicToken} answers Thredd's card view; it never carries the PAN or CVV", async () => {
    const created = await createThreddCard();
    const response = await h.call("GET", `${base}/cards/${created.publicToken}`);
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      publicToken: created.publicToken,
      cardType: "Virtual",
      status: "Active",
      cardStatusCode: "00",
      cardStatusDescription: "00 (Active)",
      cardDetails: {
        customerReference: "CustNo12345A",
        fullNameOnCard: "Mr Jon Smith",
        maskedPan: created.maskedPan,
        startDate: expect.any(String),
        expiryDate: created.expiryDate,
      },
    });
  });

  it("PUT /cards/{publicToken}/status honours validityDate when it is the card's expiry month, and refuses any other", async () => {
    const created = await createThreddCard({ expiryDate: "2031-07-20" });
    const t = created.publicToken;
    const same = await h.call("PUT", `${base}/cards/${t}/status`, {
      cardStatusCode: "62",
      validityDate: "2031-07",
    });
    expect(same.statusCode, same.body).toBe(200);
    expect(same.json()).toMatchObject({ cardStatusCode: "62" });
    for (const validityDate of ["2031-08", "2030-07", "2031-13", "31-07", ""]) {
      const problem = expectThreddProblem(
        await h.call("PUT", `${base}/cards/${t}/status`, { cardStatusCode: "00", validityDate }),
        400,
        "validation_failed",
      );
      expect(Object.keys(problem.errors), validityDate).toEqual(["validityDate"]);
    }
    // A refused change changed nothing; the card keeps its expiry.
    const card = (await h.call("GET", `/v1/cards/${t}`)).json();
    expect(card).toMatchObject({ status: "suspended", expiryDate: "2031-07-31" });
  });

  it("GET|PUT /cards/{publicToken}/status maps cardStatusCode 00/02/62/46 onto active/inactive/suspended/closed", async () => {
    const { publicToken: t } = await createThreddCard();
    const put = await h.call("PUT", `${base}/cards/${t}/status`, {
      cardStatusCode: "62",
      updatedBy: "John Bloggs",
      description: "fraud check",
    });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toEqual({
      status: "Restricted",
      cardStatusCode: "62",
      cardStatusDescription: "62 (Restricted)",
      updated: expect.stringMatching(/^[0-9]{2}-[0-9]{2}-20[0-9]{2}$/),
      updatedBy: "John Bloggs",
      description: "fraud check",
    });
    expect((await h.call("GET", `/v1/cards/${t}`)).json().status).toBe("suspended");
    expect((await h.call("GET", `${base}/cards/${t}/status`)).json()).toMatchObject({
      status: "Restricted",
      cardStatusCode: "62",
    });

    expect((await h.call("PUT", `${base}/cards/${t}/status`, { status: "active" })).json()).toMatchObject({
      cardStatusCode: "00",
    });
    expect(
      (await h.call("PUT", `${base}/cards/${t}/status`, { cardStatusCode: "02", status: "Inactive" })).json(),
    ).toMatchObject({
      status: "Inactive",
    });
    for (const [body, field] of [
      [{ cardStatusCode: "42" }, "cardStatusCode"],
      [{ status: "Lost" }, "status"],
      [{ cardStatusCode: "00", status: "Closed" }, "status"],
      [{ updatedBy: "x" }, "cardStatusCode"],
      [{ cardStatusCode: "00", validityDate: "2030-01" }, "validityDate"],
      [{ cardStatusCode: "000" }, "cardStatusCode"],
    ] as const) {
      const problem = expectThreddProblem(
        await h.call("PUT", `${base}/cards/${t}/status`, body),
        400,
        "validation_failed",
      );
      expect(Object.keys(problem.errors), JSON.stringify(body)).toContain(field);
    }
    const audit = await h.runtime.store.db
      .selectFrom("audit_events")
      .select("details")
      .where("public_token", "=", t)
      .where("action", "=", "card.update")
      .orderBy("id")
      .executeTakeFirstOrThrow();
    expect(JSON.parse(audit.details!)).toMatchObject({
      description: "fraud check",
      updatedBy: "John Bloggs",
      toStatus: "suspended",
    });

    expect((await h.call("PUT", `${base}/cards/${t}/status`, { cardStatusCode: "46" })).json()).toMatchObject(
      { status: "Closed" },
    );
    expectThreddProblem(
      await h.call("PUT", `${base}/cards/${t}/status`, { cardStatusCode: "00" }),
      409,
      "invalid_state_transition",
    );
  });

  it("replays POST /cards for a retry with Thredd's IdempotencyKey header", async () => {
    const headers = { idempotencykey: "5f0c2a4e-5b0a-4c55-9c36-1c1d2b0a9e11" };
    const first = await h.call("POST", `${base}/cards`, newCard(), { headers });
    const retry = await h.call("POST", `${base}/cards`, newCard(), { headers });
    expect(retry.statusCode).toBe(200);
    expect(retry.headers["idempotent-replayed"]).toBe("true");
    expect(retry.json().publicToken).toBe(first.json().publicToken);
  });
});

describe("Thredd: CVV (the seed's flow)", () => {
  it("reads the CVV, blocks after three wrong tries via the native API, unblocks through the dialect", async () => {
    // Step 1: the card and its public token.
    const { publicToken: t } = await createThreddCard();
    // Step 2: GET the CVV.
    const read = await h.call("GET", `${base}/cards/${t}/cvv`);
    expect(read.statusCode).toBe(200);
    expect(read.json()).toEqual({ cvv: await expectedCvv(h, t), resultStatus: "Success" });
    expect((await h.call("GET", `${base}/cards/${t}/cvv/status`)).json()).toEqual({ status: "Unblocked" });

    const wrong = await wrongCvv(h, t);
    for (let i = 0; i < 3; i++) expect((await nativeVerifyCvv(t, wrong)).statusCode).toBe(200);
    const blocked = await h.call("GET", `${base}/cards/${t}/cvv/status`);
    expect(blocked.statusCode).toBe(200);
    expect(blocked.json()).toEqual({ status: "Blocked" });
    expect((await h.call("GET", `/v1/cards/${t}/cvv/status`)).json()).toMatchObject({ remainingTries: 0 });

    // Unblock (Thredd's current docs: PUT …/cvv/status) → 204, tries back to the maximum.
    const unblock = await h.call("PUT", `${base}/cards/${t}/cvv/status`, {
      status: "Unblocked",
      description: "CVV unblocked on 04/11/2024",
      updatedBy: "John Bloggs",
    });
    expect(unblock.statusCode).toBe(204);
    expect(unblock.body).toBe("");
    expect((await h.call("GET", `${base}/cards/${t}/cvv/status`)).json()).toEqual({ status: "Unblocked" });
    expect((await h.call("GET", `/v1/cards/${t}/cvv/status`)).json()).toMatchObject({
      remainingTries: 3,
      maxTries: 3,
    });
    const audit = await h.runtime.store.db
      .selectFrom("audit_events")
      .select("details")
      .where("public_token", "=", t)
      .where("action", "=", "cvv.unblock")
      .executeTakeFirstOrThrow();
    expect(JSON.parse(audit.details!)).toMatchObject({
      description: "CVV unblocked on 04/11/2024",
      updatedBy: "John Bloggs",
    });
  });

  it("PUT …/cvv/status Blocked blocks at once; the seed's POST …/cvv unblocks, even with an empty JSON body", async () => {
    const { publicToken: t } = await createThreddCard();
    expect((await h.call("PUT", `${base}/cards/${t}/cvv/status`, { status: "Blocked" })).statusCode).toBe(
      204,
    );
    expect((await h.call("GET", `${base}/cards/${t}/cvv/status`)).json()).toEqual({ status: "Blocked" });
    const unblock = await h.app.inject({
      method: "POST",
      url: `${base}/cards/${t}/cvv`,
      headers: { authorization: `Bearer ${await h.token()}`, "content-type": "application/json" },
      payload: "",
    });
    expect(unblock.statusCode).toBe(204);
    expect((await h.call("GET", `/v1/cards/${t}/cvv/status`)).json()).toMatchObject({
      status: "Unblocked",
      remainingTries: 3,
    });

    expectThreddProblem(await h.call("PUT", `${base}/cards/${t}/cvv/status`, {}), 400, "validation_failed");
    expectThreddProblem(
      await h.call("PUT", `${base}/cards/${t}/cvv/status`, { status: "Open" }),
      400,
      "validation_failed",
    );
  });
});

describe("Thredd: PIN (the seed's flow)", () => {
  it("sets and reads the PIN, blocks after three wrong tries via the native API, unblocks through the dialect", async () => {
    const { publicToken: t } = await createThreddCard();
    expect((await h.call("POST", `${base}/cards/${t}/pin`, { cardPin: "0123" })).statusCode).toBe(204);
    expect((await h.call("GET", `${base}/cards/${t}/pin`)).json()).toEqual({ pin: "0123" });
    expect((await h.call("GET", `${base}/cards/${t}/pin/status`)).json()).toEqual({
      status: "Unblocked",
      remainingTries: "3",
      remainingOfflineTries: "3",
    });

    for (let i = 0; i < 3; i++) expect((await nativeVerifyPin(t, "9999")).statusCode).toBe(200);
    expect((await h.call("GET", `${base}/cards/${t}/pin/status`)).json()).toEqual({
      status: "Blocked",
      remainingTries: "0",
      remainingOfflineTries: "0",
    });

    const unblock = await h.call("POST", `${base}/cards/${t}/pin/unblock`, {
      description: "Unblocking blocked PIN",
      updatedBy: "John Smith",
    });
    expect(unblock.statusCode).toBe(204);
    expect((await h.call("GET", `${base}/cards/${t}/pin/status`)).json()).toEqual({
      status: "Unblocked",
      remainingTries: "3",
      remainingOfflineTries: "3",
    });
    expect((await nativeVerifyPin(t, "0123")).json()).toMatchObject({ result: "match" });
    const audit = await h.runtime.store.db
      .selectFrom("audit_events")
      .select("details")
      .where("public_token", "=", t)
      .where("action", "=", "pin.unblock")
      .executeTakeFirstOrThrow();
    expect(JSON.parse(audit.details!)).toMatchObject({
      description: "Unblocking blocked PIN",
      updatedBy: "John Smith",
    });
  });

  it("POST …/pin/unblock answers 415 without Content-Type: application/json, and 204 with it and no body", async () => {
    const { publicToken: t } = await createThreddCard();
    const bearer = { authorization: `Bearer ${await h.token()}` };
    const bare = await h.app.inject({
      method: "POST",
      url: `${base}/cards/${t}/pin/unblock`,
      headers: bearer,
    });
    expectThreddProblem(bare, 415, "unsupported_media_type");
    const text = await h.app.inject({
      method: "POST",
      url: `${base}/cards/${t}/pin/unblock`,
      headers: { ...bearer, "content-type": "text/plain" },
      payload: "unblock",
    });
    expectThreddProblem(text, 415, "unsupported_media_type");
    const empty = await h.app.inject({
      method: "POST",
      url: `${base}/cards/${t}/pin/unblock`,
      headers: { ...bearer, "content-type": "application/json; charset=utf-8" },
      payload: "",
    });
    expect(empty.statusCode).toBe(204);
  });

  it("refuses a cardPin that is not 4–12 digits, and a number of fewer than 4 (it cannot keep leading zeros)", async () => {
    const { publicToken: t } = await createThreddCard();
    for (const cardPin of [123, 0, 12.5, -1234, 1234567890123, "123", "1234567890123", "12a4", null]) {
      const problem = expectThreddProblem(
        await h.call("POST", `${base}/cards/${t}/pin`, { cardPin }),
        400,
        "validation_failed",
      );
      expect(Object.keys(problem.errors), String(cardPin)).toEqual(["cardPin"]);
    }
    expect((await h.call("GET", `${base}/cards/${t}/pin/status`)).json()).toMatchObject({
      remainingTries: "3",
    });
  });
});

describe("Thredd: tolerance as Thredd's own servers show it", () => {
  it("takes Thredd's documented example bodies verbatim, PascalCase included", async () => {
    // Create Card as Thredd's "Using the Cards API" page shows it (camelCase)...
    const documented = await h.call("POST", `${base}/cards`, {
      cardHolder: { title: "Mr", firstName: "Jon", lastName: "Smith", dateOfBirth: "1982-11-03" },
      address: { addressLine1: "32 Western Drive", postCode: "S25 2BZ", country: "GBR" },
      virtualCardImageDetails: { virtualCardImageId: "4155", imageSize: 1 },
      cardType: "Virtual",
      cardProduct: 10005,
      activateNow: true,
      designId: "New Card Brand",
      customerReference: "my ref 12345",
    });
    expect(documented.statusCode, documented.body).toBe(200);
    // ...and as its create-card page spells it (PascalCase), with the address lines it documents.
    const pascal = await h.call("POST", `${base}/cards`, {
      CardHolder: { Title: "Mr", FirstName: "Jon", LastName: "Smith", DateOfBirth: "1982-11-03" },
      Address: {
        AddressLine1: "32 Western Drive",
        AddressLine2: "Western Park",
        City: "Sheffield",
        PostCode: "S25 2BZ",
        Country: "GBR",
      },
      CardType: "Physical",
      CardProduct: 10005,
      ActivateNow: true,
      DesignId: "New Card Brand",
      CustomerReference: "my ref 12345",
    });
    expect(pascal.statusCode, pascal.body).toBe(200);
    expect(pascal.json()).toMatchObject({ embossName: "Mr Jon Smith", customerReference: "my ref 12345" });
    const t = pascal.json().publicToken as string;
    expect((await h.call("GET", `${base}/cards/${t}`)).json()).toMatchObject({
      cardType: "Physical",
      cardStatusCode: "00",
    });

    const status = await h.call("PUT", `${base}/cards/${t}/status`, { cardStatusCode: "00" });
    expect(status.statusCode, status.body).toBe(200);
    const cvv = await h.call("PUT", `${base}/cards/${t}/cvv/status`, {
      status: "Unblocked",
      description: "CVV unblocked on 04/11/2024",
      updatedBy: "John Bloggs",
    });
    expect(cvv.statusCode, cvv.body).toBe(204);
    const pin = await h.call("POST", `${base}/cards/${t}/pin/unblock`, {
      description: "Unblocking blocked PIN",
      updatedBy: "John Smith",
    });
    expect(pin.statusCode, pin.body).toBe(204);
    // {"cardPin": 0000} is not JSON (no leading zeros in a JSON number), so it reaches us as the number it means.
    expect((await h.call("POST", `${base}/cards/${t}/pin`, { CardPin: 7010 })).statusCode).toBe(204);
    expect((await h.call("GET", `${base}/cards/${t}/pin`)).json()).toEqual({ pin: "7010" });
  });

  it("refuses two spellings of one property and an unknown property in any case", async () => {
    for (const [body, field] of [
      [newCard({ CardType: "Physical" }), "cardType"],
      [newCard({ cardHolder: { firstName: "A", FIRSTNAME: "B", lastName: "C" } }), "cardHolder.firstName"],
      [newCard({ CARDHOLDERNAME: "x" }), "CARDHOLDERNAME"],
    ] as const) {
      const problem = expectThreddProblem(
        await h.call("POST", `${base}/cards`, body),
        400,
        "validation_failed",
      );
      expect(Object.keys(problem.errors), JSON.stringify(body)).toContain(field);
    }
    const { publicToken: t } = await createThreddCard();
    const twice = expectThreddProblem(
      await h.call("PUT", `${base}/cards/${t}/status`, { cardStatusCode: "62", CardStatusCode: "00" }),
      400,
      "validation_failed",
    );
    expect(Object.keys(twice.errors)).toEqual(["cardStatusCode"]);
  });

  it("sets cardPin sent as a number; a string keeps its leading zeros", async () => {
    const { publicToken: t } = await createThreddCard();
    expect((await h.call("POST", `${base}/cards/${t}/pin`, { cardPin: 4821 })).statusCode).toBe(204);
    expect((await h.call("GET", `${base}/cards/${t}/pin`)).json()).toEqual({ pin: "4821" });
    expect((await h.call("POST", `${base}/cards/${t}/pin`, { cardPin: "0042" })).statusCode).toBe(204);
    expect((await h.call("GET", `${base}/cards/${t}/pin`)).json()).toEqual({ pin: "0042" });
    const short = expectThreddProblem(
      await h.call("POST", `${base}/cards/${t}/pin`, { cardPin: 42 }),
      400,
      "validation_failed",
    );
    expect(short.errors.cardPin?.join(" ")).toMatch(/leading zeros/);
  });

  it("maps every code of Thredd's card-status table onto the life cycle, reading back as its status's code", async () => {
    const table: Record<string, [string, string]> = {
      "00": ["active", "00"],
      "02": ["inactive", "02"],
      "04": ["suspended", "62"],
      "05": ["suspended", "62"],
      "14": ["suspended", "62"],
      "41": ["suspended", "62"],
      "43": ["closed", "46"],
      "46": ["closed", "46"],
      "54": ["closed", "46"],
      "57": ["suspended", "62"],
      "59": ["suspended", "62"],
      "62": ["suspended", "62"],
      "63": ["suspended", "62"],
      "70": ["suspended", "62"],
      "75": ["suspended", "62"],
      "83": ["closed", "46"],
      "98": ["suspended", "62"],
    };
    for (const [code, [status, readBack]] of Object.entries(table)) {
      const { publicToken: t } = await createThreddCard();
      const put = await h.call("PUT", `${base}/cards/${t}/status`, { cardStatusCode: code });
      expect(put.statusCode, `${code}: ${put.body}`).toBe(200);
      expect(put.json().cardStatusCode, code).toBe(readBack);
      expect((await h.call("GET", `/v1/cards/${t}`)).json().status, code).toBe(status);
    }
  });
});

describe("Thredd: Get Card Data (POST /cards/{publicToken}/encrypted)", () => {
  it("answers {iv, encryptedPayload, signatureOfPayloadAndIv} the client verifies and opens; a replayed key is a 409", async () => {
    const created = await createThreddCard();
    const t = created.publicToken;
    const keys = (await h.call("GET", "/v1/secure-data/keys")).json().keys as PublishedKey[];
    const wrapKey = await importWrapKey(keys.find((k) => k.use === "wrap")!.jwk);
    const signingKey = await importSigningKey(keys.find((k) => k.use === "sign")!.jwk);
    const { key, sessionKey } = await createSessionKey(wrapKey);

    const response = await h.call("POST", `${base}/cards/${t}/encrypted`, threddCardDataRequest(key));
    expect(response.statusCode).toBe(200);
    expect(Object.keys(response.json()).sort()).toEqual([
      "encryptedPayload",
      "iv",
      "signatureOfPayloadAndIv",
    ]);
    const data = await openCardData(response.json(), sessionKey, signingKey);
    expect(isLuhnValid(data.PAN)).toBe(true);
    expect(`${data.PAN.slice(0, 6)}******${data.PAN.slice(-4)}`).toBe(created.maskedPan);
    expect(data.CVV).toBe((await h.call("GET", `${base}/cards/${t}/cvv`)).json().cvv);
    expect(data.expiryDate).toBe(created.expiryDate);

    expectThreddProblem(
      await h.call("POST", `${base}/cards/${t}/encrypted`, { key }),
      409,
      "session_key_replayed",
    );
    const garbage = Buffer.alloc(512, 7).toString("base64");
    const bad = expectThreddProblem(
      await h.call("POST", `${base}/cards/${t}/encrypted`, { key: garbage }),
      400,
      "session_key_invalid",
    );
    expect(Object.keys(bad.errors)).toEqual(["key"]);
    for (const legacy of [
      { paddingMode: "PKCS1_5" },
      { encryptionKeyLength: "Rsa2048" },
      { hashingAlgorithm: "Sha1" },
    ]) {
      const { key: fresh } = await createSessionKey(wrapKey);
      expectThreddProblem(
        await h.call("POST", `${base}/cards/${t}/encrypted`, { key: fresh, ...legacy }),
        400,
        "validation_failed",
      );
    }
  });

  it("needs the cards:secure-data scope", async () => {
    const { publicToken: t } = await createThreddCard();
    const token = await h.token(ALL_SCOPES.filter((s) => s !== "cards:secure-data"));
    const response = await h.call("POST", `${base}/cards/${t}/encrypted`, { key: "AAAA" }, { token });
    expectThreddProblem(response, 403, "forbidden");
  });
});

describe("Thredd: errors in Thredd's shape", () => {
  it("400 names each bad field under errors", async () => {
    const problem = expectThreddProblem(
      await h.call("POST", `${base}/cards`, { cardType: 7 }),
      400,
      "validation_failed",
    );
    expect(problem.errors).toMatchObject({ cardType: expect.any(Array), cardHolder: ["is required"] });
    const badJson = await h.app.inject({
      method: "POST",
      url: `${base}/cards`,
      headers: { authorization: `Bearer ${await h.token()}`, "content-type": "application/json" },
      payload: "{not json",
    });
    expectThreddProblem(badJson, 400, "invalid_json");
    expectThreddProblem(await h.call("GET", `${base}/cards/12345/cvv`), 400, "validation_failed");
  });

  it("401 without or with a bad token, with WWW-Authenticate", async () => {
    const { publicToken: t } = await createThreddCard();
    for (const token of [null, "not-a-jwt"]) {
      const response = await h.call("GET", `${base}/cards/${t}/cvv`, undefined, { token });
      expectThreddProblem(response, 401, "unauthorized");
      expect(response.headers["www-authenticate"]).toMatch(/^Bearer/);
    }
  });

  it("404 for an unknown card, another tenant's card (identically), and an unknown route; 405 for a method a path lacks", async () => {
    const { publicToken: t } = await createThreddCard();
    const unknown = expectThreddProblem(
      await h.call("GET", `${base}/cards/999999999/cvv`),
      404,
      "card_not_found",
    );
    const foreign = expectThreddProblem(
      await h.call("GET", `${base}/cards/${t}/cvv`, undefined, { token: await h.token(undefined, "globex") }),
      404,
      "card_not_found",
    );
    expect(foreign.errors).toEqual(unknown.errors);
    expectThreddProblem(await h.call("GET", `${base}/nothing-here`), 404, "not_found");
    // The path exists under other methods: 405 with Allow, in Thredd's shape (RFC 9110 §15.5.6).
    const deleted = await h.call("DELETE", `${base}/cards/${t}`);
    expectThreddProblem(deleted, 405, "method_not_allowed");
    expect(deleted.headers.allow).toBe("GET, HEAD");
  });

  it("409 for CVV and PIN operations on a closed card", async () => {
    const { publicToken: t } = await createThreddCard();
    await h.call("PUT", `${base}/cards/${t}/status`, { cardStatusCode: "46" });
    expectThreddProblem(await h.call("GET", `${base}/cards/${t}/cvv`), 409, "card_closed");
    expectThreddProblem(await h.call("GET", `${base}/cards/${t}/pin`), 409, "card_closed");
  });
});
