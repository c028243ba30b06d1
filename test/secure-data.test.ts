// Get Card Data, end to end with the real client module: keys published, a session key wrapped on the
// "device", the answer verified and opened; tampering, replays, bad keys, closed cards, scopes, the JWE path,
// the tenant PIN switch, and no secret in any log line, audit record or stored row.
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDeviceKey,
  createSessionKey,
  type EncryptedCardData,
  importSigningKey,
  importWrapKey,
  openCardData,
  openCardDataJwe,
  type PublishedKey,
  SecureDataError,
  threddCardDataRequest,
  type WebCryptoKey,
} from "../src/client/secure-data.js";
import { isLuhnValid } from "../src/crypto/luhn.js";
import { createLogger } from "../src/lib/logger.js";
import { auditActions, panOf } from "./helpers/card-secrets.js";
import { ALL_SCOPES, createHarness, type Harness } from "./helpers/harness.js";

let h: Harness;
let withPin: Harness;
let wrapKey: WebCryptoKey;
let signingKey: WebCryptoKey;
let published: (PublishedKey & { alg: string; active: boolean; createdAt: string; pem: string })[];
const logLines: string[] = [];
const sink = new Writable({
  write(chunk, _encoding, done) {
    logLines.push(chunk.toString());
    done();
  },
});

beforeAll(async () => {
  h = await createHarness({ logger: createLogger("trace", sink) });
  withPin = await createHarness({ secureDataPin: ["acme"] });
  const response = await h.call("GET", "/v1/secure-data/keys");
  expect(response.statusCode).toBe(200);
  published = response.json().keys;
  wrapKey = await importWrapKey(published.find((k) => k.use === "wrap")!.jwk);
  signingKey = await importSigningKey(published.find((k) => k.use === "sign")!.jwk);
});
afterAll(async () => {
  await h.close();
  await withPin.close();
});

async function cardWithCvv(harness: Harness = h) {
  const card = await harness.createCard({ type: "virtual" });
  const cvv = (await harness.call("GET", `/v1/cards/${card.publicToken}/cvv`)).json().cvv as string;
  const view = (await harness.call("GET", `/v1/cards/${card.publicToken}`)).json();
  return { ...card, cvv, expiryDate: view.expiryDate as string };
}

/** A device request with a session key whose raw bytes the test knows (to look for them in logs). */
async function knownSessionKey() {
  const raw = crypto.getRandomValues(new Uint8Array(32));
  const wrapped = new Uint8Array(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, wrapKey, raw));
  const sessionKey = await crypto.subtle.importKey("raw", raw, { name: "AES-CBC" }, false, ["decrypt"]);
  return { raw: Buffer.from(raw), key: Buffer.from(wrapped).toString("base64"), sessionKey };
}

