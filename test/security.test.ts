// The security matrix, run against every route the OpenAPI document lists: every way a bearer token can be
// wrong → 401, every missing scope → 403, another tenant's card → 404 exactly like an unknown card.
import { SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scopes } from "../src/http/auth.js";
import { createHarness, type Harness, TEST_JWT_SECRET } from "./helpers/harness.js";

let h: Harness;
let card: string;
let otherTenantCard: string;
const ISSUER = "https://auth.example.test";
const AUDIENCE = "cardvault";

interface RouteCase {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  scope: string;
}
let routes: RouteCase[] = [];

const secret = new TextEncoder().encode(TEST_JWT_SECRET);
const now = () => Math.floor(Date.now() / 1000);

function claims(overrides: Record<string, unknown> = {}) {
  return { tenant: "acme", scope: scopes.join(" "), ...overrides };
}

async function sign(
  payload: Record<string, unknown>,
  options: {
    exp?: number;
    nbf?: number;
    iss?: string;
    aud?: string;
    sub?: string | null;
    key?: Uint8Array;
  } = {},
) {
  let jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime(options.exp ?? now() + 600)
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? AUDIENCE);
  if (options.sub !== null) jwt = jwt.setSubject(options.sub ?? "tester");
  if (options.nbf !== undefined) jwt = jwt.setNotBefore(options.nbf);
  return jwt.sign(options.key ?? secret);
}

const badTokens: Record<string, () => Promise<string | null>> = {
  "no token": async () => null,
  "not a JWT": async () => "not-a-jwt",
  "alg none": async () =>
    new UnsecuredJWT(claims())
      .setSubject("tester")
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime(now() + 600)
      .encode(),
  "wrong secret": async () =>
    sign(claims(), { key: new TextEncoder().encode("another-secret-that-is-long-enough-too!!") }),
  expired: async () => sign(claims(), { exp: now() - 60 }),
  "nbf in the future": async () => sign(claims(), { nbf: now() + 600 }),
  "wrong issuer": async () => sign(claims(), { iss: "https://evil.example.test" }),
  "wrong audience": async () => sign(claims(), { aud: "someone-else" }),
  "tampered payload": async () => {
    const token = await sign(claims());
    const [header, , signature] = token.split(".");
    const forged = Buffer.from(
      JSON.stringify({
        ...claims({ tenant: "globex" }),
        sub: "tester",
        iss: ISSUER,
        aud: AUDIENCE,
        exp: now() + 600,
      }),
    ).toString("base64url");
    return `${header}.${forged}.${signature}`;
  },
  "missing tenant claim": async () => sign({ scope: claims().scope }),
  "missing subject": async () => sign(claims(), { sub: null }),
  "HS512 not on the allow-list": async () =>
    new SignJWT(claims())
      .setProtectedHeader({ alg: "HS512" })
      .setSubject("tester")
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime(now() + 600)
      .sign(secret),
};

beforeAll(async () => {
  h = await createHarness({ env: { CARDVAULT_JWT_ISSUER: ISSUER, CARDVAULT_JWT_AUDIENCE: AUDIENCE } });
  card = (await h.createCard()).publicToken;
  otherTenantCard = (await h.createCard({ type: "virtual" }, await h.token(undefined, "globex"))).publicToken;
  const doc = (await h.app.inject({ method: "GET", url: "/openapi.json" })).json() as {
    paths: Record<string, Record<string, { security?: { bearer: string[] }[] }>>;
  };
  routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase() as RouteCase["method"],
      path,
      scope: op.security?.[0]?.bearer[0] ?? "",
    })),
  );
});
afterAll(() => h.close());

const urlFor = (route: RouteCase, publicToken: string) =>
  route.path.replace("{publicToken}", publicToken).replace("{cardId}", publicToken);
const isCardRoute = (route: RouteCase) =>
  route.path.includes("{publicToken}") || route.path.includes("{cardId}");

/** The machine code of an error body, in the native shape (code) or a dialect's (error_code, title…). */
function errorCode(body: Record<string, unknown>): string {
  return String(body.code ?? body.error_code ?? "").toLowerCase();
}

