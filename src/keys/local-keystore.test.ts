// The local keystore: the keystore file (sealed under the master key, versions, rotation, retirement) and the
// local KeyProvider, which runs the provider contract suite over keys the suite chose, then the behaviour only
// a file-backed provider has (adopting a rotated keystore while running).
import { createHash, createHmac, createPrivateKey, createPublicKey } from "node:crypto";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { testRsaKeyGenerator } from "../../test/helpers/test-rsa-keys.js";
import { computeCvv } from "../crypto/cvv.js";
import { keyCheckValue } from "../crypto/kcv.js";
import { fixedClock } from "../lib/clock.js";
import { type ContractKey, describeKeyProviderContract } from "./key-provider.contract.js";
import type { KeyType, SealedCard } from "./key-provider.js";
import {
  addImportedKey,
  type ClearKey,
  initKeystore,
  loadKeystore,
  retireKeys,
  rotateKeys,
} from "./keystore-file.js";
import { createLocalKeyProvider } from "./local-keystore.js";

const clock = fixedClock("2026-11-28T10:00:00Z");
const master = Buffer.alloc(32, 7);
const options = { generateRsaKey: testRsaKeyGenerator };
const pan = "4000001234567899";
const binding = { tenantId: "acme", cardId: "card-1" };

function freshKeystore(): string {
  const file = join(mkdtempSync(join(tmpdir(), "cardvault-keys-")), "keystore.json");
  initKeystore(file, master, clock, options);
  return file;
}

const tdesTypes: readonly KeyType[] = ["cvk", "pvk", "pek-tdes"];

/** The keystore entry `keys init` would make for this material: version by order, the last of a type active. */
function asClearKeys(keys: readonly ContractKey[]): ClearKey[] {
  const versions = new Map<KeyType, number>();
  const last = new Map(keys.map((k) => [k.type, k.id]));
  const createdAt = clock.now().toISOString();
  return keys.map((k) => {
    const version = (versions.get(k.type) ?? 0) + 1;
    versions.set(k.type, version);
    let algorithm: string;
    let kcv: string;
    let notAfter: string | undefined;
    if (tdesTypes.includes(k.type)) {
      algorithm = "tdes-2key";
      kcv = keyCheckValue(k.material, "tdes", 3);
    } else if (k.type === "fingerprint") {
      algorithm = "hmac-sha256";
      kcv = createHmac("sha256", k.material).update(Buffer.alloc(16)).digest("hex").slice(0, 6).toUpperCase();
    } else if (
      k.type === "secure-data-wrap" ||
      k.type === "secure-data-sign" ||
      k.type === "access-token-sign"
    ) {
      const publicKey = createPublicKey(createPrivateKey({ key: k.material, format: "der", type: "pkcs8" }));
      const bits = publicKey.asymmetricKeyDetails?.modulusLength;
      algorithm =
        k.type === "access-token-sign"
          ? "ed25519"
          : k.type === "secure-data-wrap"
            ? `rsa-${bits}-oaep-sha256`
            : `rsa-${bits}-pss-sha256`;
      const spki = publicKey.export({ type: "spki", format: "der" });
      kcv = createHash("sha256").update(spki).digest("hex").slice(0, 6).toUpperCase();
      notAfter = "2028-11-27T10:00:00.000Z";
    } else {
      algorithm = `aes-${k.material.length * 8}`;
      kcv = keyCheckValue(k.material, "aes", 3);
    }
    return {
      id: k.id,
      type: k.type,
      version,
      algorithm,
      kcv,
      createdAt,
      ...(notAfter ? { notAfter } : {}),
      active: last.get(k.type) === k.id,
      origin: "generated" as const,
      retired: false,
      material: Buffer.from(k.material),
    };
  });
}

