// Losing the database: requests answer 503 problems (nothing changes), /readyz fails, and both recover by
// themselves when the database comes back — no restart. The database link runs through a TCP proxy the
// test cuts and restores.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DatabaseProxy, startDatabaseProxy } from "../helpers/database-proxy.js";
import { createHarness, type Harness } from "../helpers/harness.js";

let h: Harness;
let proxy: DatabaseProxy;

const target = new URL(process.env.CARDVAULT_TEST_DATABASE_URL ?? "postgres://127.0.0.1:5432/postgres");
beforeAll(async () => {
  proxy = await startDatabaseProxy(target);
  h = await createHarness({
    env: { CARDVAULT_DB_CONNECTION_TIMEOUT_MS: "500", CARDVAULT_DB_STATEMENT_TIMEOUT_MS: "2000" },
    databaseUrlFor: proxy.urlFor,
  });
}, 30_000);
afterAll(async () => {
  if (proxy.listening) await proxy.cut();
  await h.close();
});

describe("database outage", () => {
  it("answers 503 while the database is gone and recovers without a restart", async () => {
    const ready = await h.app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(200);
    const before = await h.createCard();

    await proxy.cut();
    const notReady = await h.app.inject({ method: "GET", url: "/readyz" });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toMatchObject({
      code: "service_unavailable",
      errors: { store: [expect.any(String)] },
    });
    const create = await h.call("POST", "/v1/cards", { type: "virtual" });
    expect(create.statusCode).toBe(503);
    expect(create.json()).toMatchObject({ code: "service_unavailable", status: 503 });
    const verify = await h.call("POST", `/v1/cards/${before.publicToken}/cvv/verify`, { cvv: "000" });
    expect(verify.statusCode).toBe(503);

    await proxy.start();
    let recovered = 0;
    for (let i = 0; i < 50 && recovered !== 200; i++) {
      recovered = (await h.app.inject({ method: "GET", url: "/readyz" })).statusCode;
      if (recovered !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(recovered).toBe(200);
    expect((await h.call("POST", "/v1/cards", { type: "virtual" })).statusCode).toBe(201);
    // The verification that failed during the outage used no try.
    expect((await h.call("GET", `/v1/cards/${before.publicToken}/cvv/status`)).json()).toMatchObject({
      remainingTries: 3,
    });
  });
});