/** A body that passes validation on each route, so only authorisation decides the answer. */
function validBody(route: RouteCase): unknown {
  if (route.method === "GET" || route.method === "DELETE") return undefined;
  if (route.path === "/v1/cards") return { type: "virtual" };
  if (route.path.endsWith("/cvv/verify")) return { cvv: "123" };
  if (route.path.endsWith("/pin/verify")) return { pin: "1234" };
  if (route.path.endsWith("/pin")) return { pin: "1234" };
  if (route.path.endsWith("/cvv/rotation")) return { intervalHours: 24 };
  if (route.path.endsWith("/cvv-rotation")) return { cvv_rotation_interval_hours: 24 };
  if (route.path === "/v1/test-clocks") return { frozenTime: "2026-01-01T00:00:00Z" };
  if (route.path.endsWith("/advance")) return { to: "2027-01-01T00:00:00Z" };
  if (route.method === "PATCH") return { cardholderName: "Someone" };
  return {};
}

describe("security matrix", () => {
  it("covers every documented route, each with a scope", () => {
    expect(routes.length).toBeGreaterThanOrEqual(13);
    for (const route of routes) expect(route.scope, `${route.method} ${route.path}`).not.toBe("");
  });

  it("answers 401 with a problem and WWW-Authenticate for every bad token on every route", async () => {
    let cases = 0;
    for (const route of routes) {
      for (const [name, make] of Object.entries(badTokens)) {
        const response = await h.call(route.method, urlFor(route, card), validBody(route), {
          token: await make(),
        });
        expect(response.statusCode, `${name}: ${route.method} ${route.path}`).toBe(401);
        expect(errorCode(response.json()), `${route.method} ${route.path}`).toBe("unauthorized");
        expect(response.headers["www-authenticate"]).toMatch(/^Bearer/);
        cases++;
      }
    }
    expect(cases).toBe(routes.length * Object.keys(badTokens).length);
  });

  it("answers 403 on every route to a valid token that lacks the route's scope", async () => {
    for (const route of routes) {
      const allBut = claims()
        .scope.split(" ")
        .filter((s) => s !== route.scope)
        .join(" ");
      const response = await h.call(route.method, urlFor(route, card), validBody(route), {
        token: await sign(claims({ scope: allBut })),
      });
      expect(response.statusCode, `${route.method} ${route.path}`).toBe(403);
      expect(errorCode(response.json())).toBe("forbidden");
      expect(JSON.stringify(response.json())).toContain(route.scope);
    }
  });

  it("answers 404 on every card route for another tenant's card, exactly as for an unknown card", async () => {
    const token = await sign(claims());
    for (const route of routes.filter(isCardRoute)) {
      const foreign = await h.call(route.method, urlFor(route, otherTenantCard), validBody(route), { token });
      const unknown = await h.call(route.method, urlFor(route, "999999999"), validBody(route), { token });
      expect(foreign.statusCode, `${route.method} ${route.path}`).toBe(404);
      expect(unknown.statusCode).toBe(404);
      const { traceId: _a, ...foreignBody } = foreign.json();
      const { traceId: _b, ...unknownBody } = unknown.json();
      expect(foreignBody).toEqual(unknownBody);
    }
    // ...and nothing happened to the other tenant's card.
    const status = await h.call("GET", `/v1/cards/${otherTenantCard}/cvv/status`, undefined, {
      token: await h.token(undefined, "globex"),
    });
    expect(status.json()).toMatchObject({ remainingTries: 3 });
  });

  it("puts security headers on every response", async () => {
    for (const url of ["/healthz", `/v1/cards/${card}`, "/nope"]) {
      const response = await h.call("GET", url);
      expect(response.headers["x-content-type-options"]).toBe("nosniff");
      expect(response.headers["cache-control"]).toBe("no-store");
      expect(response.headers["content-security-policy"]).toContain("default-src 'none'");
      expect(response.headers["x-request-id"]).toBeTruthy();
    }
  });
});
