// The security matrix, run against every authenticated route as it declares itself (its scope and the parameter
// that names its card, native and every dialect): every way a bearer token can be wrong → 401, under the
// HS256 secret and under a JWKS (RS256) configuration, every missing scope → 403, another tenant's card → 404
// with the same body and latency as an unknown card. A new route is covered as soon as it is registered.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scopes } from "../src/http/auth.js";

import { type DeclaredRoute, declaredRoutes, urlFor, validBody } from "./helpers/declared-routes.js";
import { createHarness, type Harness, TEST_JWT_SECRET } from "./helpers/harness.js";

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

/** Every request the matrix makes and checks, printed at the end (docs/security.md quotes it). */
let casesRun = 0;

let h: Harness;
let card: string;
let otherTenantCard: string;
const ISSUER = "https://auth.example.test";
const AUDIENCE = "cardvault";

let routes: DeclaredRoute[] = [];
let documented: string[] = [];

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
  h = await createHarness({
    env: {
      CARDVAULT_JWT_ISSUER: ISSUER,
      CARDVAULT_JWT_AUDIENCE: AUDIENCE,
      // The matrix sends every route several times at one card; the day's unblock limit is tested elsewhere.
      CARDVAULT_RATE_LIMIT_MANAGE_PER_CARD_DAY: "1000",
    },
  });
  card = (await h.createCard()).publicToken;
  otherTenantCard = (await h.createCard({ type: "virtual" }, await h.token(undefined, "globex"))).publicToken;
  routes = declaredRoutes(h.app);
  const doc = (await h.app.inject({ method: "GET", url: "/openapi.json" })).json() as {
    paths: Record<string, Record<string, unknown>>;
  };
  // Every documented operation that needs a bearer token (the token endpoint is how one gets one).
  documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods)
      .filter(([, op]) => (op as { security?: unknown }).security !== undefined)
      .map(([method]) => `${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ":$1")}`),
  );
});
afterAll(() => h.close());

const where = (route: DeclaredRoute) => `${route.method} ${route.url}`;

/** The machine code of an error body, in the native shape (code) or a dialect's (error_code, title…). */
function errorCode(body: Record<string, unknown>): string {
  return String(body.code ?? body.error_code ?? "").toLowerCase();
}

/** Every bad token on every route → 401 problem (or the dialect's shape) with WWW-Authenticate. */
async function expectUnauthorizedEverywhere(
  harness: Harness,
  publicToken: string,
  tokens: Record<string, () => Promise<string | null>>,
): Promise<void> {
  let cases = 0;
  for (const route of routes) {
    for (const [name, make] of Object.entries(tokens)) {
      const response = await harness.call(route.method, urlFor(route, publicToken), validBody(route), {
        token: await make(),
      });
      expect(response.statusCode, `${name}: ${where(route)}`).toBe(401);
      expect(errorCode(response.json()), where(route)).toBe("unauthorized");
      expect(response.headers["www-authenticate"]).toMatch(/^Bearer/);
      cases++;
    }
  }
  expect(cases).toBe(routes.length * Object.keys(tokens).length);
  casesRun += cases;
}