describeKeyProviderContract("local keystore", {
  // Ceremonies store into a keystore file of their own (the contract's keys are held in memory).
  provider: async (keys) => {
    const file = freshKeystore();
    return createLocalKeyProvider(asClearKeys(keys), undefined, {
      importer: (entry) => addImportedKey(file, master, entry, clock),
    });
  },
  fresh: async () => createLocalKeyProvider(loadKeystore(freshKeystore(), master)),
  rsaKey: (bits) => testRsaKeyGenerator(bits),
});

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
      "access-token-sign-v1",
    ]);
    const text = readFileSync(file, "utf8");
    for (const k of keys) {
      expect(k.active).toBe(true);
      expect(text).not.toContain(k.material.toString("hex"));
      expect(text).not.toContain(k.material.toString("base64"));
    }
    expect(initKeystore(file, master, clock, options)).toEqual([]); // idempotent
  });

  it("gives 3DES keys odd parity, and every key the check value of its material", () => {
    for (const k of loadKeystore(freshKeystore(), master)) {
      if (k.algorithm.startsWith("tdes")) {
        for (const byte of k.material)
          expect(byte.toString(2).split("1").length - 1).toSatisfy((n: number) => n % 2 === 1);
        expect(k.kcv).toBe(keyCheckValue(k.material, "tdes", 3));
      }
      if (k.algorithm.startsWith("aes")) expect(k.kcv).toBe(keyCheckValue(k.material, "aes", 3));
    }
  });

  it("keeps imported keys sealed, by origin, next in version but never active; rotation skips past them", () => {
    const file = freshKeystore();
    const cvk = Buffer.from("0123456789ABCDEFFEDCBA9876543210", "hex");
    const imported = addImportedKey(
      file,
      master,
      { type: "cvk", algorithm: "tdes-2key", material: cvk, origin: "components" },
      clock,
    );
    expect(imported).toMatchObject({
      id: "cvk-v2",
      version: 2,
      origin: "components",
      active: false,
      kcv: "08D7B4",
    });
    expect(readFileSync(file, "utf8")).not.toContain("0123456789ABCDEF".toLowerCase());
    const loaded = loadKeystore(file, master);
    expect(loaded.find((k) => k.id === "cvk-v2")).toMatchObject({ origin: "components", active: false });
    expect(loaded.find((k) => k.id === "cvk-v1")).toMatchObject({ origin: "generated", active: true });
    expect(loaded.find((k) => k.id === "cvk-v2")!.material.equals(cvk)).toBe(true);
    // A later generated version is v3 and active; the imported one can be retired like any inactive key.
    expect(rotateKeys(file, master, ["cvk"], clock, options)).toEqual(["cvk-v3"]);
    expect(loadKeystore(file, master).find((k) => k.active && k.type === "cvk")!.id).toBe("cvk-v3");
    expect(retireKeys(file, master, ["cvk-v2"], clock)).toEqual(["cvk-v2"]);
    // zpk and kbpk only come from outside: neither init nor rotate makes one.
    expect(() => rotateKeys(file, master, ["zpk"], clock, options)).toThrow(/keys import/);
    expect(loadKeystore(file, master).some((k) => k.type === "zpk" || k.type === "kbpk")).toBe(false);
  });

  it("a provider over the keystore uses an imported key at once, and a restarted one finds it", async () => {
    const file = freshKeystore();
    const provider = createLocalKeyProvider(loadKeystore(file, master), undefined, {
      importer: (entry) => addImportedKey(file, master, entry, clock),
    });
    const vector = {
      cvk: "0123456789ABCDEFFEDCBA9876543210",
      pan: "4123456789012",
      expiry: "8701",
      serviceCode: "101",
    };
    const info = await provider.importKey({
      type: "cvk",
      material: Buffer.from(vector.cvk, "hex"),
      origin: "tr31",
    });
    expect(await provider.computeCvv({ keyId: info.id, ...vector })).toBe("370");
    await provider.close();
    const restarted = createLocalKeyProvider(loadKeystore(file, master));
    expect(restarted.listKeys().find((k) => k.id === info.id)).toMatchObject({
      origin: "tr31",
      active: false,
    });
    expect(await restarted.computeCvv({ keyId: info.id, ...vector })).toBe("370");
    await expect(
      restarted.importKey({ type: "cvk", material: Buffer.alloc(16, 1), origin: "tr31" }),
    ).rejects.toThrow(/no keystore to import/);
    await restarted.close();
  });

  it("says so when the master key is wrong, and names a damaged key", () => {
    const file = freshKeystore();
    expect(() => loadKeystore(file, Buffer.alloc(32, 8))).toThrow(/master key does not open/);
    expect(() => rotateKeys(file, Buffer.alloc(32, 8), ["cvk"], clock)).toThrow(/master key does not open/);
    const store = JSON.parse(readFileSync(file, "utf8"));
    store.keys[0].sealed = Buffer.from("garbage".repeat(8)).toString("base64");
    writeFileSync(file, JSON.stringify(store));
    expect(() => loadKeystore(file, master)).toThrow(/cvk-v1 .* damaged/);
  });

  it("refuses a sealed key moved to another entry (the key id is the AAD)", () => {
    const file = freshKeystore();
    const store = JSON.parse(readFileSync(file, "utf8"));
    store.keys[1].sealed = store.keys[0].sealed; // cvk-v1's material under pvk-v1's id
    writeFileSync(file, JSON.stringify(store));
    expect(() => loadKeystore(file, master)).toThrow(/pvk-v1 .* damaged/);
  });

  it("rotation adds a new active version; retiring needs a newer version first", () => {
    const file = freshKeystore();
    expect(rotateKeys(file, master, ["pan-data"], clock)).toEqual(["pan-data-v2"]);
    const keys = loadKeystore(file, master).filter((k) => k.type === "pan-data");
    expect(keys.map((k) => [k.id, k.active])).toEqual([
      ["pan-data-v1", false],
      ["pan-data-v2", true],
    ]);
    expect(() => retireKeys(file, master, ["pan-data-v2"], clock)).toThrow(/active pan-data key/);
    expect(retireKeys(file, master, ["pan-data-v1"], clock)).toEqual(["pan-data-v1"]);
    expect(retireKeys(file, master, ["pan-data-v1"], clock)).toEqual([]);
    const retired = loadKeystore(file, master).find((k) => k.id === "pan-data-v1")!;
    expect(retired).toMatchObject({ active: false, retired: true, retiredAt: clock.now().toISOString() });
  });
});

