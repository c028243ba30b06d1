import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isLuhnValid } from "../src/crypto/luhn.js";
import { cardRow, panOf } from "./helpers/card-secrets.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

describe("cards", () => {
  it("issues a card with a 9-digit public token, a Luhn-valid PAN from the tenant's BIN, and a masked view", async () => {
    const response = await h.call("POST", "/v1/cards", {
      type: "virtual",
      cardholderName: "Ada Lovelace",
      expiry: "2912",
    });
    expect(response.statusCode).toBe(201);
    const card = response.json();
    expect(card).toMatchObject({
      publicToken: expect.stringMatching(/^[1-9][0-9]{8}$/),
      type: "virtual",
      status: "active",
      expiry: "2912",
      expiryDate: "2029-12-31",
      cardholderName: "Ada Lovelace",
      maskedPan: expect.stringMatching(/^400000\*{6}[0-9]{4}$/),
    });
    const pan = await panOf(h, card.publicToken);
    expect(pan).toHaveLength(16);
    expect(pan.startsWith("400000")).toBe(true);
    expect(isLuhnValid(pan)).toBe(true);
    expect(card.maskedPan.slice(-4)).toBe(pan.slice(-4));
    expect(JSON.stringify(card)).not.toContain(pan);

    const row = await cardRow(h, card.publicToken);
    expect(row.pan_sealed).not.toContain(pan);
    expect(row.pan_fingerprint).not.toContain(pan);
  });

  it("defaults the expiry to three years out and the status to active; physical cards too", async () => {
    const card = await h.createCard({ type: "physical" });
    expect(card).toMatchObject({
      type: "physical",
      status: "active",
      expiry: expect.stringMatching(/^[0-9]{4}$/),
    });
  });

  it("reads a card back, and changes its status through its life cycle", async () => {
    const card = await h.createCard();
    const url = `/v1/cards/${card.publicToken}`;
    expect((await h.call("GET", url)).json()).toMatchObject({
      publicToken: card.publicToken,
      status: "active",
    });
    expect((await h.call("PATCH", url, { status: "suspended" })).json()).toMatchObject({
      status: "suspended",
    });
    expect(
      (await h.call("PATCH", url, { status: "active", cardholderName: "New Name" })).json(),
    ).toMatchObject({
      status: "active",
      cardholderName: "New Name",
    });
    expect((await h.call("PATCH", url, { status: "closed" })).json()).toMatchObject({ status: "closed" });
    const reopen = await h.call("PATCH", url, { status: "active" });
    expect(reopen.statusCode).toBe(409);
    expect(reopen.json()).toMatchObject({ code: "invalid_state_transition" });
  });

  it("gives unique tokens and PANs", async () => {
    const cards = await Promise.all(Array.from({ length: 40 }, () => h.createCard()));
    expect(new Set(cards.map((c) => c.publicToken)).size).toBe(40);
    const pans = await Promise.all(cards.map((c) => panOf(h, c.publicToken)));
    expect(new Set(pans).size).toBe(40);
  });

  it("answers 404 for an unknown card and for another tenant's card, with the same body shape", async () => {
    const card = await h.createCard();
    const otherTenant = await h.token(undefined, "globex");
    const foreign = await h.call("GET", `/v1/cards/${card.publicToken}`, undefined, { token: otherTenant });
    const unknown = await h.call("GET", "/v1/cards/123456789");
    expect(foreign.statusCode).toBe(404);
    expect(unknown.statusCode).toBe(404);
    const strip = (body: Record<string, unknown>) => ({ ...body, traceId: "x" });
    expect(strip(foreign.json())).toEqual(strip(unknown.json()));
  });

  it("rejects bad input with a 400 problem naming the field, and creates nothing", async () => {
    const before = await h.runtime.store.db
      .selectFrom("cards")
      .select((eb) => eb.fn.countAll().as("n"))
      .executeTakeFirstOrThrow();
    const cases: [unknown, string][] = [
      [{ type: "gold" }, "type"],
      [{}, "type"],
      [{ type: "virtual", expiry: "1301" }, "expiry"],
      [{ type: "virtual", expiry: "2013" }, "expiry"],
      [{ type: "virtual", expiry: "2001" }, "expiry"],
      [{ type: "virtual", pan: "4000001234567899" }, "pan"],
      [{ type: "virtual", cardholderName: "x".repeat(101) }, "cardholderName"],
      [{ type: "virtual", status: "closed" }, "status"],
    ];
    for (const [body, field] of cases) {
      const response = await h.call("POST", "/v1/cards", body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().errors, JSON.stringify(body)).toHaveProperty([field]);
    }
    const after = await h.runtime.store.db
      .selectFrom("cards")
      .select((eb) => eb.fn.countAll().as("n"))
      .executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });

  it("rejects malformed JSON, wrong content types, oversized bodies and bad path tokens with 4xx problems", async () => {
    const auth = { authorization: `Bearer ${await h.token()}` };
    const malformed = await h.app.inject({
      method: "POST",
      url: "/v1/cards",
      headers: { ...auth, "content-type": "application/json" },
      payload: '{"type": "virtual"',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json()).toMatchObject({ code: "invalid_json" });

    const text = await h.app.inject({
      method: "POST",
      url: "/v1/cards",
      headers: { ...auth, "content-type": "text/plain" },
      payload: "type=virtual",
    });
    expect(text.statusCode).toBe(415);

    const huge = await h.app.inject({
      method: "POST",
      url: "/v1/cards",
      headers: { ...auth, "content-type": "application/json" },
      payload: JSON.stringify({ type: "virtual", cardholderName: "x".repeat(200_000) }),
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json()).toMatchObject({ code: "payload_too_large" });

    for (const token of ["12345678", "1234567890", "abcdefghi", "12345678%20"]) {
      const response = await h.call("GET", `/v1/cards/${token}`);
      expect(response.statusCode, token).toBe(400);
      expect(response.json().errors).toHaveProperty("publicToken");
    }
  });

  it("serves its OpenAPI 3.1 document and the docs UI", async () => {
    const doc = await h.app.inject({ method: "GET", url: "/openapi.json" });
    expect(doc.statusCode).toBe(200);
    expect(doc.json().openapi).toBe("3.1.0");
    expect(Object.keys(doc.json().paths)).toContain("/v1/cards/{publicToken}/cvv/verify");
    const ui = await h.app.inject({ method: "GET", url: "/docs" });
    expect([200, 302]).toContain(ui.statusCode);
  });

  it("serves /docs under a CSP that lets Swagger UI run and forbids framing (Hardening II)", async () => {
    for (const url of [
      "/docs",
      "/docs/",
      "/docs/static/index.html",
      "/docs/static/swagger-ui-bundle.js",
      "/docs/json",
    ]) {
      const response = await h.app.inject({ method: "GET", url });
      expect(response.statusCode, url).toBeLessThan(400);
      const csp = String(response.headers["content-security-policy"] ?? "");
      expect(csp, url).toContain("frame-ancestors 'none'");
      expect(csp, url).toMatch(/default-src 'none'/);
      expect(csp, url).toMatch(/script-src 'self'(;|$)/);
      expect(csp, url).not.toMatch(/script-src[^;]*unsafe/);
      expect(response.headers["x-frame-options"], url).toBe("DENY");
    }
  });

  it("does not serve /docs when the API documentation is off (production default) (Hardening II)", async () => {
    const off = await createHarness({ env: { CARDVAULT_API_DOCS: "off" } });
    try {
      for (const url of ["/docs", "/docs/static/index.html", "/docs/json"]) {
        expect((await off.app.inject({ method: "GET", url })).statusCode, url).toBe(404);
      }
    } finally {
      await off.close();
    }
  });

  it("reports health and readiness without a token", async () => {
    expect((await h.app.inject({ method: "GET", url: "/healthz" })).json()).toEqual({ status: "ok" });
    expect((await h.app.inject({ method: "GET", url: "/readyz" })).json()).toMatchObject({ status: "ready" });
  });
});

describe("cardholder name (Hardening II)", () => {
  const bad = [
    "Ada\u0000Lovelace",
    "Ada\r\nLovelace",
    "Ada\nX-Injected: 1",
    "Ada \u202eecalevoL",
    "Ada\u200fLovelace",
    "Ada\tLovelace",
    "<script>",
    "Ada 😀",
    " ",
    " Ada",
    "Ада Лавлейс",
  ];

  it("is restricted to a printable embossing set on create and update: 400 with a field error", async () => {
    const { publicToken } = await h.createCard({ type: "virtual", cardholderName: "Ada Lovelace" });
    for (const name of bad) {
      const created = await h.call("POST", "/v1/cards", { type: "virtual", cardholderName: name });
      expect(created.statusCode, JSON.stringify(name)).toBe(400);
      expect(created.json().errors, JSON.stringify(name)).toHaveProperty("cardholderName");
      const patched = await h.call("PATCH", `/v1/cards/${publicToken}`, { cardholderName: name });
      expect(patched.statusCode, JSON.stringify(name)).toBe(400);
      expect(patched.json().errors, JSON.stringify(name)).toHaveProperty("cardholderName");
    }
    expect((await h.call("GET", `/v1/cards/${publicToken}`)).json().cardholderName).toBe("Ada Lovelace");
  });

  it("accepts letters (Latin accented too), digits, space and . , ' - / &", async () => {
    for (const name of [
      "Zoë O'Brien-Müller",
      "J. R. R. Tolkien & Co/Ltd, 3",
      "ÅSA ØSTERGÅRD",
      "Łukasz Żółć",
    ]) {
      const created = await h.call("POST", "/v1/cards", { type: "virtual", cardholderName: name });
      expect(created.statusCode, name).toBe(201);
      expect(created.json().cardholderName).toBe(name);
    }
  });

  it("is refused by the service itself, whatever path sets it", async () => {
    const actor = { tenantId: "acme", subject: "t" };
    await expect(
      h.runtime.services.cards.create(actor, { type: "virtual", cardholderName: "Ada\u202e" }),
    ).rejects.toMatchObject({ code: "validation_failed", fields: { cardholderName: expect.any(Array) } });
    const { publicToken } = await h.createCard();
    await expect(
      h.runtime.services.cards.update(actor, publicToken, { cardholderName: "Ada\r\n" }),
    ).rejects.toMatchObject({ code: "validation_failed", fields: { cardholderName: expect.any(Array) } });
  });
});
