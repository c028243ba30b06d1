import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { computeCvv } from "../crypto/cvv.js";
import { fixedClock } from "../lib/clock.js";
import { initKeystore, loadKeystore, rotateKeys } from "./keystore-file.js";
import { createLocalKeyProvider } from "./local-keystore.js";

const clock = fixedClock("2026-11-28T10:00:00Z");
const master = Buffer.alloc(32, 7);
const pan = "4000001234567899";
const binding = { tenantId: "acme", cardId: "card-1" };

function freshKeystore() {
  const file = join(mkdtempSync(join(tmpdir(), "cardvault-keys-")), "keystore.json");
  initKeystore(file, master, clock);
  return file;
}

describe("keystore file", () => {
  it("creates one active version of every key type, none of them in the clear on disk", () => {
    const file = freshKeystore();
    const keys = loadKeystore(file, master);
    expect(keys.map((k) => k.id)).toEqual([
      "cvk-v1",
      "pvk-v1",
      "pin-storage-v1",
      "pan-data-v1",
      "fingerprint-v1",
      "pek-tdes-v1",
      "pek-aes-v1",
      "webhook-secret-v1",
      "secure-data-wrap-v1",
      "secure-data-sign-v1",
    ]);
    const text = readFileSync(file, "utf8");
    for (const k of keys) {
      expect(k.active).toBe(true);
      expect(text).not.toContain(k.material.toString("hex"));
      expect(text).not.toContain(k.material.toString("base64"));
    }
  });

  it("gives 3DES keys odd parity", () => {
    for (const k of loadKeystore(freshKeystore(), master).filter((k) => k.algorithm.startsWith("tdes"))) {
      for (const byte of k.material)
        expect(byte.toString(2).split("1").length - 1).toSatisfy((n: number) => n % 2 === 1);
    }
  });

  it("says so when the master key is wrong, and names a damaged key", () => {
    const file = freshKeystore();
    expect(() => loadKeystore(file, Buffer.alloc(32, 8))).toThrow(/master key does not open/);
    const store = JSON.parse(readFileSync(file, "utf8"));
    store.keys[0].sealed = Buffer.from("garbage".repeat(8)).toString("base64");
    writeFileSync(file, JSON.stringify(store));
    expect(() => loadKeystore(file, master)).toThrow(/cvk-v1 .* damaged/);
  });

  it("rotation adds a new active version and retires the old one", () => {
    const file = freshKeystore();
    expect(rotateKeys(file, master, ["pan-data"], clock)).toEqual(["pan-data-v2"]);
    const keys = loadKeystore(file, master).filter((k) => k.type === "pan-data");
    expect(keys.map((k) => [k.id, k.active])).toEqual([
      ["pan-data-v1", false],
      ["pan-data-v2", true],
    ]);
  });
});

