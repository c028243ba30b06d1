// The typed client that ships as `cardvault/client`: its generated types are those of the document the server
// serves now (the committed src/client/api-types.ts is regenerated here and must be identical), and the README
// flow runs through it against a live server over real HTTP — token, card, CVV read and wrong try, status,
// unblock without a body, the event log narrowed by type, a refusal as a typed problem — with no casts.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TYPES_FILE, renderApiTypes } from "../scripts/generate-client.js";
import { type CardvaultClient, createCardvaultClient } from "../src/client/index.js";
import { createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
let client: CardvaultClient;
let base: string;
const seen: { method: string; contentType: string | null; bodyLength: number }[] = [];

/** fetch, noting what each request carried (to check that an optional body is really left out). */
const recordingFetch: typeof fetch = async (input, init) => {
  const request = new Request(input, init);
  const body = await request.clone().arrayBuffer();
  seen.push({
    method: request.method,
    contentType: request.headers.get("content-type"),
    bodyLength: body.byteLength,
  });
  return fetch(request);
};

beforeAll(async () => {
  h = await createHarness();
  base = await h.app.listen({ host: "127.0.0.1", port: 0 });
  const token = await h.token([
    "cards:read",
    "cards:write",
    "cvv:read",
    "cvv:verify",
    "cvv:manage",
    "events:read",
  ]);
  client = createCardvaultClient({ baseUrl: base, token: () => token, fetch: recordingFetch });
});
afterAll(() => h?.close());

describe("the generated client", () => {
  it("is generated from the document the server serves now (run `npm run generate:client` if not)", async () => {
    const served = await fetch(`${base}/openapi.json`);
    const expected = await renderApiTypes(await served.json());
    expect(readFileSync(API_TYPES_FILE, "utf8") === expected, "src/client/api-types.ts is stale").toBe(true);
  });

  it("runs the README flow with types from the document and no casts", async () => {
    const created = await client.POST("/v1/cards", {
      body: { type: "virtual", cardholderName: "Ada Lovelace" },
    });
    expect(created.response.status).toBe(201);
    const card = created.data;
    if (!card) throw new Error(`create card: ${JSON.stringify(created.error)}`);
    expect(card.maskedPan).toMatch(/^400000\*{6}[0-9]{4}$/);
    const path = { publicToken: card.publicToken };

    const cvv = await client.GET("/v1/cards/{publicToken}/cvv", { params: { path } });
    expect(cvv.data?.cvv).toMatch(/^[0-9]{3}$/);
    const wrong = cvv.data?.cvv === "000" ? "001" : "000";

    const verified = await client.POST("/v1/cards/{publicToken}/cvv/verify", {
      params: { path },
      body: { cvv: wrong },
    });
    expect(verified.data).toEqual({ result: "mismatch", status: "Unblocked", remainingTries: 2 });

    const status = await client.GET("/v1/cards/{publicToken}/cvv/status", { params: { path } });
    expect(status.data).toEqual({ status: "Unblocked", remainingTries: 2, maxTries: 3 });

    // The body is optional in the document, so the call needs none; it is sent without one.
    seen.length = 0;
    const unblocked = await client.POST("/v1/cards/{publicToken}/cvv/unblock", { params: { path } });
    expect(unblocked.response.status).toBe(204);
    expect(seen).toEqual([{ method: "POST", contentType: null, bodyLength: 0 }]);
    const after = await client.GET("/v1/cards/{publicToken}/cvv/status", { params: { path } });
    expect(after.data?.remainingTries).toBe(3);

    // Events are typed per type: checking `type` narrows `data`.
    const events = await client.GET("/v1/events", { params: { query: { type: "card.created" } } });
    const createdEvent = events.data?.items.find((event) => event.type === "card.created");
    if (createdEvent?.type !== "card.created") throw new Error("no card.created event");
    expect(createdEvent.data.publicToken).toBe(card.publicToken);
    expect(createdEvent.data.last4).toBe(card.last4);

    // A refusal is a typed problem (application/problem+json).
    const missing = await client.GET("/v1/cards/{publicToken}", {
      params: { path: { publicToken: "000000000" } },
    });
    expect(missing.response.status).toBe(404);
    expect(missing.error?.code).toBe("card_not_found");
    expect(missing.error?.traceId).toBe(missing.response.headers.get("x-request-id"));
  });

  it("ships as cardvault/client, beside the secure-data and webhook helpers", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(pkg.exports["./client"]).toEqual({
      types: "./dist/client/index.d.ts",
      default: "./dist/client/index.js",
    });
    expect(Object.keys(pkg.exports)).toEqual(
      expect.arrayContaining(["./client/secure-data", "./client/verify-webhook"]),
    );
    expect(Object.keys(pkg.dependencies)).toContain("openapi-fetch");
  });
});