describe("GET /v1/secure-data/keys", () => {
  it("publishes a 4096-bit RSA-OAEP-256 wrap key and a PS256 signing key, as JWK and PEM with kid and not-after", () => {
    expect(published.map((k) => [k.use, k.alg, k.kid, k.active])).toEqual([
      ["sign", "PS256", "secure-data-sign-v1", true],
      ["wrap", "RSA-OAEP-256", "secure-data-wrap-v1", true],
    ]);
    for (const k of published) {
      expect(k.pem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
      expect(Date.parse(k.notAfter!)).toBeGreaterThan(Date.now() + 365 * 86_400_000);
      expect(k.jwk).toMatchObject({ kty: "RSA", kid: k.kid, e: "AQAB" });
      expect(k.jwk).not.toHaveProperty("d");
    }
    const wrap = published.find((k) => k.use === "wrap")!;
    expect(Buffer.from(wrap.jwk.n, "base64url").length).toBe(512);
  });
});

describe("POST /v1/cards/{publicToken}/secure-data", () => {
  it("round-trips with the client: Luhn-valid PAN matching maskedPan, the CVV of GET …/cvv, the expiry; audited", async () => {
    const card = await cardWithCvv();
    const { key, sessionKey } = await createSessionKey(wrapKey);
    const response = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key });
    expect(response.statusCode).toBe(200);
    const answer = response.json();
    expect(answer).toMatchObject({ wrapKeyId: "secure-data-wrap-v1", signingKeyId: "secure-data-sign-v1" });
    expect(Buffer.from(answer.iv, "base64")).toHaveLength(16);

    const data = await openCardData(answer, sessionKey, signingKey);
    expect(isLuhnValid(data.PAN)).toBe(true);
    expect(`${data.PAN.slice(0, 6)}******${data.PAN.slice(-4)}`).toBe(card.maskedPan);
    expect(data.PAN).toBe(await panOf(h, card.publicToken));
    expect(data.CVV).toBe(card.cvv);
    expect(data.expiryDate).toBe(card.expiryDate);
    expect(data).not.toHaveProperty("PIN");

    expect(await auditActions(h, card.publicToken)).toContain("secure_data.read:success");
  });

  it("fails signature verification when the payload or the iv is altered", async () => {
    const card = await cardWithCvv();
    const { key, sessionKey } = await createSessionKey(wrapKey);
    const answer = (
      await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key })
    ).json() as EncryptedCardData;
    const flip = (b64: string) => {
      const bytes = Buffer.from(b64, "base64");
      bytes[0]! ^= 0x01;
      return bytes.toString("base64");
    };
    for (const tampered of [
      { ...answer, encryptedPayload: flip(answer.encryptedPayload) },
      { ...answer, iv: flip(answer.iv) },
      { ...answer, signatureOfPayloadAndIv: flip(answer.signatureOfPayloadAndIv) },
    ]) {
      await expect(openCardData(tampered, sessionKey, signingKey)).rejects.toThrow(
        /signature does not verify/,
      );
    }
    await expect(openCardData(answer, sessionKey, signingKey)).resolves.toMatchObject({ CVV: card.cvv });
  });

  it("accepts a wrapped key once: a replay is a 409 session_key_replayed, audited, with no payload", async () => {
    const card = await cardWithCvv();
    const { key } = await createSessionKey(wrapKey);
    expect((await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key })).statusCode).toBe(200);
    const replay = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key });
    expect(replay.statusCode).toBe(409);
    expect(replay.json()).toMatchObject({ code: "session_key_replayed" });
    expect(replay.json()).not.toHaveProperty("encryptedPayload");
    // Another card, same key: still a replay (the key is what is spent, not the card).
    const other = await cardWithCvv();
    expect((await h.call("POST", `/v1/cards/${other.publicToken}/secure-data`, { key })).statusCode).toBe(
      409,
    );
    expect(await auditActions(h, card.publicToken)).toEqual(
      expect.arrayContaining(["secure_data.read:success", "secure_data.read:replay_refused"]),
    );
  });

  it("lets exactly one of several concurrent requests with the same key through", async () => {
    const card = await cardWithCvv();
    const { key } = await createSessionKey(wrapKey);
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key })),
    );
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 409, 409, 409, 409]);
  });

  it("ignores Idempotency-Key: a retry never replays the secrets, it is refused as a replayed key", async () => {
    const card = await cardWithCvv();
    const { key } = await createSessionKey(wrapKey);
    const headers = { "idempotency-key": "same-key-1" };
    const first = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key }, { headers });
    const retry = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key }, { headers });
    expect(first.statusCode).toBe(200);
    expect(retry.statusCode).toBe(409);
    expect(retry.headers["idempotent-replayed"]).toBeUndefined();
  });

  it("answers 400 session_key_invalid for a key that does not unwrap, or unwraps to anything but 32 bytes", async () => {
    const card = await cardWithCvv();
    const otherPair = await crypto.subtle.generateKey(
      { name: "RSA-OAEP", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      false,
      ["encrypt", "decrypt"],
    );
    const wrapWith = async (key: WebCryptoKey, raw: Uint8Array) =>
      Buffer.from(await crypto.subtle.encrypt({ name: "RSA-OAEP" }, key, raw)).toString("base64");
    const cases = {
      random: Buffer.from(crypto.getRandomValues(new Uint8Array(512))).toString("base64"),
      "another RSA key": await wrapWith(otherPair.publicKey, new Uint8Array(32)),
      "a 16-byte key": await wrapWith(wrapKey, crypto.getRandomValues(new Uint8Array(16))),
      "a 64-byte key": await wrapWith(wrapKey, crypto.getRandomValues(new Uint8Array(64))),
      short: "AAAA",
    };
    for (const [name, key] of Object.entries(cases)) {
      const response = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key });
      expect(response.statusCode, name).toBe(400);
      expect(response.json(), name).toMatchObject({
        code: "session_key_invalid",
        errors: { key: expect.any(Array) },
      });
    }
    for (const body of [
      {},
      { key: "not base64!" },
      { key: 12 },
      { key: cases.random, extra: 1 },
      { keyId: "x" },
    ]) {
      const response = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, body);
      expect(response.statusCode, JSON.stringify(body)).toBe(400);
      expect(response.json()).toMatchObject({ code: "validation_failed" });
    }
    const { key } = await createSessionKey(wrapKey);
    const badKeyId = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, {
      key,
      keyId: "secure-data-sign-v1",
    });
    expect(badKeyId.statusCode).toBe(400);
    expect(badKeyId.json()).toMatchObject({
      code: "validation_failed",
      errors: { keyId: expect.any(Array) },
    });
    // The refused attempts spent nothing: the same key still works.
    expect(
      (
        await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, {
          key,
          keyId: "secure-data-wrap-v1",
        })
      ).statusCode,
    ).toBe(200);
  });

  it("answers 409 card_closed for a closed card, 404 for another tenant's, 403 without cards:secure-data", async () => {
    const card = await cardWithCvv();
    await h.call("PATCH", `/v1/cards/${card.publicToken}`, { status: "closed" });
    const { key } = await createSessionKey(wrapKey);
    const closed = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key });
    expect(closed.statusCode).toBe(409);
    expect(closed.json()).toMatchObject({ code: "card_closed" });

    const open = await cardWithCvv();
    const foreign = await h.call(
      "POST",
      `/v1/cards/${open.publicToken}/secure-data`,
      { key },
      { token: await h.token(undefined, "globex") },
    );
    expect(foreign.statusCode).toBe(404);
    const noScope = await h.token(ALL_SCOPES.filter((s) => s !== "cards:secure-data"));
    expect(
      (await h.call("POST", `/v1/cards/${open.publicToken}/secure-data`, { key }, { token: noScope }))
        .statusCode,
    ).toBe(403);
    expect((await h.call("GET", "/v1/secure-data/keys", undefined, { token: noScope })).statusCode).toBe(403);
    // None of the refusals spent the key.
    expect((await h.call("POST", `/v1/cards/${open.publicToken}/secure-data`, { key })).statusCode).toBe(200);
  });

  it("adds the PIN to the payload when the tenant enables it", async () => {
    const card = await cardWithCvv(withPin);
    const pin = (await withPin.call("GET", `/v1/cards/${card.publicToken}/pin`)).json().pin as string;
    const keys = (await withPin.call("GET", "/v1/secure-data/keys")).json().keys as PublishedKey[];
    const wrap = await importWrapKey(keys.find((k) => k.use === "wrap")!.jwk);
    const sign = await importSigningKey(keys.find((k) => k.use === "sign")!.jwk);
    const { key, sessionKey } = await createSessionKey(wrap);
    const answer = (await withPin.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key })).json();
    const data = await openCardData(answer, sessionKey, sign);
    expect(data).toMatchObject({ CVV: card.cvv, PIN: pin });
    const row = await withPin.runtime.store.db
      .selectFrom("audit_events")
      .select("details")
      .where("action", "=", "secure_data.read")
      .where("public_token", "=", card.publicToken)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(row.details!)).toMatchObject({ includesPin: true, method: "rsa-oaep+aes-cbc" });
  });
});

