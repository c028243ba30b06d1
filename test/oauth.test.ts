// OAuth2 client credentials (issue 16, item 1), against the real app: clients registered through the service
// the CLI uses, token requests as form and JSON, Basic and body authentication, every RFC 6749 §5.2 refusal in
// the RFC's JSON shape, the failure limits, secret rotation with its overlap on an injected clock, tokens the
// service itself accepts and that verify with jose's remote JWKS against the live server, and no secret or token
// in the logs or the audit.
import { Writable } from "node:stream";
import { createRemoteJWKSet, decodeJwt, jwtVerify, SignJWT } from "jose";
import pino from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fixedClock } from "../src/lib/clock.js";
import { createHarness, type Harness, TEST_JWT_SECRET } from "./helpers/harness.js";

const clock = fixedClock("2026-03-01T10:00:00.000Z");
const logLines: string[] = [];
let h: Harness;
let client: { id: string; secret: string };

const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
const form = (params: Record<string, string>) => new URLSearchParams(params).toString();

async function tokenRequest(
  payload: string | Record<string, unknown>,
  headers: Record<string, string> = {},
  url = "/oauth2/token",
) {
  const json = typeof payload !== "string";
  return h.app.inject({
    method: "POST",
    url,
    headers: {
      "content-type": json ? "application/json" : "application/x-www-form-urlencoded",
      ...headers,
    },
    payload: json ? JSON.stringify(payload) : payload,
  });
}

async function newClient(scope = "cards:read cards:write cvv:read", tenantId = "acme") {
  const issued = await h.runtime.services.apiClients.add({ tenantId, scopes: scope.split(" ") });
  return { id: issued.client.clientId, secret: issued.clientSecret };
}

function expectRefusal(response: Awaited<ReturnType<typeof tokenRequest>>, status: number, error: string) {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers["content-type"]).toMatch(/^application\/json/);
  expect(response.headers["cache-control"]).toBe("no-store");
  const body = response.json();
  expect(Object.keys(body).sort()).toEqual(["error", "error_description"]);
  expect(body.error).toBe(error);
  return body as { error: string; error_description: string };
}

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  h = await createHarness({
    clock,
    logger: pino({ level: "debug" }, sink),
    env: { CARDVAULT_TOKEN_FAILURES_PER_CLIENT: "4", CARDVAULT_TOKEN_FAILURES_PER_SOURCE: "1000" },
  });
  client = await newClient();
});
afterAll(() => h.close());

