// Card reveal sessions over HTTP (both stores): minting rules (fields, origin, lifetime, the tenant's PIN
// switch, card states, scope), the page's headers, the page's two calls driven with the real client module,
// single use under concurrency, expiry, audit records, and no session token in any log line or stored row.
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createSessionKey,
  importSigningKey,
  importWrapKey,
  openRevealedData,
  type PublishedKey,
} from "../src/client/secure-data.js";
import type { Clock } from "../src/lib/clock.js";
import { createLogger } from "../src/lib/logger.js";
import { buildWeb } from "../web/build.js";
import { auditActions, panOf } from "./helpers/card-secrets.js";
import { ALL_SCOPES, createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
let noPin: Harness;
/** Small per-card limits, so a burst reaches them in a few requests. */
let limited: Harness;
const PUBLIC_URL = "https://vault.cardvault.test/cardvault";
let offsetMs = 0;
const clock: Clock = { now: () => new Date(Date.now() + offsetMs) };
const logLines: string[] = [];
const sink = new Writable({
  write(chunk, _encoding, done) {
    logLines.push(chunk.toString());
    done();
  },
});
const ORIGIN = "https://app.cardvault.test";

beforeAll(async () => {
  await buildWeb();
  h = await createHarness({ clock, secureDataPin: ["acme"], logger: createLogger("trace", sink) });
  noPin = await createHarness({ env: { CARDVAULT_PUBLIC_URL: PUBLIC_URL } });
  limited = await createHarness({
    secureDataPin: ["acme"],
    env: { CARDVAULT_RATE_LIMIT_PER_CARD: "6", CARDVAULT_REVEAL_SESSIONS_PER_CARD_HOUR: "100" },
  });
});
afterAll(async () => {
  await h.close();
  await noPin.close();
  await limited.close();
});

async function mint(harness: Harness, publicToken: string, body: Record<string, unknown> = {}) {
  return harness.call("POST", `/v1/cards/${publicToken}/reveal-sessions`, {
    fields: ["pan", "cvv", "expiry"],
    targetOrigin: ORIGIN,
    ...body,
  });
}

const asSession = (token: string) => ({ token: null, headers: { authorization: `RevealSession ${token}` } });

/** What the page does: read the session, wrap a fresh key, spend the session, verify and open the answer. */
async function revealAsPage(harness: Harness, token: string) {
  const state = await harness.call("GET", "/reveal/api/session", undefined, asSession(token));
  if (state.statusCode !== 200) return { status: state.statusCode, code: state.json().code as string };
  const keys = state.json().keys as (PublishedKey & { active: boolean })[];
  const wrap = keys.find((k) => k.use === "wrap" && k.active)!;
  const { key, sessionKey } = await createSessionKey(await importWrapKey(wrap.jwk));
  const answer = await harness.call(
    "POST",
    "/reveal/api/secure-data",
    { key, keyId: wrap.kid },
    asSession(token),
  );
  if (answer.statusCode !== 200) return { status: answer.statusCode, code: answer.json().code as string };
  const body = answer.json();
  const signer = keys.find((k) => k.use === "sign" && k.kid === body.signingKeyId)!;
  const data = await openRevealedData(body, sessionKey, await importSigningKey(signer.jwk));
  return { status: 200, fields: body.fields as string[], data };
}

/** Spends a session with a well-formed key that will not unwrap: enough to see how the session is judged. */
const spend = (token: string) =>
  h.call(
    "POST",
    "/reveal/api/secure-data",
    { key: Buffer.alloc(512, 7).toString("base64") },
    asSession(token),
  );

describe("POST /v1/cards/{publicToken}/reveal-sessions", () => {
  it("mints a single-use session: id, token, url with the token in the fragment, 5-minute default expiry; audited", async () => {
    const card = await h.createCard();
    const before = Date.now();
    const response = await mint(h, card.publicToken);
    expect(response.statusCode).toBe(201);
    const session = response.json();
    expect(session.token).toMatch(/^rvs_[A-Za-z0-9_-]{43}$/);
    expect(session.url).toMatch(new RegExp(`/reveal\\?session=${session.id}#${session.token}$`));
    expect(session.fields).toEqual(["pan", "expiry", "cvv"]);
    const ttl = Date.parse(session.expiresAt) - before;
    expect(ttl).toBeGreaterThan(299_000);
    expect(ttl).toBeLessThanOrEqual(301_000);
    expect(await auditActions(h, card.publicToken)).toContain("reveal_session.created:success");
    const row = await h.runtime.store.db
      .selectFrom("reveal_sessions")
      .selectAll()
      .where("id", "=", session.id)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(session.token);
    expect(row.token_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses bad fields, origins and lifetimes with 400 and field errors", async () => {
    const card = await h.createCard();
    const cases: Record<string, unknown>[] = [
      { fields: [] },
      { fields: ["pan", "pan"] },
      { fields: ["track2"] },
      { targetOrigin: "https://app.cardvault.test/" },
      { targetOrigin: "https://app.cardvault.test/path" },
      { targetOrigin: "http://app.cardvault.test" },
      { targetOrigin: "*" },
      { targetOrigin: "javascript:alert(1)" },
      { ttlSeconds: 901 },
      { ttlSeconds: 5 },
      { ttlSeconds: 30.5 },
      { extra: 1 },
    ];
    for (const body of cases) {
      const response = await mint(h, card.publicToken, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json().code).toBe("validation_failed");
    }
    for (const origin of ["http://127.0.0.1:5173", "http://localhost:3000", "https://a.example:8443"]) {
      expect((await mint(h, card.publicToken, { targetOrigin: origin })).statusCode, origin).toBe(201);
    }
    expect((await mint(h, card.publicToken, { ttlSeconds: 900 })).statusCode).toBe(201);
  });

  it("gives the PIN only where the tenant enables PIN delivery (403 reveal_pin_not_allowed elsewhere)", async () => {
    const card = await noPin.createCard();
    const refused = await mint(noPin, card.publicToken, { fields: ["pan", "pin"] });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().code).toBe("reveal_pin_not_allowed");
    const withPin = await h.createCard();
    expect((await mint(h, withPin.publicToken, { fields: ["pin"] })).statusCode).toBe(201);
  });

  it("refuses a blocked (suspended) or closed card, another tenant's card (404) and a token without cards:reveal", async () => {
    const card = await h.createCard();
    await h.call("PATCH", `/v1/cards/${card.publicToken}`, { status: "suspended" });
    expect((await mint(h, card.publicToken)).json().code).toBe("card_blocked");
    await h.call("PATCH", `/v1/cards/${card.publicToken}`, { status: "closed" });
    expect((await mint(h, card.publicToken)).json().code).toBe("card_closed");
    const foreign = await h.createCard({ type: "virtual" }, await h.token(undefined, "globex"));
    expect((await mint(h, foreign.publicToken)).statusCode).toBe(404);
    const other = await h.createCard();
    const token = await h.token(ALL_SCOPES.filter((s) => s !== "cards:reveal"));
    const response = await h.call(
      "POST",
      `/v1/cards/${other.publicToken}/reveal-sessions`,
      { fields: ["pan"], targetOrigin: ORIGIN },
      { token },
    );
    expect(response.statusCode).toBe(403);
  });
});

describe("GET /reveal", () => {
  it("serves the page with a strict CSP framed only by the session's origin, and no X-Frame-Options", async () => {
    const card = await h.createCard();
    const session = (await mint(h, card.publicToken)).json();
    const page = await h.call("GET", `/reveal?session=${session.id}`, undefined, { token: null });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.headers["content-security-policy"]).toBe(
      `default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors ${ORIGIN}`,
    );
    expect(page.headers["x-frame-options"]).toBeUndefined();
    expect(page.body).toContain(`content="${ORIGIN}"`);
    expect(page.body).not.toMatch(/<script>|style=|https?:\/\/(?!app\.cardvault\.test)/);
    const script = await h.call("GET", "/reveal/reveal.js", undefined, { token: null });
    expect(script.statusCode).toBe(200);
    expect(script.headers["content-type"]).toMatch(/^text\/javascript/);
  });

  it("frames an unknown session nowhere; a malformed id is a 400", async () => {
    const unknown = await h.call("GET", "/reveal?session=01a220d7-2ca4-7d4f-b4e0-e58fc839cfc0", undefined, {
      token: null,
    });
    expect(unknown.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect((await h.call("GET", "/reveal?session=x", undefined, { token: null })).statusCode).toBe(400);
    expect((await h.call("GET", "/reveal", undefined, { token: null })).statusCode).toBe(400);
  });
});

describe("the page's calls", () => {
  it("deliver the card's PAN, CVV and expiry once; the PIN only when asked for; audited as a CVV read", async () => {
    const card = await h.createCard();
    const cvv = (await h.call("GET", `/v1/cards/${card.publicToken}/cvv`)).json().cvv;
    const session = (await mint(h, card.publicToken)).json();
    const result = await revealAsPage(h, session.token);
    expect(result.status).toBe(200);
    expect(result.fields).toEqual(["pan", "expiry", "cvv"]);
    expect(result.data!.PAN).toBe(await panOf(h, card.publicToken));
    expect(result.data!.CVV).toBe(cvv);
    expect(result.data).not.toHaveProperty("PIN");
    expect(await auditActions(h, card.publicToken)).toEqual(
      expect.arrayContaining(["reveal_session.used:success", "secure_data.read:success"]),
    );

    await h.call("PUT", `/v1/cards/${card.publicToken}/pin`, { pin: "4821" });
    const withPin = (await mint(h, card.publicToken, { fields: ["pan", "pin"] })).json();
    const pinResult = await revealAsPage(h, withPin.token);
    expect(pinResult.data!.PIN).toBe("4821");
  });

  it("answers already used, expired, blocked and closed with their codes; unknown tokens are 401", async () => {
    const card = await h.createCard();
    const session = (await mint(h, card.publicToken)).json();
    expect((await revealAsPage(h, session.token)).status).toBe(200);
    expect(await revealAsPage(h, session.token)).toEqual({ status: 409, code: "reveal_session_used" });
    // A page that skips the state call and spends directly is refused the same way, and audited.
    expect((await spend(session.token)).json().code).toBe("reveal_session_used");

    const expiring = (await mint(h, card.publicToken, { ttlSeconds: 10 })).json();
    offsetMs = 11_000;
    try {
      expect(await revealAsPage(h, expiring.token)).toEqual({ status: 409, code: "reveal_session_expired" });
      expect((await spend(expiring.token)).json().code).toBe("reveal_session_expired");
    } finally {
      offsetMs = 0;
    }

    const blocked = (await mint(h, card.publicToken)).json();
    await h.call("PATCH", `/v1/cards/${card.publicToken}`, { status: "suspended" });
    expect(await revealAsPage(h, blocked.token)).toEqual({ status: 409, code: "card_blocked" });
    await h.call("PATCH", `/v1/cards/${card.publicToken}`, { status: "closed" });
    expect(await revealAsPage(h, blocked.token)).toEqual({ status: 409, code: "card_closed" });

    for (const token of [`rvs_${"A".repeat(43)}`, "nope", session.id]) {
      expect(await revealAsPage(h, token)).toEqual({ status: 401, code: "reveal_session_invalid" });
    }
    const bare = await h.call("GET", "/reveal/api/session", undefined, { token: null });
    expect(bare.statusCode).toBe(401);
    expect(await auditActions(h, card.publicToken)).toEqual(
      expect.arrayContaining([
        "reveal_session.used:reveal_session_used",
        "reveal_session.used:reveal_session_expired",
      ]),
    );
  });

  it("decides on the card in the transaction that delivers: a card suspended after the check shows nothing", async () => {
    const card = await h.createCard();
    const session = (await mint(h, card.publicToken)).json();
    const state = await h.call("GET", "/reveal/api/session", undefined, asSession(session.token));
    const wrap = (state.json().keys as (PublishedKey & { active: boolean })[]).find(
      (k) => k.use === "wrap" && k.active,
    )!;
    const { key } = await createSessionKey(await importWrapKey(wrap.jwk));
    const cards = h.runtime.repos.cards;
    const findByToken = cards.findByToken;
    let suspendOnce = true;
    // The spend's check reads the card outside any transaction (the transaction's own read is lockByToken); the
    // card is suspended right after that read.
    cards.findByToken = async (...args) => {
      const found = await findByToken(...args);
      if (suspendOnce) {
        suspendOnce = false;
        expect(
          (await h.call("PATCH", `/v1/cards/${card.publicToken}`, { status: "suspended" })).statusCode,
        ).toBe(200);
      }
      return found;
    };
    let answer: Awaited<ReturnType<typeof h.call>>;
    try {
      answer = await h.call(
        "POST",
        "/reveal/api/secure-data",
        { key, keyId: wrap.kid },
        asSession(session.token),
      );
    } finally {
      cards.findByToken = findByToken;
    }
    expect(suspendOnce).toBe(false);
    expect(answer.statusCode).toBe(409);
    expect(answer.json().code).toBe("card_blocked");
    expect(await auditActions(h, card.publicToken)).toContain("reveal_session.used:card_blocked");
    expect(await auditActions(h, card.publicToken)).not.toContain("secure_data.read:success");
  });

  it("leaves the session unspent when the delivery fails (a key that does not unwrap)", async () => {
    const card = await h.createCard();
    const session = (await mint(h, card.publicToken)).json();
    expect((await spend(session.token)).json().code).toBe("session_key_invalid");
    expect((await revealAsPage(h, session.token)).status).toBe(200);
  });

  it("lets exactly one of several concurrent uses of a session through", async () => {
    const card = await h.createCard();
    const session = (await mint(h, card.publicToken)).json();
    const results = await Promise.all(Array.from({ length: 5 }, () => revealAsPage(h, session.token)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409, 409, 409]);
  });

  it("never writes a session token to a log line or an audit record", async () => {
    const card = await h.createCard();
    const session = (await mint(h, card.publicToken)).json();
    await revealAsPage(h, session.token);
    await revealAsPage(h, session.token);
    const audit = await h.runtime.store.db.selectFrom("audit_events").selectAll().execute();
    expect(JSON.stringify(audit)).not.toContain(session.token);
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join("\n")).not.toContain(session.token);
    expect(logLines.join("\n")).not.toContain(session.token.slice(4));
  });
});