describe("the JWE path (device ephemeral P-256 key)", () => {
  it("answers a compact JWE (ECDH-ES, A256GCM) only the device opens, signed inside with PS256; once per device key", async () => {
    const card = await cardWithCvv();
    const device = await createDeviceKey();
    const response = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, {
      deviceKey: device.publicJwk,
    });
    expect(response.statusCode).toBe(200);
    const { jwe, signingKeyId } = response.json();
    expect(signingKeyId).toBe("secure-data-sign-v1");
    expect(jwe.split(".")).toHaveLength(5);
    const header = JSON.parse(Buffer.from(jwe.split(".")[0], "base64url").toString());
    expect(header).toMatchObject({ alg: "ECDH-ES", enc: "A256GCM", cty: "JOSE" });

    const data = await openCardDataJwe(jwe, device.privateKey, signingKey, signingKeyId);
    expect(data).toMatchObject({ CVV: card.cvv, expiryDate: card.expiryDate });
    expect(data.PAN).toBe(await panOf(h, card.publicToken));

    const stranger = await createDeviceKey();
    await expect(openCardDataJwe(jwe, stranger.privateKey, signingKey)).rejects.toBeInstanceOf(
      SecureDataError,
    );
    const replay = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, {
      deviceKey: device.publicJwk,
    });
    expect(replay.statusCode).toBe(409);
    expect(replay.json()).toMatchObject({ code: "session_key_replayed" });
  });

  it("refuses a device key that is not a public P-256 point: 400 device_key_invalid or validation_failed", async () => {
    const card = await cardWithCvv();
    const { publicJwk } = await createDeviceKey();
    const offCurve = { ...publicJwk, y: publicJwk.x };
    const response = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, {
      deviceKey: offCurve,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: "device_key_invalid" });
    for (const deviceKey of [
      { ...publicJwk, crv: "P-384" },
      { ...publicJwk, d: publicJwk.x },
      { kty: "RSA" },
    ]) {
      const refused = await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { deviceKey });
      expect(refused.statusCode).toBe(400);
    }
  });
});