describe("POST /oauth2/token (client credentials)", () => {
  it("issues a token for Basic auth and a form body; the service accepts it for the client's tenant and scopes", async () => {
    const response = await tokenRequest(form({ grant_type: "client_credentials" }), {
      authorization: basic(client.id, client.secret),
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.headers["cache-control"]).toBe("no-store");
    expect(response.headers.pragma).toBe("no-cache");
    const body = response.json();
    expect(body).toEqual({
      access_token: expect.any(String),
      token_type: "Bearer",
      expires_in: 900,
      scope: "cards:read cards:write cvv:read",
    });
    const claims = decodeJwt(body.access_token);
    expect(claims).toMatchObject({
      sub: client.id,
      client_id: client.id,
      tenant: "acme",
      scope: "cards:read cards:write cvv:read",
      iss: h.config.publicUrl,
      aud: h.config.publicUrl,
      exp: Math.floor(clock.now().getTime() / 1000) + 900,
    });
    const created = await h.call("POST", "/v1/cards", { type: "virtual" }, { token: body.access_token });
    expect(created.statusCode, created.body).toBe(201);
    const listed = await h.call("GET", `/v1/cards/${created.json().publicToken}`, undefined, {
      token: body.access_token,
    });
    expect(listed.statusCode).toBe(200);
    // A scope the client was not given is still refused on the API.
    const audit = await h.call("GET", "/v1/audit-events", undefined, { token: body.access_token });
    expect(audit.statusCode).toBe(403);
  });

  it("issues a token for client_id/client_secret in a JSON body, at /connect/token too", async () => {
    for (const url of ["/oauth2/token", "/connect/token"]) {
      const response = await tokenRequest(
        { grant_type: "client_credentials", client_id: client.id, client_secret: client.secret },
        {},
        url,
      );
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json().token_type).toBe("Bearer");
    }
    const viaForm = await tokenRequest(
      form({ grant_type: "client_credentials", client_id: client.id, client_secret: client.secret }),
      {},
      "/connect/token",
    );
    expect(viaForm.statusCode, viaForm.body).toBe(200);
  });

  it("grants a narrower scope when asked, and the token carries only it", async () => {
    const response = await tokenRequest(form({ grant_type: "client_credentials", scope: "cards:read" }), {
      authorization: basic(client.id, client.secret),
    });
    expect(response.statusCode, response.body).toBe(200);
    const { access_token, scope } = response.json();
    expect(scope).toBe("cards:read");
    const write = await h.call("POST", "/v1/cards", { type: "virtual" }, { token: access_token });
    expect(write.statusCode).toBe(403);
    const card = await h.createCard();
    const read = await h.call("GET", `/v1/cards/${card.publicToken}`, undefined, { token: access_token });
    expect(read.statusCode).toBe(200);
  });

  it("verifies with jose's createRemoteJWKSet against /.well-known/jwks.json of the live server", async () => {
    const address = await h.app.listen({ host: "127.0.0.1", port: 0 });
    const { access_token } = (
      await tokenRequest(form({ grant_type: "client_credentials" }), {
        authorization: basic(client.id, client.secret),
      })
    ).json();
    const jwks = createRemoteJWKSet(new URL("/.well-known/jwks.json", address));
    const { payload, protectedHeader } = await jwtVerify(access_token, jwks, {
      issuer: h.config.publicUrl,
      audience: h.config.publicUrl,
      typ: "at+jwt",
      currentDate: clock.now(),
    });
    expect(protectedHeader).toMatchObject({ alg: "EdDSA", kid: "access-token-sign-v1" });
    expect(payload.sub).toBe(client.id);
    const raw = await fetch(new URL("/.well-known/jwks.json", address));
    const set = (await raw.json()) as { keys: Record<string, string>[] };
    expect(set.keys).toEqual([
      {
        kty: "OKP",
        crv: "Ed25519",
        x: expect.any(String),
        kid: "access-token-sign-v1",
        use: "sig",
        alg: "EdDSA",
      },
    ]);
    expect(raw.headers.get("cache-control")).toBe("public, max-age=300");
  });

  it("accepts its own tokens only as issued: its issuer, audience and jti, and EdDSA only", async () => {
    const now = Math.floor(clock.now().getTime() / 1000);
    const claims = {
      iss: h.config.publicUrl,
      aud: h.config.publicUrl,
      sub: client.id,
      client_id: client.id,
      tenant: "acme",
      scope: "cards:write",
      iat: now,
      exp: now + 600,
      jti: "00000000-0000-4000-8000-000000000000",
    };
    const create = (token: string) => h.call("POST", "/v1/cards", { type: "virtual" }, { token });
    expect((await create(await h.runtime.keys.signAccessToken(claims))).statusCode).toBe(201);
    for (const changed of [
      { iss: "https://other.test" },
      { aud: "https://other.test" },
      { jti: undefined },
    ]) {
      const token = await h.runtime.keys.signAccessToken(
        Object.fromEntries(
          Object.entries({ ...claims, ...changed }).filter(([, v]) => v !== undefined),
        ) as Record<string, string | number>,
      );
      expect((await create(token)).statusCode, JSON.stringify(changed)).toBe(401);
    }
    // Naming our key's kid does not make an HS256 token under the shared secret one of ours.
    const confused = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: "access-token-sign-v1" })
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    expect((await create(confused)).statusCode).toBe(401);
  });

  it("refuses a token past its lifetime", async () => {
    const { access_token } = (
      await tokenRequest(form({ grant_type: "client_credentials" }), {
        authorization: basic(client.id, client.secret),
      })
    ).json();
    const later = fixedClock(new Date(clock.now().getTime() + 901_000 + 5_000));
    const verifier = (await import("../src/http/auth.js")).createTokenVerifier(h.config.auth, later, {
      issuer: h.config.publicUrl,
      keys: h.runtime.keys,
    });
    await expect(verifier.verify(access_token)).rejects.toMatchObject({ code: "unauthorized" });
  });
});