describe("hardening: a session gives what it was asked for, at a rate", () => {
  it("delivers exactly the session's fields (expiry only: no PAN, CVV or PIN, even where the tenant delivers PINs)", async () => {
    const card = await h.createCard();
    await h.call("PUT", `/v1/cards/${card.publicToken}/pin`, { pin: "4821" });
    const expiryOnly = (await mint(h, card.publicToken, { fields: ["expiry"] })).json();
    const result = await revealAsPage(h, expiryOnly.token);
    expect(result.status).toBe(200);
    expect(result.fields).toEqual(["expiry"]);
    expect(Object.keys(result.data!)).toEqual(["expiryDate"]);

    const panAndPin = (await mint(h, card.publicToken, { fields: ["pin", "pan"] })).json();
    const both = await revealAsPage(h, panAndPin.token);
    expect(Object.keys(both.data!).sort()).toEqual(["PAN", "PIN"]);
    expect(both.data!.PIN).toBe("4821");

    const cvvOnly = (await mint(h, card.publicToken, { fields: ["cvv"] })).json();
    expect(Object.keys((await revealAsPage(h, cvvOnly.token)).data!)).toEqual(["CVV"]);
  });

  it("never shows a Blocked CVV: a session asking for it answers 409 cvv_blocked, unspent; one without it delivers", async () => {
    const card = await h.createCard();
    expect(
      (await h.call("PUT", `/api/v1/cards/${card.publicToken}/cvv/status`, { status: "Blocked" })).statusCode,
    ).toBe(204);
    const withCvv = (await mint(h, card.publicToken, { fields: ["pan", "cvv"] })).json();
    expect(await revealAsPage(h, withCvv.token)).toEqual({ status: 409, code: "cvv_blocked" });
    const panOnly = (await mint(h, card.publicToken, { fields: ["pan"] })).json();
    expect((await revealAsPage(h, panOnly.token)).status).toBe(200);
    expect((await h.call("POST", `/v1/cards/${card.publicToken}/cvv/unblock`, {})).statusCode).toBe(204);
    expect((await revealAsPage(h, withCvv.token)).status).toBe(200);
  });

  it("counts minting and spending against the card's limit like a CVV read: 429 with Retry-After", async () => {
    const card = await limited.createCard();
    const other = await limited.createCard();
    const statuses: number[] = [];
    // Per card: 6 attempts a minute. Each round is a mint and a spend (two attempts).
    for (let round = 0; round < 4; round++) {
      const minted = await mint(limited, card.publicToken);
      statuses.push(minted.statusCode);
      if (minted.statusCode !== 201) {
        expect(minted.json().code).toBe("rate_limited");
        expect(Number(minted.headers["retry-after"])).toBeGreaterThan(0);
        continue;
      }
      statuses.push((await revealAsPage(limited, minted.json().token)).status);
    }
    expect(statuses).toEqual([201, 200, 201, 200, 201, 200, 429]);
    // The CVV read of that card is refused too: one bucket per card, whatever the limited route.
    expect((await limited.call("GET", `/v1/cards/${card.publicToken}/cvv`)).statusCode).toBe(429);
    // A session minted before the burst is refused at the spend, and stays unspent.
    const early = (await mint(limited, other.publicToken)).json();
    for (let i = 0; i < 5; i++) await limited.call("GET", `/v1/cards/${other.publicToken}/cvv`);
    const spent = await revealAsPage(limited, early.token);
    expect(spent).toEqual({ status: 429, code: "rate_limited" });
    const row = await limited.runtime.store.db
      .selectFrom("reveal_sessions")
      .select("used_at")
      .where("id", "=", early.id)
      .executeTakeFirstOrThrow();
    expect(row.used_at).toBeNull();
    const blocked = await limited.runtime.store.db
      .selectFrom("audit_events")
      .select(["actor", "details"])
      .where("action", "=", "rate_limit.blocked")
      .execute();
    expect(blocked.map((r) => ({ actor: r.actor, ...JSON.parse(r.details ?? "{}") }))).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          kind: "reveal",
          route: "POST /v1/cards/:publicToken/reveal-sessions",
          publicToken: card.publicToken,
        }),
        expect.objectContaining({
          actor: `reveal-session:${early.id}`,
          kind: "reveal",
          route: "POST /reveal/api/secure-data",
          publicToken: other.publicToken,
        }),
      ]),
    );
  });

  it("caps the sessions minted per card per hour (default 10): a burst of 20 mint-and-spend rounds", async () => {
    const card = await h.createCard();
    const minted: number[] = [];
    const delivered: number[] = [];
    let retryAfter = 0;
    for (let round = 0; round < 20; round++) {
      const response = await mint(h, card.publicToken, { fields: ["expiry"] });
      minted.push(response.statusCode);
      if (response.statusCode === 201) delivered.push((await revealAsPage(h, response.json().token)).status);
      else {
        expect(response.json().code).toBe("rate_limited");
        retryAfter = Number(response.headers["retry-after"]);
      }
    }
    console.info(
      `[reveal burst] 20 rounds on one card: ${minted.filter((s) => s === 201).length} minted, ${delivered.filter((s) => s === 200).length} delivered`,
    );
    expect(minted.filter((s) => s === 201)).toHaveLength(10);
    expect(minted.slice(10).every((s) => s === 429)).toBe(true);
    expect(delivered.filter((s) => s === 200)).toHaveLength(10);
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    // Another card of the tenant is not affected; an hour later the card may mint again.
    expect((await mint(h, (await h.createCard()).publicToken)).statusCode).toBe(201);
    offsetMs = 3601_000;
    try {
      // A token minted on the moved clock (the default one expires within the hour).
      const later = await h.call(
        "POST",
        `/v1/cards/${card.publicToken}/reveal-sessions`,
        { fields: ["expiry"], targetOrigin: ORIGIN },
        { token: await h.token() },
      );
      expect(later.statusCode).toBe(201);
    } finally {
      offsetMs = 0;
    }
  });
});

