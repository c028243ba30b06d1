// The key provider's Get Card Data keys without HTTP: what is published, that its answers interoperate with
// plain node:crypto (Thredd's documented algorithms, not only our own client), key ids, rotation and not-after,
// and how many deliveries the local provider's worker threads take at once.
import {
  constants,
  createDecipheriv,
  createHash,
  createPublicKey,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  verify,
} from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { testRsaKeyGenerator } from "../../test/helpers/test-rsa-keys.js";
import { OverloadedError } from "../domain/errors.js";
import { fixedClock } from "../lib/clock.js";
import type { CardDataField, DeviceRequest, KeyProvider, SealedPinCard } from "./key-provider.js";
import { initKeystore, loadKeystore, rotateKeys } from "./keystore-file.js";
import { createLocalKeyProvider } from "./local-keystore.js";

const master = Buffer.alloc(32, 9);
const clock = fixedClock("2026-11-28T10:00:00Z");
const options = { generateRsaKey: testRsaKeyGenerator };

function keystore() {
  const file = join(mkdtempSync(join(tmpdir(), "cardvault-sd-keys-")), "keystore.json");
  initKeystore(file, master, clock, options);
  return file;
}

const PAN = "4000001234567899";

/** A card as the store holds it: PAN sealed to its binding, PIN sealed with its PVV. */
async function cardIn(provider: KeyProvider): Promise<SealedPinCard> {
  const binding = { tenantId: "acme", cardId: "card-1" };
  const card = {
    ...binding,
    panSealed: await provider.sealPan(PAN, binding),
    expiry: "2911",
    cvkId: provider.activeKeyId("cvk"),
    serviceCode: "000",
  };
  return { ...card, pin: await provider.sealPin(card, "1234") };
}