describe("refusals (RFC 6749 §5.2)", () => {
  // A client of its own per test: each refusal counts against its client's failure limit.
  let c: { id: string; secret: string };
  beforeEach(async () => {
    c = await newClient();
  });

  it("invalid_client: a wrong secret with Basic is a 401 with a Basic challenge", async () => {
    const response = await tokenRequest(form({ grant_type: "client_credentials" }), {
      authorization: basic(c.id, "cvs_wrong"),
    });
    expectRefusal(response, 401, "invalid_client");
    expect(response.headers["www-authenticate"]).toMatch(/^Basic realm="cardvault"/);
  });

  it("invalid_client: an unknown client, no credentials, an undecodable or non-Basic Authorization header", async () => {
    const other = await newClient("cards:read");
    expectRefusal(
      await tokenRequest({ grant_type: "client_credentials", client_id: "cvc_nobody", client_secret: "x" }),
      401,
      "invalid_client",
    );
    const none = await tokenRequest(form({ grant_type: "client_credentials" }));
    expectRefusal(none, 401, "invalid_client");
    expect(none.headers["www-authenticate"]).toBeUndefined();
    const undecodable = await tokenRequest(form({ grant_type: "client_credentials" }), {
      authorization: "Basic %%%",
    });
    expectRefusal(undecodable, 401, "invalid_client");
    expect(undecodable.headers["www-authenticate"]).toMatch(/^Basic /);
    expectRefusal(
      await tokenRequest(form({ grant_type: "client_credentials" }), { authorization: "Bearer abc" }),
      401,
      "invalid_client",
    );
    // A body secret of another client does not authenticate this one.
    expectRefusal(
      await tokenRequest({
        grant_type: "client_credentials",
        client_id: other.id,
        client_secret: c.secret,
      }),
      401,
      "invalid_client",
    );
  });

  it("invalid_request: no grant_type, both ways of authenticating, a repeated parameter, a bad body", async () => {
    const auth = { authorization: basic(c.id, c.secret) };
    expectRefusal(await tokenRequest(form({ scope: "cards:read" }), auth), 400, "invalid_request");
    expectRefusal(
      await tokenRequest(form({ grant_type: "client_credentials", client_secret: c.secret }), auth),
      400,
      "invalid_request",
    );
    expectRefusal(
      await tokenRequest("grant_type=client_credentials&scope=cards:read&scope=cvv:read", auth),
      400,
      "invalid_request",
    );
    expectRefusal(
      await tokenRequest({ grant_type: "client_credentials", scope: 7 }, auth),
      400,
      "invalid_request",
    );
    const broken = await h.app.inject({
      method: "POST",
      url: "/oauth2/token",
      headers: { "content-type": "application/json", ...auth },
      payload: "{not json",
    });
    expectRefusal(broken, 400, "invalid_request");
    const text = await h.app.inject({
      method: "POST",
      url: "/oauth2/token",
      headers: { "content-type": "text/plain", ...auth },
      payload: "grant_type=client_credentials",
    });
    expect(expectRefusal(text, 415, "invalid_request").error_description).toMatch(/x-www-form-urlencoded/);
  });

  it("unsupported_grant_type: anything but client_credentials", async () => {
    const body = expectRefusal(
      await tokenRequest(form({ grant_type: "password", username: "u", password: "p" }), {
        authorization: basic(c.id, c.secret),
      }),
      400,
      "unsupported_grant_type",
    );
    expect(body.error_description).toMatch(/client_credentials/);
  });

  it("invalid_scope: a scope beyond the client's, an unknown one, an empty one", async () => {
    const auth = { authorization: basic(c.id, c.secret) };
    for (const scope of ["cards:read pin:read", "nope:nothing", " "]) {
      expectRefusal(
        await tokenRequest(form({ grant_type: "client_credentials", scope }), auth),
        400,
        "invalid_scope",
      );
    }
  });

  it("unauthorized_client: a revoked client, with its right secret; its other requests are invalid_client", async () => {
    const doomed = await newClient("cards:read");
    const ok = await tokenRequest(form({ grant_type: "client_credentials" }), {
      authorization: basic(doomed.id, doomed.secret),
    });
    expect(ok.statusCode).toBe(200);
    await h.runtime.services.apiClients.revoke(doomed.id);
    expectRefusal(
      await tokenRequest(form({ grant_type: "client_credentials" }), {
        authorization: basic(doomed.id, doomed.secret),
      }),
      400,
      "unauthorized_client",
    );
    expectRefusal(
      await tokenRequest(form({ grant_type: "client_credentials" }), {
        authorization: basic(doomed.id, "cvs_guess"),
      }),
      401,
      "invalid_client",
    );
    const listed = await h.runtime.services.apiClients.list("acme");
    expect(listed.find((c) => c.clientId === doomed.id)?.revokedAt).toBe(clock.now().toISOString());
  });
});

