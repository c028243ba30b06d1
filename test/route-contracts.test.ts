// Route contracts: a route whose contract cannot hold stops the app at start-up (checked on a small app and
// on the real one), and the rate limiter takes the card from the parameter a route declares: every limited
// route of every dialect refuses the attempt after the per-card budget, whatever its parameter is called.
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { routeContract } from "../src/http/route-contract.js";
import { actorOf } from "../src/http/v1/schemas.js";
import { declaredRoutes, urlFor, validBody } from "./helpers/declared-routes.js";
import { createHarness, type Harness } from "./helpers/harness.js";

const ok = async () => ({ ok: true });

/** A bare Fastify app with only the contract check, as buildApp runs it on every route. */
function smallApp() {
  const app = Fastify();
  app.addHook("onRoute", (route) => {
    routeContract(route);
  });
  return app;
}

describe("a route's contract is checked when it is registered", () => {
  it("refuses a card parameter its URL does not have, naming the route and its parameters", () => {
    const app = smallApp();
    expect(() =>
      app.get(
        "/cards/:publicToken/cvv",
        { config: { scope: "cvv:read", rateLimit: "reveal", cardParam: "cardId" } },
        ok,
      ),
    ).toThrow(
      'Route GET /cards/:publicToken/cvv: cardParam "cardId" is not a parameter of its URL (its parameters: publicToken).',
    );
    expect(() =>
      app.post("/keys", { config: { scope: "cards:secure-data", rateLimit: false, cardParam: "id" } }, ok),
    ).toThrow(/cardParam "id" is not a parameter of its URL \(its parameters: none\)/);
  });

  it("refuses an authenticated route that does not declare its rate-limit class, or its card parameter", () => {
    const app = smallApp();
    expect(() =>
      app.post(
        "/cards/:publicToken/cvv/verify",
        { config: { scope: "cvv:verify", cardParam: "publicToken" } },
        ok,
      ),
    ).toThrow(/POST \/cards\/:publicToken\/cvv\/verify: declare config\.rateLimit/);
    expect(() =>
      app.get("/cards/:publicToken", { config: { scope: "cards:read", rateLimit: false } }, ok),
    ).toThrow(/GET \/cards\/:publicToken: declare config\.cardParam/);
  });

  it("refuses a rate limit on a public route (limits count per tenant)", () => {
    const app = smallApp();
    expect(() => app.get("/open", { config: { rateLimit: "verify", cardParam: false } }, ok)).toThrow(
      /rateLimit "verify" needs a scope/,
    );
  });

  it("reads the card parameter in the full URL (a plugin's prefix included), and a failure stops ready()", async () => {
    const app = smallApp();
    await app.register(
      async (scope) => {
        scope.get(
          "/cvv",
          { config: { scope: "cvv:read", rateLimit: "reveal", cardParam: "publicToken" } },
          ok,
        );
      },
      { prefix: "/cards/:publicToken" },
    );
    app.register(async (scope) => {
      scope.get(
        "/pismo/:cardId",
        { config: { scope: "cvv:manage", rateLimit: false, cardParam: "card" } },
        ok,
      );
    });
    await expect(app.ready()).rejects.toThrow(/GET \/pismo\/:cardId: cardParam "card" is not a parameter/);
  });

  it("accepts a complete contract, and a public route without one", () => {
    const app = smallApp();
    app.get("/healthz", ok);
    app.get(
      "/cards/:publicToken/cvv/status",
      { config: { scope: "cards:read", rateLimit: false, cardParam: "publicToken" } },
      ok,
    );
    expect(
      routeContract({
        method: ["GET", "HEAD"],
        url: "/x/:card-:other",
        config: { scope: "pin:read", rateLimit: "reveal", cardParam: "card" },
      }),
    ).toEqual([
      { method: "GET", url: "/x/:card-:other", scope: "pin:read", rateLimit: "reveal", cardParam: "card" },
      { method: "HEAD", url: "/x/:card-:other", scope: "pin:read", rateLimit: "reveal", cardParam: "card" },
    ]);
  });
});

describe("the app's routes follow their contracts", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({
      maxCvvTries: 99,
      maxPinTries: 99,
      env: {
        CARDVAULT_RATE_LIMIT_PER_CARD: "2",
        CARDVAULT_RATE_LIMIT_MANAGE_PER_CARD_DAY: "2",
        CARDVAULT_RATE_LIMIT_PER_TENANT: "100000",
        CARDVAULT_RATE_LIMIT_WINDOW_SECONDS: "3600",
      },
    });
    // A route of this test only, added before the app starts as a new route file would add it: its card
    // parameter has a name no other route uses, and its attempt is counted by the service it calls.
    h.app.get(
      "/contract-test/:card/cvv",
      { config: { scope: "cvv:read", rateLimit: "reveal", cardParam: "card" } },
      async (request) =>
        h.runtime.services.cvv.get(actorOf(request), (request.params as { card: string }).card),
    );
  });
  afterAll(() => h?.close());

  it("refuses at start-up a route whose card parameter is not in its URL (buildApp's own check)", () => {
    expect(() =>
      h.app.get(
        "/contract-test/:publicToken",
        { config: { scope: "cards:read", rateLimit: false, cardParam: "cardId" } },
        ok,
      ),
    ).toThrow(/cardParam "cardId" is not a parameter of its URL/);
    expect(() =>
      h.app.get("/contract-test/unlimited", { config: { scope: "cards:read", cardParam: false } }, ok),
    ).toThrow(/declare config\.rateLimit/);
  });

  it("limits per card through the declared parameter, whatever it is called", async () => {
    const [card, other] = [(await h.createCard()).publicToken, (await h.createCard()).publicToken];
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      statuses.push((await h.call("GET", `/contract-test/${card}/cvv`)).statusCode);
    }
    expect(statuses).toEqual([200, 200, 429]);
    // Another card has its own budget.
    expect((await h.call("GET", `/contract-test/${other}/cvv`)).statusCode).toBe(200);
  });

  it("every rate-limited route of every dialect refuses a card's attempt over its budget", async () => {
    const limited = declaredRoutes(h.app).filter((r) => r.rateLimit && r.cardParam);
    expect(limited.length).toBeGreaterThanOrEqual(10);
    for (const route of limited) {
      const { publicToken } = await h.createCard();
      const statuses = [];
      for (let i = 0; i < 3; i++) {
        statuses.push((await h.call(route.method, urlFor(route, publicToken), validBody(route))).statusCode);
      }
      expect(statuses[2], `${route.method} ${route.url} → ${statuses}`).toBe(429);
      expect(statuses.slice(0, 2), `${route.method} ${route.url}`).not.toContain(429);
    }
  });
});
