// Hardening II, item 7: one tenant's webhook endpoints cannot hold back another tenant's deliveries. Both
// stores.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixedClock } from "../src/lib/clock.js";
import { createHarness, type Harness } from "./helpers/harness.js";

const clock = fixedClock("2026-11-28T12:00:00Z");
const ENDPOINT_CAP = 40;
let h: Harness;

beforeAll(async () => {
  h = await createHarness({
    clock,
    allowPrivateWebhooks: ["acme", "globex"],
    env: { CARDVAULT_WEBHOOK_ENDPOINTS_PER_TENANT: String(ENDPOINT_CAP) },
  });
});
afterAll(async () => {
  await h.close();
});

async function createEndpoint(tenant: string, url: string, extra: Record<string, unknown> = {}) {
  return h.call(
    "POST",
    "/v1/webhook-endpoints",
    { url, ...extra },
    { token: await h.token(undefined, tenant) },
  );
}

async function deleteEndpoints(tenant: string) {
  const token = await h.token(undefined, tenant);
  const items = (await h.call("GET", "/v1/webhook-endpoints?limit=100", undefined, { token })).json().items;
  for (const { id } of items as { id: string }[]) {
    expect((await h.call("DELETE", `/v1/webhook-endpoints/${id}`, undefined, { token })).statusCode).toBe(
      204,
    );
  }
}

describe("endpoint cap (Hardening II)", () => {
  it("refuses an endpoint past the tenant's cap with 409, also under concurrent creations; other tenants are not counted", async () => {
    const url = "https://hooks.example.invalid/capped";
    // Five more creations at once than the cap allows: exactly the cap gets through.
    const answers = await Promise.all(
      Array.from({ length: ENDPOINT_CAP + 5 }, () => createEndpoint("acme", url)),
    );
    const statuses = answers.map((a) => a.statusCode);
    expect(statuses.filter((s) => s === 201)).toHaveLength(ENDPOINT_CAP);
    expect(statuses.filter((s) => s === 409)).toHaveLength(5);
    const refused = answers.find((a) => a.statusCode === 409)!;
    expect(refused.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(refused.json()).toMatchObject({ code: "webhook_endpoint_limit", status: 409 });
    expect(refused.json().detail).toContain(`${ENDPOINT_CAP} webhook endpoints`);

    const acme = await h.token();
    const list = (await h.call("GET", "/v1/webhook-endpoints?limit=100", undefined, { token: acme })).json();
    expect(list.items).toHaveLength(ENDPOINT_CAP);
    // Another tenant has its own count.
    expect((await createEndpoint("globex", url)).statusCode).toBe(201);
    // Deleting one frees its place, once.
    const first = list.items[0].id as string;
    expect(
      (await h.call("DELETE", `/v1/webhook-endpoints/${first}`, undefined, { token: acme })).statusCode,
    ).toBe(204);
    expect((await createEndpoint("acme", url)).statusCode).toBe(201);
    expect((await createEndpoint("acme", url)).statusCode).toBe(409);

    await deleteEndpoints("acme");
    await deleteEndpoints("globex");
  });
});