const wrapUnder = (pem: string, sessionKey: Buffer) =>
  publicEncrypt({ key: pem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, sessionKey);

/** An RSA-path delivery as the service runs it: open, seal, sign, close. */
async function deliver(
  provider: KeyProvider,
  request: DeviceRequest & { wrappedKey: Buffer },
  card: SealedPinCard,
  fields: readonly CardDataField[],
) {
  const session = provider.deviceSession(request);
  try {
    await session.open();
    const answer = await session.sign(await session.seal(card, fields));
    if (answer.kind !== "rsa") throw new Error("expected an RSA answer");
    return answer;
  } finally {
    session.close();
  }
}

describe("secure-data keys in the local key provider", () => {
  it("creates an RSA-4096 wrap key and an RSA-3072 signing key with not-after, check values of the public key", () => {
    const keys = loadKeystore(keystore(), master).filter((k) => k.type.startsWith("secure-data"));
    expect(keys.map((k) => [k.id, k.algorithm, k.notAfter])).toEqual([
      ["secure-data-wrap-v1", "rsa-4096-oaep-sha256", "2028-11-27T10:00:00.000Z"],
      ["secure-data-sign-v1", "rsa-3072-pss-sha256", "2028-11-27T10:00:00.000Z"],
    ]);
    const provider = createLocalKeyProvider(loadKeystore(keystore(), master));
    for (const k of provider.secureDataKeys()) {
      const spki = createPublicKey(k.pem).export({ type: "spki", format: "der" });
      const kcv = createHash("sha256").update(spki).digest("hex").slice(0, 6).toUpperCase();
      expect(provider.listKeys().find((info) => info.id === k.kid)?.kcv).toBe(kcv);
    }
  });

  it("answers in Thredd's documented algorithms: AES-256-CBC under the session key, RSA-PSS SHA-256 salt 32", async () => {
    const provider = createLocalKeyProvider(loadKeystore(keystore(), master));
    const sign = provider.secureDataKeys().find((k) => k.use === "sign");
    const wrap = provider.secureDataKeys().find((k) => k.use === "wrap");
    const sessionKey = randomBytes(32);
    const card = await cardIn(provider);
    const sealed = await deliver(
      provider,
      { wrappedKey: wrapUnder(wrap!.pem, sessionKey), now: clock.now() },
      card,
      ["pan", "cvv", "expiry"],
    );
    const signedBytes = Buffer.concat([sealed.encryptedPayload, sealed.iv]);
    const pss = { key: sign!.pem, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    expect(verify("sha256", signedBytes, pss, sealed.signature)).toBe(true);
    expect(verify("sha256", Buffer.concat([sealed.iv, sealed.encryptedPayload]), pss, sealed.signature)).toBe(
      false,
    );
    const decipher = createDecipheriv("aes-256-cbc", sessionKey, sealed.iv);
    const payload = JSON.parse(
      Buffer.concat([decipher.update(sealed.encryptedPayload), decipher.final()]).toString("utf8"),
    );
    expect(payload).toEqual({ PAN, CVV: await provider.deriveCvv(card), expiryDate: "2029-11-30" });
  });

  it("keeps accepting a retired wrap key until its not-after, and names the key it used", async () => {
    const file = keystore();
    const before = createLocalKeyProvider(loadKeystore(file, master))
      .secureDataKeys()
      .find((k) => k.use === "wrap")!;
    // A distinct pair for v2 at no keygen cost: the cached 3072-bit one (the size does not matter here).
    rotateKeys(file, master, ["secure-data-wrap"], clock, {
      generateRsaKey: () => testRsaKeyGenerator(3072),
    });
    const provider = createLocalKeyProvider(loadKeystore(file, master));
    const wraps = provider.secureDataKeys().filter((k) => k.use === "wrap");
    expect(wraps.map((k) => [k.kid, k.active])).toEqual([
      ["secure-data-wrap-v1", false],
      ["secure-data-wrap-v2", true],
    ]);
    const oldWrapped = wrapUnder(before.pem, randomBytes(32));
    const card = await cardIn(provider);
    const expiry = (request: DeviceRequest & { wrappedKey: Buffer }) =>
      deliver(provider, request, card, ["expiry"]);
    const now = clock.now();
    expect((await expiry({ wrappedKey: oldWrapped, now })).wrapKeyId).toBe("secure-data-wrap-v1");
    const newWrapped = wrapUnder(wraps[1]!.pem, randomBytes(32));
    expect((await expiry({ wrappedKey: newWrapped, now })).wrapKeyId).toBe("secure-data-wrap-v2");
    await expect(expiry({ wrappedKey: newWrapped, now, keyId: "secure-data-wrap-v1" })).rejects.toMatchObject(
      { code: "session_key_invalid" },
    );

    const later = new Date("2029-01-01T00:00:00Z");
    await expect(expiry({ wrappedKey: oldWrapped, now: later })).rejects.toMatchObject({
      code: "session_key_invalid",
    });
    await expect(
      expiry({ wrappedKey: oldWrapped, now: later, keyId: "secure-data-wrap-v1" }),
    ).rejects.toMatchObject({ code: "validation_failed" });
  });

  it("never hands out a private half", () => {
    const provider = createLocalKeyProvider(loadKeystore(keystore(), master));
    for (const k of provider.secureDataKeys()) {
      expect(k.jwk).not.toHaveProperty("d");
      expect(k.pem).not.toContain("PRIVATE");
      expect(() => privateDecrypt(k.pem, Buffer.alloc(512))).toThrow();
    }
  });

  it("takes at most threads + queue deliveries at once: the next is refused before any work; closing gives room", async () => {
    const provider = createLocalKeyProvider(loadKeystore(keystore(), master), undefined, {
      pool: { threads: 1, queue: 1 },
    });
    try {
      const wrap = provider.secureDataKeys().find((k) => k.use === "wrap")!;
      const request = () => ({ wrappedKey: wrapUnder(wrap.pem, randomBytes(32)), now: clock.now() });
      const first = provider.deviceSession(request());
      const second = provider.deviceSession(request());
      const refused = (() => {
        try {
          provider.deviceSession(request());
        } catch (error) {
          return error;
        }
      })();
      expect(refused).toBeInstanceOf(OverloadedError);
      expect(refused).toMatchObject({ code: "overloaded", status: 503, retryAfterSeconds: 1 });
      // Both admitted deliveries go through, the second's unwrap queued behind the first's.
      const card = await cardIn(provider);
      await Promise.all(
        [first, second].map(async (session) => {
          await session.open();
          await session.sign(await session.seal(card, ["expiry"]));
        }),
      );
      first.close();
      first.close();
      const third = provider.deviceSession(request());
      expect(() => provider.deviceSession(request())).toThrow(OverloadedError);
      second.close();
      third.close();
    } finally {
      await provider.close();
    }
  });

  it("signs with a signing key rotated by another process while it runs: its threads get the new version", async () => {
    const file = keystore();
    let changed = false;
    const reload = () => {
      if (!changed) return undefined;
      changed = false;
      return loadKeystore(file, master);
    };
    const running = createLocalKeyProvider(loadKeystore(file, master), reload);
    try {
      const card = await cardIn(running);
      const wrap = running.secureDataKeys().find((k) => k.use === "wrap")!;
      const signed = () =>
        deliver(running, { wrappedKey: wrapUnder(wrap.pem, randomBytes(32)), now: clock.now() }, card, [
          "cvv",
        ]);
      expect((await signed()).signingKeyId).toBe("secure-data-sign-v1"); // the threads have started

      // A distinct pair for v2 at no keygen cost: the cached 4096-bit one (the size does not matter here).
      rotateKeys(file, master, ["secure-data-sign"], clock, {
        generateRsaKey: () => testRsaKeyGenerator(4096),
      });
      changed = true;
      // A key id the provider does not know makes it look for a newer keystore at once.
      await expect(running.deriveCvv({ ...card, cvkId: "cvk-v9" })).rejects.toMatchObject({
        code: "key_unavailable",
      });
      const answer = await signed();
      expect(answer.signingKeyId).toBe("secure-data-sign-v2");
      const sign = running.secureDataKeys().find((k) => k.kid === "secure-data-sign-v2")!;
      const pss = { key: sign.pem, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
      expect(
        verify("sha256", Buffer.concat([answer.encryptedPayload, answer.iv]), pss, answer.signature),
      ).toBe(true);
    } finally {
      await running.close();
    }
  });
});