describe("client management", () => {
  it("refuses unknown scopes, no scope, an unknown tenant or client, and a bad overlap, changing nothing", async () => {
    const clients = h.runtime.services.apiClients;
    const before = (await clients.list()).length;
    await expect(clients.add({ tenantId: "acme", scopes: ["nope:nothing"] })).rejects.toMatchObject({
      code: "validation_failed",
    });
    await expect(clients.add({ tenantId: "acme", scopes: [] })).rejects.toMatchObject({
      code: "validation_failed",
    });
    await expect(clients.add({ tenantId: "ghost", scopes: ["cards:read"] })).rejects.toMatchObject({
      code: "not_found",
    });
    await expect(clients.revoke("cvc_nobody")).rejects.toMatchObject({ code: "not_found" });
    await expect(clients.rotateSecret(client.id, -1)).rejects.toMatchObject({ code: "validation_failed" });
    await expect(clients.rotateSecret(client.id, 31 * 86_400)).rejects.toMatchObject({
      code: "validation_failed",
    });
    expect((await clients.list()).length).toBe(before);
  });
});

describe("secret rotation", () => {
  it("accepts the old and the new secret until the overlap ends, then only the new one", async () => {
    const rotating = await newClient("cards:read");
    const rotated = await h.runtime.services.apiClients.rotateSecret(rotating.id, 3600);
    expect(rotated.clientSecret).not.toBe(rotating.secret);
    expect(rotated.client.previousSecretValidUntil).toBe(
      new Date(clock.now().getTime() + 3_600_000).toISOString(),
    );
    const ask = (secret: string) =>
      tokenRequest(form({ grant_type: "client_credentials" }), { authorization: basic(rotating.id, secret) });
    expect((await ask(rotating.secret)).statusCode).toBe(200);
    expect((await ask(rotated.clientSecret)).statusCode).toBe(200);
    clock.advance(3_599_000);
    expect((await ask(rotating.secret)).statusCode).toBe(200);
    clock.advance(1_000);
    expectRefusal(await ask(rotating.secret), 401, "invalid_client");
    expect((await ask(rotated.clientSecret)).statusCode).toBe(200);
    // Without an overlap the previous secret is refused at once.
    const again = await h.runtime.services.apiClients.rotateSecret(rotating.id, 0);
    expectRefusal(await ask(rotated.clientSecret), 401, "invalid_client");
    expect((await ask(again.clientSecret)).statusCode).toBe(200);
  });
});