describe("local key provider over a keystore file", () => {
  const cardOf = async (keys: ReturnType<typeof createLocalKeyProvider>): Promise<SealedCard> => ({
    ...binding,
    panSealed: await keys.sealPan(pan, binding),
    expiry: "2912",
    cvkId: keys.activeKeyId("cvk"),
    serviceCode: "000",
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("keeps opening old ciphertexts after a rotation, and seals new ones under the new key", async () => {
    const file = freshKeystore();
    const before = createLocalKeyProvider(loadKeystore(file, master));
    const card = await cardOf(before);
    const pinCard = { ...card, pin: await before.sealPin(card, "123456") };
    rotateKeys(file, master, ["pan-data", "pin-storage", "cvk"], clock);
    const keys = loadKeystore(file, master);
    const after = createLocalKeyProvider(keys);
    const cvk1 = keys.find((k) => k.id === "cvk-v1")!.material;
    expect(await after.deriveCvv(card)).toBe(
      computeCvv({ cvk: cvk1, pan, expiry: "2912", serviceCode: "000" }),
    );
    expect(await after.openPin(pinCard)).toBe("123456");
    expect(await after.sealPan(pan, binding)).toMatch(/^v1:pan-data-v2:/);
    expect((await after.sealPin(card, "1234")).pinSealed).toMatch(/^v1:pin-storage-v2:/);
    expect(after.activeKeyId("cvk")).toBe("cvk-v2");
    const resealed = await after.reseal(pinCard);
    expect(resealed.panSealed).toMatch(/^v1:pan-data-v2:/);
    expect(resealed.pinSealed).toMatch(/^v1:pin-storage-v2:/);
  });

  it("adopts a keystore rotated by another process: at once for an unknown key id, else within a second", async () => {
    const file = freshKeystore();
    let seen = statSync(file).mtimeMs;
    let loads = 0;
    const reload = () => {
      const now = statSync(file).mtimeMs;
      if (now === seen) return undefined;
      seen = now;
      loads++;
      return loadKeystore(file, master);
    };
    let t = 1_000_000;
    vi.spyOn(performance, "now").mockImplementation(() => t);
    const running = createLocalKeyProvider(loadKeystore(file, master), reload);
    const card = await cardOf(running);

    await new Promise((resolve) => setTimeout(resolve, 5)); // a distinct mtime
    rotateKeys(file, master, ["pan-data"], clock);
    const other = createLocalKeyProvider(loadKeystore(file, master));
    const newer = { ...card, panSealed: await other.sealPan(pan, binding) };
    expect(newer.panSealed).toMatch(/^v1:pan-data-v2:/);
    // An envelope naming a key it has not seen makes the running provider reload at once.
    expect(await running.deriveCvv(newer)).toBe(await other.deriveCvv(newer));
    expect(loads).toBe(1);
    expect(await running.sealPan(pan, binding)).toMatch(/^v1:pan-data-v2:/);

    await new Promise((resolve) => setTimeout(resolve, 5));
    rotateKeys(file, master, ["pan-data"], clock);
    t += 10; // within the check interval: still v2
    expect(await running.sealPan(pan, binding)).toMatch(/^v1:pan-data-v2:/);
    t += 1_000; // past it: the new version is active
    expect(await running.sealPan(pan, binding)).toMatch(/^v1:pan-data-v3:/);
    expect(running.activeKeyId("pan-data")).toBe("pan-data-v3");
    expect(running.listKeys().filter((k) => k.type === "pan-data")).toHaveLength(3);
    expect(await running.deriveCvv(card)).toBe(await other.deriveCvv(card)); // v1 still opens
  });

  it("fingerprints PANs with a keyed HMAC that names its key", async () => {
    const keys = createLocalKeyProvider(loadKeystore(freshKeystore(), master));
    const fp = await keys.panFingerprint(pan);
    expect(fp).toMatch(/^fingerprint-v1:/);
    expect(await keys.panFingerprint(pan)).toBe(fp);
    expect(await keys.panFingerprint("4000001234567808")).not.toBe(fp);
  });
});