describe("secrets of Get Card Data", () => {
  it("appear in no log line, audit record, event or stored row: not the PAN, CVV, session key or wrapped key", async () => {
    const card = await cardWithCvv();
    const { raw, key, sessionKey } = await knownSessionKey();
    const answer = (await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key })).json();
    const data = await openCardData(answer, sessionKey, signingKey);
    await h.call("POST", `/v1/cards/${card.publicToken}/secure-data`, { key }); // the replay, logged as a 409

    const db = h.runtime.store.db;
    const stored = JSON.stringify([
      await db.selectFrom("audit_events").selectAll().execute(),
      await db.selectFrom("outbox_events").selectAll().execute(),
      await db.selectFrom("secure_data_session_keys").selectAll().execute(),
      await db.selectFrom("idempotency_keys").selectAll().execute(),
    ]);
    const everything = `${logLines.join("\n")}\n${stored}`;
    expect(logLines.length).toBeGreaterThan(0);
    for (const secret of [data.PAN, raw.toString("hex"), raw.toString("base64"), key, key.slice(0, 64)]) {
      expect(everything).not.toContain(secret);
    }
    expect(logLines.join("\n")).not.toContain(`"${data.CVV}"`);
  });
});

describe("Thredd request form on the native client", () => {
  it("builds the Thredd body with the only parameters cardvault offers", () => {
    expect(threddCardDataRequest("abc")).toEqual({
      key: "abc",
      paddingMode: "PKCS2_2",
      encryptionKeyLength: "Rsa4096",
      hashingAlgorithm: "Sha256",
    });
  });
});