describe("local key provider", () => {
  it("seals a PAN bound to tenant and card, and refuses it under another binding, naming the key", async () => {
    const keys = createLocalKeyProvider(loadKeystore(freshKeystore(), master));
    const sealed = await keys.sealPan(pan, binding);
    expect(sealed).toMatch(/^v1:pan-data-v1:/);
    expect(sealed).not.toContain(pan);
    expect(await keys.openPan(sealed, binding)).toBe(pan);
    await expect(keys.openPan(sealed, { ...binding, cardId: "card-2" })).rejects.toThrow(/pan-data-v1/);
    await expect(keys.openPan(sealed, { ...binding, tenantId: "globex" })).rejects.toMatchObject({
      code: "key_unavailable",
    });
    const tampered = `${sealed.slice(0, -4)}${sealed.slice(-4) === "AAAA" ? "BBBB" : "AAAA"}`;
    await expect(keys.openPan(tampered, binding)).rejects.toMatchObject({ code: "key_unavailable" });
  });

  it("seals webhook secrets bound to tenant and endpoint, and refuses them anywhere else", async () => {
    const keys = createLocalKeyProvider(loadKeystore(freshKeystore(), master));
    const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const where = { tenantId: "acme", endpointId: "ep-1" };
    const sealed = await keys.sealWebhookSecret(secret, where);
    expect(sealed).toMatch(/^v1:webhook-secret-v1:/);
    expect(sealed).not.toContain("MfKQ9r8G");
    expect(await keys.openWebhookSecret(sealed, where)).toBe(secret);
    await expect(keys.openWebhookSecret(sealed, { ...where, endpointId: "ep-2" })).rejects.toThrow(
      /webhook secret/,
    );
    await expect(keys.openWebhookSecret(sealed, { ...where, tenantId: "globex" })).rejects.toMatchObject({
      code: "key_unavailable",
    });
    // A sealed PAN is not a sealed webhook secret, even with matching ids: the key type differs.
    const sealedPan = await keys.sealPan("4000001234567899", { tenantId: "acme", cardId: "ep-1" });
    await expect(keys.openWebhookSecret(sealedPan, where)).rejects.toMatchObject({ code: "key_unavailable" });
  });

  it("keeps opening old ciphertexts after a rotation, and seals new ones under the new key", async () => {
    const file = freshKeystore();
    const before = createLocalKeyProvider(loadKeystore(file, master));
    const old = await before.sealPan(pan, binding);
    const oldPin = await before.sealPin(pan, "123456");
    rotateKeys(file, master, ["pan-data", "pin-storage"], clock);
    const after = createLocalKeyProvider(loadKeystore(file, master));
    expect(await after.openPan(old, binding)).toBe(pan);
    expect(await after.openPin(pan, oldPin)).toBe("123456");
    expect(await after.sealPan(pan, binding)).toMatch(/^v1:pan-data-v2:/);
    expect((await after.sealPin(pan, "1234")).pinSealed).toMatch(/^v1:pin-storage-v2:/);
  });

  it("derives the CVV with the Visa method under the named CVK, and compares in constant time", async () => {
    const clear = loadKeystore(freshKeystore(), master);
    const keys = createLocalKeyProvider(clear);
    const input = { cvkId: "cvk-v1", pan, expiry: "2912", serviceCode: "000" };
    const expected = computeCvv({
      cvk: clear.find((k) => k.id === "cvk-v1")!.material,
      pan,
      expiry: "2912",
      serviceCode: "000",
    });
    expect(await keys.deriveCvv(input)).toBe(expected);
    expect(await keys.verifyCvv(input, expected)).toBe(true);
    expect(await keys.verifyCvv(input, "99")).toBe(false);
    await expect(keys.deriveCvv({ ...input, cvkId: "cvk-v9" })).rejects.toThrow(/cvk-v9/);
  });

  it("seals PINs as format-4 blocks with a PVV, and verifies the whole PIN", async () => {
    const keys = createLocalKeyProvider(loadKeystore(freshKeystore(), master));
    const stored = await keys.sealPin(pan, "123456");
    expect(stored).toMatchObject({ pvkId: "pvk-v1", pvki: 1, pvv: expect.stringMatching(/^[0-9]{4}$/) });
    expect(await keys.openPin(pan, stored)).toBe("123456");
    expect(await keys.verifyPin(pan, stored, "123456")).toBe(true);
    expect(await keys.verifyPin(pan, stored, "123499")).toBe(false); // same PVV, different PIN
    expect(await keys.verifyPin(pan, stored, "1234")).toBe(false);
    await expect(keys.openPin("4000001234567808", stored)).rejects.toMatchObject({ code: "key_unavailable" });
  });

  it("fingerprints PANs with a keyed HMAC that names its key", async () => {
    const keys = createLocalKeyProvider(loadKeystore(freshKeystore(), master));
    const fp = await keys.panFingerprint(pan);
    expect(fp).toMatch(/^fingerprint-v1:/);
    expect(await keys.panFingerprint(pan)).toBe(fp);
    expect(await keys.panFingerprint("4000001234567808")).not.toBe(fp);
  });
});