describe("hardening: who may frame the page", () => {
  it("refuses wildcard, malformed-host and plain-http origins with 400 and a targetOrigin field error", async () => {
    const card = await h.createCard();
    for (const targetOrigin of [
      "https://*",
      "https://*.example.com",
      "https://a*b.example.com",
      "https://exa_mple.com",
      "https://-bad.example.com",
      "https://app..example.com",
      "http://192.168.1.10:3000",
      "http://localhost.example.com",
    ]) {
      const response = await mint(h, card.publicToken, { targetOrigin });
      expect(response.statusCode, targetOrigin).toBe(400);
      expect(response.json().code).toBe("validation_failed");
      expect(JSON.stringify(response.json()), targetOrigin).toContain("targetOrigin");
    }
    for (const targetOrigin of ["https://10.0.0.5:8443", "https://[2001:db8::1]", "http://127.0.0.2:3000"]) {
      expect((await mint(h, card.publicToken, { targetOrigin })).statusCode, targetOrigin).toBe(201);
    }
  });
});

describe("hardening: the page URL comes from configuration", () => {
  it("builds url on the configured public base, whatever the Host header says", async () => {
    const card = await noPin.createCard();
    const response = await noPin.call(
      "POST",
      `/v1/cards/${card.publicToken}/reveal-sessions`,
      { fields: ["pan"], targetOrigin: ORIGIN },
      { headers: { host: "evil.example", "x-forwarded-host": "evil.example" } },
    );
    expect(response.statusCode).toBe(201);
    const session = response.json();
    expect(session.url).toBe(`${PUBLIC_URL}/reveal?session=${session.id}#${session.token}`);
    // Without CARDVAULT_PUBLIC_URL, development uses the configured listen address.
    const local = await h.createCard();
    const minted = await h.call(
      "POST",
      `/v1/cards/${local.publicToken}/reveal-sessions`,
      { fields: ["pan"], targetOrigin: ORIGIN },
      { headers: { host: "evil.example" } },
    );
    expect(minted.json().url).toMatch(/^http:\/\/127\.0\.0\.1:8080\/reveal\?session=/);
  });
});