describe("failure limits", () => {
  it("after the per-client limit of failures the next attempt is refused (429 slow_down) even with the right secret, until the window ends", async () => {
    const target = await newClient("cards:read");
    const wrong = { authorization: basic(target.id, "cvs_wrong") };
    for (let i = 0; i < 4; i++) {
      expectRefusal(
        await tokenRequest(form({ grant_type: "client_credentials" }), wrong),
        401,
        "invalid_client",
      );
    }
    const right = { authorization: basic(target.id, target.secret) };
    const limited = await tokenRequest(form({ grant_type: "client_credentials" }), right);
    expectRefusal(limited, 429, "slow_down");
    const retryAfter = Number(limited.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(900);
    // Another client from the same address is not held back by this one's failures.
    expect(
      (
        await tokenRequest(form({ grant_type: "client_credentials" }), {
          authorization: basic(client.id, client.secret),
        })
      ).statusCode,
    ).toBe(200);
    clock.advance(retryAfter * 1000);
    expect((await tokenRequest(form({ grant_type: "client_credentials" }), right)).statusCode).toBe(200);
  });
});

describe("scopes in an scp claim (Okta, Entra ID)", () => {
  const mint = (claims: Record<string, unknown>) => {
    const now = Math.floor(clock.now().getTime() / 1000);
    return new SignJWT({ tenant: "acme", ...claims })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("idp-client")
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
  };

  it("reads scopes from an scp array and from a space-separated scp string", async () => {
    const card = await h.createCard({ type: "virtual" }, await h.token());
    const url = `/v1/cards/${card.publicToken}`;
    for (const scp of [["cards:read", "cvv:read"], "cards:read cvv:read"]) {
      const token = await mint({ scp });
      expect((await h.call("GET", url, undefined, { token })).statusCode).toBe(200);
      expect((await h.call("POST", "/v1/cards", { type: "virtual" }, { token })).statusCode).toBe(403);
    }
    const none = await mint({ scp: [7, { a: 1 }] });
    expect((await h.call("GET", url, undefined, { token: none })).statusCode).toBe(403);
  });
});

describe("the audit and the logs", () => {
  it("hold refusals and issued tokens, never a secret or a token", async () => {
    const witness = await newClient("cards:read");
    const issued = (
      await tokenRequest(form({ grant_type: "client_credentials" }), {
        authorization: basic(witness.id, witness.secret),
      })
    ).json().access_token as string;
    await tokenRequest({
      grant_type: "client_credentials",
      client_id: witness.id,
      client_secret: `${witness.secret}x`,
    });
    await h.runtime.services.refusals.flush();
    const rows = await h.runtime.store.db.selectFrom("audit_events").selectAll().execute();
    const refused = rows.filter(
      (r) => r.action === "auth.refused" && r.outcome === "invalid_client" && r.details?.includes(witness.id),
    );
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ tenant_id: null, actor: expect.stringMatching(/^client:/) });
    expect(JSON.parse(refused[0]!.details!)).toMatchObject({
      count: 1,
      endpoint: "token",
      clientId: witness.id,
    });
    const issuedRows = rows.filter(
      (r) => r.action === "oauth.token_issued" && r.details?.includes(witness.id),
    );
    expect(issuedRows).toMatchObject([
      { tenant_id: "acme", actor: `oauth-client:${witness.id}`, outcome: "success" },
    ]);
    expect(rows.some((r) => r.action === "api_client.created" && r.details?.includes(witness.id))).toBe(true);
    const everything = JSON.stringify(rows) + logLines.join("");
    expect(logLines.length).toBeGreaterThan(0);
    for (const secret of [witness.secret, client.secret, issued, issued.split(".")[2]!]) {
      expect(everything).not.toContain(secret);
    }
    const stored = JSON.stringify(await h.runtime.store.db.selectFrom("api_clients").selectAll().execute());
    expect(stored).not.toContain(witness.secret);
  });
});