describe("security matrix", () => {
  it("covers every documented route: each is a declared route with a scope", () => {
    expect(routes.length).toBeGreaterThanOrEqual(56);
    expect(routes.map(where).sort()).toEqual(expect.arrayContaining(documented));
    for (const route of routes) expect(route.scope, where(route)).toBeTruthy();
  });

  it("limits every route that verifies or hands out a card secret, per card, in every dialect", () => {
    // The classes of docs/security.md, by what a route does (which its scope says), whatever its dialect.
    const classOf: Record<string, string> = {
      "cvv:verify": "verify",
      "pin:verify": "verify",
      "cvv:read": "reveal",
      "pin:read": "reveal",
      "cards:secure-data": "secure-data",
      // Minting a reveal session hands out the card's secrets through the page: limited like a CVV read.
      "cards:reveal": "reveal",
    };
    // Unblocks and forced rotations hand out fresh tries or a fresh CVV: limited per card per day.
    const handsOutTries = (r: (typeof routes)[number]) =>
      /\/(unblock|rotate|reset-cvv)$/.test(r.url) ||
      (r.method === "POST" && r.url.endsWith("/cvv")) ||
      (r.method === "PUT" && r.url.endsWith("/cvv/status"));
    for (const route of routes) {
      // Only a route that names a card hands out its secrets (GET /v1/secure-data/keys publishes public keys).
      const expected = classOf[route.scope] ?? (handsOutTries(route) ? "manage" : undefined);
      expect(route.rateLimit, where(route)).toBe((route.cardParam && expected) || false);
      // A URL with a card token in it names it as the card (the per-card limit and the 404 test below use it);
      // false there would quietly drop both.
      const token = /:(publicToken|cardId)\b/.exec(route.url)?.[1];
      if (token) expect(route.cardParam, where(route)).toBe(token);
    }
    const limited = routes.filter((r) => r.rateLimit);
    expect(new Set(limited.map((r) => r.url.split("/")[1]))).toEqual(new Set(["v1", "api", "thr", "pismo"]));
  });

  it("answers 401 with a problem and WWW-Authenticate for every bad token on every route", async () => {
    await expectUnauthorizedEverywhere(h, card, badTokens);
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
      expect(response.statusCode, where(route)).toBe(403);
      expect(errorCode(response.json())).toBe("forbidden");
      expect(JSON.stringify(response.json())).toContain(route.scope);
      casesRun++;
    }
  });

  it("answers 403 unknown_tenant on every route to a validly signed token for a tenant that is not registered", async () => {
    // Hardening II (9): such a token reached the services (500 on a foreign key, 200 with empty lists).
    const token = await sign(claims({ tenant: "initech" }));
    // Nothing is written but the refusals' own counts (auth.refused, test/auth-audit.test.ts).
    const audited = () =>
      h.runtime.store.db
        .selectFrom("audit_events")
        .select((eb) => eb.fn.countAll().as("n"))
        .where("action", "!=", "auth.refused")
        .executeTakeFirstOrThrow();
    const before = await audited();
    for (const route of routes) {
      const response = await h.call(route.method, urlFor(route, card), validBody(route), { token });
      expect(response.statusCode, where(route)).toBe(403);
      expect(errorCode(response.json()), where(route)).toBe("unknown_tenant");
      casesRun++;
    }
    expect(Number((await audited()).n)).toBe(Number(before.n));
    // A tenant registered afterwards is known at once (a miss is never cached).
    await h.runtime.services.tenants.add({ id: "initech", bin: "420000" });
    const list = await h.call("GET", "/v1/audit-events", undefined, { token });
    expect(list.statusCode).toBe(200);
  });

  it("answers 404 on every card route for another tenant's card, exactly as for an unknown card", async () => {
    const token = await sign(claims());
    for (const route of routes.filter((r) => r.cardParam)) {
      const foreign = await h.call(route.method, urlFor(route, otherTenantCard), validBody(route), { token });
      const unknown = await h.call(route.method, urlFor(route, "999999999"), validBody(route), { token });
      expect(foreign.statusCode, where(route)).toBe(404);
      expect(unknown.statusCode).toBe(404);
      const { traceId: _a, ...foreignBody } = foreign.json();
      const { traceId: _b, ...unknownBody } = unknown.json();
      expect(foreignBody).toEqual(unknownBody);
      expect(foreign.headers["content-type"]).toBe(unknown.headers["content-type"]);
      casesRun++;
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

describe("timing shape of another tenant's card", () => {
  // Both answers come from the same single indexed query (tenant id AND public token) that finds no row, so
  // the latencies should match. In-process latencies are ~1 ms and noisy on a shared CI machine: the medians
  // of interleaved samples are compared loosely (within 2×), which catches an extra query or a key operation
  // on one path but not microsecond differences — those are not measurable here.
  it("answers another tenant's card and an unknown card in the same time (median of 40 interleaved samples)", async () => {
    const token = await sign(claims());
    const time = async (publicToken: string) => {
      const start = process.hrtime.bigint();
      const response = await h.call("GET", `/v1/cards/${publicToken}`, undefined, { token });
      expect(response.statusCode).toBe(404);
      return Number(process.hrtime.bigint() - start);
    };
    for (let i = 0; i < 10; i++) await time(i % 2 ? otherTenantCard : "999999999"); // warm-up
    const foreign: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 40; i++) {
      foreign.push(await time(otherTenantCard));
      unknown.push(await time("999999999"));
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    const ratio = median(foreign) / median(unknown);
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
    casesRun += 80;
  });
});

describe("security matrix under a JWKS (RS256) configuration", () => {
  let j: Harness;
  let jwksCard: string;
  let publicPem: string;
  let privateKey: SigningKey;
  let otherKey: SigningKey;
  const KID = "signing-1";

  const rs = (
    payload: Record<string, unknown>,
    o: { kid?: string; key?: SigningKey; exp?: number; nbf?: number } = {},
  ) => {
    let jwt = new SignJWT(payload)
      .setProtectedHeader({ alg: "RS256", kid: o.kid ?? KID })
      .setSubject("tester")
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(o.exp ?? now() + 600);
    if (o.nbf !== undefined) jwt = jwt.setNotBefore(o.nbf);
    return jwt.sign(o.key ?? privateKey);
  };

  const jwksBadTokens: Record<string, () => Promise<string>> = {
    expired: () => rs(claims(), { exp: now() - 60 }),
    "nbf in the future": () => rs(claims(), { nbf: now() + 600 }),
    "unknown kid": () => rs(claims(), { kid: "not-published" }),
    "known kid, another private key": () => rs(claims(), { key: otherKey }),
    "algorithm confusion: HS256 keyed with the RS256 public key (PEM)": () =>
      new SignJWT(claims())
        .setProtectedHeader({ alg: "HS256", kid: KID })
        .setSubject("tester")
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime(now() + 600)
        .sign(new TextEncoder().encode(publicPem)),
    "alg none": badTokens["alg none"] as () => Promise<string>,
    "HS256 with the shared secret (not accepted under JWKS)": () => sign(claims()),
    "wrong issuer": async () => {
      const [header, , signature] = (await rs(claims())).split(".");
      return `${header}.${Buffer.from(JSON.stringify({ ...claims(), sub: "t", iss: "https://evil", aud: AUDIENCE, exp: now() + 600 })).toString("base64url")}.${signature}`;
    },
    "wrong audience": () =>
      new SignJWT(claims())
        .setProtectedHeader({ alg: "RS256", kid: KID })
        .setSubject("tester")
        .setIssuer(ISSUER)
        .setAudience("other")
        .setExpirationTime(now() + 600)
        .sign(privateKey),
    "missing tenant claim": () => rs({ scope: claims().scope }),
  };

  beforeAll(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true });
    privateKey = pair.privateKey as SigningKey;
    otherKey = (await generateKeyPair("RS256")).privateKey as SigningKey;
    publicPem = await exportSPKI(pair.publicKey);
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: "RS256", use: "sig" };
    const file = join(h.dataDir, "jwks.json");
    writeFileSync(file, JSON.stringify({ keys: [jwk] }));
    j = await createHarness({
      env: { CARDVAULT_JWKS_FILE: file, CARDVAULT_JWT_ISSUER: ISSUER, CARDVAULT_JWT_AUDIENCE: AUDIENCE },
    });
    jwksCard = (
      await j.runtime.services.cards.create({ tenantId: "acme", subject: "t" }, { type: "virtual" })
    ).publicToken;
  });
  afterAll(() => j?.close());

  it("accepts a good RS256 token (the configuration under test works)", async () => {
    const response = await j.call("GET", `/v1/cards/${jwksCard}`, undefined, { token: await rs(claims()) });
    expect(response.statusCode).toBe(200);
  });

  it("answers 401 with a problem and WWW-Authenticate on every route for every bad token", async () => {
    await expectUnauthorizedEverywhere(j, jwksCard, jwksBadTokens);
  });
});

afterAll(() => {
  // Recorded in docs/security.md; printed so a CI log shows the figure for this build.
  console.info(`[security matrix] ${casesRun} cases over ${routes.length} routes`);
});
