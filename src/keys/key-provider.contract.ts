// The KeyProvider contract: one vitest suite every provider runs (the local keystore, PKCS#11 on SoftHSM2).
// It speaks only the interface: results are checked against independent computations (src/crypto, node:crypto,
// jose) under key material the suite itself chose and imported, never against provider internals. It also
// holds the invariants: a sealed card opens only under the binding it was sealed to, and nothing a provider
// returns or throws carries a clear PAN. Not a *.test.ts file: a provider's test file calls
// describeKeyProviderContract(name, setup). Keep it out of the build (it imports vitest).
import {
  constants,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  verify,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { calculateJwkThumbprint, compactDecrypt, compactVerify, type JWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { computeCvv } from "../crypto/cvv.js";
import { adjustDesParity, tdesEncrypt } from "../crypto/des.js";
import { aesCmac, keyCheckValue, tdesCmac } from "../crypto/kcv.js";
import { isLuhnValid, luhnCheckDigit } from "../crypto/luhn.js";
import { createPinBlockCipher, encipherPinBlock, type PinBlockFormat } from "../crypto/pin-block.js";
import { computePvv } from "../crypto/pvv.js";
import { type KeyBlockProtectionKey, wrapKeyBlock } from "../crypto/tr31.js";
import { expiryToDate, PVV_ONLY_PIN } from "../domain/card.js";
import { AppError, type ErrorCode } from "../domain/errors.js";
import {
  type CardDataField,
  type DeviceAnswer,
  type DeviceRequest,
  generatedKeyTypes,
  type KeyProvider,
  type KeyType,
  PinBlockUndecodableError,
  type SealedCard,
  type SealedPinCard,
} from "./key-provider.js";

/** A key the suite hands to a provider: a keystore entry, or an object imported into the token. */
export interface ContractKey {
  id: string;
  type: KeyType;
  /**
   * Symmetric keys: the raw bytes. RSA keys (secure-data-*) and the Ed25519 key (access-token-sign): the PKCS#8
   * DER private key.
   */
  material: Buffer;
}

export interface ContractSetup {
  /**
   * A provider holding exactly `keys`. Of each type the LAST key listed is the active version; earlier ones
   * are older versions that still open what they sealed. Ids never contain ":".
   */
  provider(keys: readonly ContractKey[]): Promise<KeyProvider>;
  /** A provider with key material it generated itself (`keys init`, or keys generated inside the token). */
  fresh(): Promise<KeyProvider>;
  /** An RSA private key (PKCS#8 DER) of `bits` bits; tests pass cached pairs (keygen costs seconds). */
  rsaKey(bits: 3072 | 4096): Buffer;
}

const VECTORS = JSON.parse(
  readFileSync(new URL("../../test/vectors/card-crypto.json", import.meta.url), "utf8"),
) as {
  cvv: { cvk: string; pan: string; expiry: string; service_code: string; cvv: string }[];
  pvv: { pvk: string; pvki: string; pin: string; pan: string; pvv: string }[];
  pinblock_iso0: { pin: string; pan: string; pin_block: string }[];
  pinblock_iso1: { pin: string; pin_block: string }[];
  pinblock_iso3: { pin: string; pan: string; pin_block: string }[];
  pinblock_iso4: { aes_key: string; pin: string; pan: string; enciphered_pin_block: string }[];
  pinblock_iso0_encrypted: { key: string; pin: string; pan: string; encrypted_pin_block: string }[];
  kcv: { key: string; method: "tdes_ecb_zero" | "aes_cmac_zero"; bytes: number; kcv: string }[];
};

const hex = (text: string) => Buffer.from(text, "hex");
const withCheckDigit = (body: string) => body + luhnCheckDigit(body);

/** Two versions of cvk and pek-tdes (batches across keys, PIN blocks under an older key), one of the rest. */
function generatedKeys(setup: ContractSetup, tag = "ct"): ContractKey[] {
  const symmetric = (type: KeyType): Buffer => {
    if (type === "cvk" || type === "pvk" || type === "pek-tdes") return adjustDesParity(randomBytes(16));
    return randomBytes(32);
  };
  const keys: ContractKey[] = [
    { id: `${tag}-cvk-old`, type: "cvk", material: symmetric("cvk") },
    { id: `${tag}-pek-tdes-old`, type: "pek-tdes", material: symmetric("pek-tdes") },
  ];
  for (const type of generatedKeyTypes) {
    const material =
      type === "secure-data-wrap"
        ? setup.rsaKey(4096)
        : type === "secure-data-sign"
          ? setup.rsaKey(3072)
          : type === "access-token-sign"
            ? ed25519Key()
            : symmetric(type);
    keys.push({ id: `${tag}-${type}`, type, material });
  }
  return keys;
}

function ed25519Key(): Buffer {
  return generateKeyPairSync("ed25519", {
    publicKeyEncoding: { type: "spki", format: "der" },
    privateKeyEncoding: { type: "pkcs8", format: "der" },
  }).privateKey;
}

/** The active key of a type in a key list the suite built: the last one listed. */
function activeOf(keys: readonly ContractKey[], type: KeyType): ContractKey {
  const k = keys.filter((key) => key.type === type).at(-1);
  if (!k) throw new Error(`no ${type} key in the contract key set`);
  return k;
}

/** The PAN envelope, opened as DESIGN.md and keys/README.md define it, without the provider. */
function openSealedText(sealed: string, keys: readonly ContractKey[], aad: string): string {
  const [version, kid, nonce, ct] = sealed.split(":");
  expect(version).toBe("v1");
  const key = keys.find((k) => k.id === kid);
  if (!key || !nonce || !ct) throw new Error(`envelope names an unknown key ${kid}`);
  const raw = Buffer.from(ct, "base64url");
  const decipher = createDecipheriv("aes-256-gcm", key.material, Buffer.from(nonce, "base64url"));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString(
    "utf8",
  );
}

const panAad = (card: { tenantId: string; cardId: string }) =>
  `cardvault:pan:${card.tenantId}:${card.cardId}`;

/** Every string a value holds (Buffers read as UTF-8, hex and base64), so a PAN cannot hide in any of them. */
function stringsOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Buffer.isBuffer(value))
    out.push(value.toString("utf8"), value.toString("hex"), value.toString("latin1"));
  else if (value instanceof Error) {
    out.push(value.message);
    stringsOf((value as { fields?: unknown }).fields, out);
    stringsOf(value.cause, out);
  } else if (Array.isArray(value)) for (const v of value) stringsOf(v, out);
  else if (value && typeof value === "object") for (const v of Object.values(value)) stringsOf(v, out);
  return out;
}

/** No PAN, and (in error messages) no run of five of its digits nor its last four. */
function expectNoPan(value: unknown, pans: readonly string[], strict = false): void {
  const text = stringsOf(value).join("\n");
  for (const pan of pans) {
    expect(text.includes(pan), "a clear PAN was returned or thrown").toBe(false);
    if (!strict) continue;
    for (let i = 0; i + 5 <= pan.length; i++) expect(text).not.toContain(pan.slice(i, i + 5));
    expect(text).not.toContain(pan.slice(-4));
  }
}

/** Awaits a refusal: an AppError with `code` whose message, fields and cause carry no PAN digits. */
async function expectRefused(promise: Promise<unknown>, code: ErrorCode, pans: readonly string[] = []) {
  const error = await promise.then(
    (value) => {
      throw new Error(`expected ${code}, got ${JSON.stringify(stringsOf(value)).slice(0, 60)}…`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe(code);
  expectNoPan(error, pans, true);
  return error as AppError;
}

/** A different, still well-formed ciphertext: one byte of the ciphertext‖tag flipped. */
function tamper(sealed: string): string {
  const parts = sealed.split(":");
  const raw = Buffer.from(parts[3]!, "base64url");
  raw[0] = raw[0]! ^ 0x01;
  parts[3] = raw.toString("base64url");
  return parts.join(":");
}

const wrapUnder = (pem: string, sessionKey: Buffer) =>
  publicEncrypt({ key: pem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, sessionKey);

const openDevicePayload = (sessionKey: Buffer, iv: Buffer, encrypted: Buffer): Record<string, string> => {
  const decipher = createDecipheriv("aes-256-cbc", sessionKey, iv);
  return JSON.parse(Buffer.concat([decipher.update(encrypted), decipher.final()]).toString("utf8"));
};

/** Get Card Data through a provider's device session, the way a service runs it: open, seal, sign, close. */
async function deliverThrough(
  p: KeyProvider,
  request: DeviceRequest,
  card: SealedPinCard,
  fields: readonly CardDataField[],
) {
  const session = p.deviceSession(request);
  try {
    await session.open();
    const sealed = await session.seal(card, fields);
    return { sealed, replayId: session.replayId, answer: await session.sign(sealed) };
  } finally {
    session.close();
  }
}

function rsaAnswer(answer: DeviceAnswer) {
  if (answer.kind !== "rsa") throw new Error(`expected an RSA answer, got ${answer.kind}`);
  return answer;
}

function jweAnswer(answer: DeviceAnswer) {
  if (answer.kind !== "jwe") throw new Error(`expected a JWE answer, got ${answer.kind}`);
  return answer;
}

export function describeKeyProviderContract(name: string, setup: ContractSetup): void {
  describe(`KeyProvider contract: ${name}`, () => {
    let keys: ContractKey[];
    let p: KeyProvider;
    const material = (type: KeyType) => activeOf(keys, type).material;
    const PAN = withCheckDigit("493817264051928");
    const OTHER_PAN = withCheckDigit("537286190453712");
    const binding = { tenantId: "tenant-a", cardId: "card-a" };
    let card: SealedCard;
    let pinCard: SealedPinCard;

    beforeAll(async () => {
      keys = generatedKeys(setup);
      p = await setup.provider(keys);
      card = {
        ...binding,
        panSealed: await p.sealPan(PAN, binding),
        expiry: "2911",
        cvkId: activeOf(keys, "cvk").id,
        serviceCode: "000",
      };
      pinCard = { ...card, pin: await p.sealPin(card, "482916") };
    });

    describe("keys", () => {
      it("lists every key it was given, with its type, the last of each type active, and no material", () => {
        const listed = p.listKeys();
        for (const k of keys) {
          const info = listed.find((i) => i.id === k.id);
          expect(info, k.id).toMatchObject({
            id: k.id,
            type: k.type,
            active: activeOf(keys, k.type).id === k.id,
          });
          expect(info).not.toHaveProperty("material");
        }
        for (const type of generatedKeyTypes) expect(p.activeKeyId(type)).toBe(activeOf(keys, type).id);
        const text = stringsOf(listed).join("\n");
        for (const k of keys) {
          expect(text).not.toContain(k.material.toString("hex"));
          expect(text).not.toContain(k.material.toString("base64"));
        }
      });

      it("gives key check values: 3DES-ECB of zeros for 3DES keys, AES-CMAC of a zero block for AES keys", () => {
        for (const k of keys) {
          const kcv = p.listKeys().find((i) => i.id === k.id)!.kcv;
          const algorithm = ["cvk", "pvk", "pek-tdes"].includes(k.type)
            ? "tdes"
            : ["pek-aes", "pin-storage", "pan-data", "webhook-secret"].includes(k.type)
              ? "aes"
              : undefined;
          if (!algorithm) continue;
          expect(kcv, k.id).toMatch(/^[0-9A-F]{4,}$/);
          expect(kcv).toBe(keyCheckValue(k.material, algorithm, 8).slice(0, kcv.length));
        }
      });

      it("a fresh provider has an active key of every type and works end to end", async () => {
        const fresh = await setup.fresh();
        for (const type of generatedKeyTypes) {
          expect(fresh.listKeys().find((k) => k.id === fresh.activeKeyId(type))).toMatchObject({
            type,
            active: true,
          });
        }
        const issued = await fresh.issuePan({ bin: "400000", length: 16, binding });
        const c = {
          ...binding,
          panSealed: issued.panSealed,
          expiry: "3001",
          cvkId: fresh.activeKeyId("cvk"),
          serviceCode: "000",
        };
        expect(await fresh.verifyCvv(c, await fresh.deriveCvv(c))).toBe(true);
        const pc = { ...c, pin: await fresh.sealRandomPin(c, 4) };
        expect(await fresh.verifyPin(pc, await fresh.openPin(pc))).toBe(true);
      });
    });

    describe("PANs", () => {
      it("issuePan draws a Luhn-valid PAN of the length under the BIN, sealed to the binding, fingerprinted", async () => {
        const seen = new Set<string>();
        for (const [bin, length] of [
          ["45717360", 16],
          ["400000", 12],
          ["52998800123", 19],
          ["45717360", 16],
        ] as const) {
          const issued = await p.issuePan({ bin, length, binding });
          expect(Object.keys(issued).sort()).toEqual(["fingerprint", "first6", "last4", "panSealed"]);
          expect(issued.panSealed.startsWith(`v1:${p.activeKeyId("pan-data")}:`)).toBe(true);
          const pan = openSealedText(issued.panSealed, keys, panAad(binding));
          expect(pan).toHaveLength(length);
          expect(pan.startsWith(bin)).toBe(true);
          expect(isLuhnValid(pan)).toBe(true);
          expect(issued.first6).toBe(pan.slice(0, 6));
          expect(issued.last4).toBe(pan.slice(-4));
          expect(issued.fingerprint).toBe(await p.panFingerprint(pan));
          expectNoPan([issued.panSealed, issued.fingerprint], [pan]);
          seen.add(pan);
          const c = {
            ...binding,
            panSealed: issued.panSealed,
            expiry: "2812",
            cvkId: card.cvkId,
            serviceCode: "101",
          };
          expect(await p.deriveCvv(c)).toBe(
            computeCvv({ cvk: material("cvk"), pan, expiry: "2812", serviceCode: "101" }),
          );
        }
        expect(seen.size).toBe(4);
      });

      it("sealPan seals under the active pan-data key with AES-256-GCM, AAD cardvault:pan:<tenant>:<card>", async () => {
        const a = await p.sealPan(PAN, binding);
        const b = await p.sealPan(PAN, binding);
        expect(a).not.toBe(b); // a fresh nonce each time
        for (const sealed of [a, b]) {
          expect(sealed.startsWith(`v1:${activeOf(keys, "pan-data").id}:`)).toBe(true);
          expect(Buffer.from(sealed.split(":")[2]!, "base64url")).toHaveLength(12);
          expect(openSealedText(sealed, keys, panAad(binding))).toBe(PAN);
          expectNoPan(sealed, [PAN]);
        }
      });

      it("fingerprints with HMAC-SHA-256 under the active fingerprint key, named by it", async () => {
        const fp = await p.panFingerprint(PAN);
        const k = activeOf(keys, "fingerprint");
        expect(fp).toBe(`${k.id}:${createHmac("sha256", k.material).update(PAN).digest("base64url")}`);
        expect(await p.panFingerprint(PAN)).toBe(fp);
        expect(await p.panFingerprint(OTHER_PAN)).not.toBe(fp);
        expectNoPan(fp, [PAN]);
      });
    });

    describe("CVV", () => {
      it("derives the Visa CVV under the card's CVK, for any service code and expiry", async () => {
        for (const [expiry, serviceCode] of [
          ["2911", "000"],
          ["2911", "101"],
          ["3302", "999"],
        ] as const) {
          const c = { ...card, expiry, serviceCode };
          const expected = computeCvv({ cvk: material("cvk"), pan: PAN, expiry, serviceCode });
          expect(await p.deriveCvv(c)).toBe(expected);
          expect(await p.verifyCvv(c, expected)).toBe(true);
          expect(await p.verifyCvv(c, String((Number(expected) + 1) % 1000).padStart(3, "0"))).toBe(false);
          expect(await p.verifyCvv(c, expected.slice(0, 2))).toBe(false);
          expect(await p.verifyCvv(c, `${expected}0`)).toBe(false);
        }
      });

      it("deriveCvvBatch gives the same CVVs in input order, across CVK versions and cards", async () => {
        const old = keys.find((k) => k.id === "ct-cvk-old")!;
        const other = { tenantId: "tenant-a", cardId: "card-b" };
        const otherCard = {
          ...other,
          panSealed: await p.sealPan(OTHER_PAN, other),
          expiry: "2704",
          cvkId: old.id,
          serviceCode: "000",
        };
        const cards = [
          card,
          otherCard,
          { ...card, serviceCode: "101" },
          { ...otherCard, cvkId: card.cvkId },
          card,
        ];
        const expected = cards.map((c) =>
          computeCvv({
            cvk: keys.find((k) => k.id === c.cvkId)!.material,
            pan: c.cardId === "card-a" ? PAN : OTHER_PAN,
            expiry: c.expiry,
            serviceCode: c.serviceCode,
          }),
        );
        expect(await p.deriveCvvBatch(cards)).toEqual(expected);
        for (const [i, c] of cards.entries()) expect(await p.deriveCvv(c)).toBe(expected[i]);
        expect(await p.deriveCvvBatch([])).toEqual([]);
      });

      it("refuses a CVK it does not hold, or a key of another type", async () => {
        await expectRefused(p.deriveCvv({ ...card, cvkId: "ct-cvk-unknown" }), "key_unavailable", [PAN]);
        await expectRefused(p.deriveCvv({ ...card, cvkId: activeOf(keys, "pvk").id }), "key_unavailable", [
          PAN,
        ]);
        await expectRefused(p.verifyCvv({ ...card, cvkId: "ct-cvk-unknown" }, "123"), "key_unavailable", [
          PAN,
        ]);
        await expectRefused(
          p.deriveCvvBatch([card, { ...card, cvkId: "ct-cvk-unknown" }]),
          "key_unavailable",
          [PAN],
        );
      });
    });

    describe("PINs", () => {
      it("sealPin: a format-4 block under the active pin-storage key and the Visa PVV (PVKI 1) under the active PVK", async () => {
        const stored = pinCard.pin;
        expect(stored.pvkId).toBe(activeOf(keys, "pvk").id);
        expect(stored.pvki).toBe(1);
        expect(stored.pvv).toBe(computePvv({ pvk: material("pvk"), pvki: 1, pan: PAN, pin: "482916" }));
        const [version, kid, block] = stored.pinSealed.split(":");
        expect([version, kid]).toEqual(["v1", activeOf(keys, "pin-storage").id]);
        const cipher = createPinBlockCipher(material("pin-storage"), "aes");
        expect(cipher.decipher({ format: 4, block: block!, pan: PAN })).toBe("482916");
        expectNoPan(stored, [PAN]);
      });

      it("openPin and verifyPin: the whole PIN must match, not only the four digits of its PVV", async () => {
        expect(await p.openPin(pinCard)).toBe("482916");
        expect(await p.verifyPin(pinCard, "482916")).toBe(true);
        expect(await p.verifyPin(pinCard, "482917")).toBe(false); // same PVV
        expect(await p.verifyPin(pinCard, "4829")).toBe(false); // same PVV, shorter
        expect(await p.verifyPin(pinCard, "000000")).toBe(false);
      });

      it("sealRandomPin draws a PIN of the length that nobody outside sees, sealed like sealPin", async () => {
        const pins = new Set<string>();
        for (const length of [4, 6, 4, 6, 12]) {
          const stored = await p.sealRandomPin(card, length);
          const pin = await p.openPin({ ...card, pin: stored });
          expect(pin).toMatch(new RegExp(`^[0-9]{${length}}$`));
          expect(stored.pvv).toBe(computePvv({ pvk: material("pvk"), pvki: stored.pvki, pan: PAN, pin }));
          expect(stored.pinSealed.startsWith(`v1:${activeOf(keys, "pin-storage").id}:`)).toBe(true);
          expect(await p.verifyPin({ ...card, pin: stored }, pin)).toBe(true);
          pins.add(pin);
        }
        expect(pins.size).toBeGreaterThan(2);
      });

      it("refuses a stored PIN block that does not match its PVV, or is damaged", async () => {
        const otherPvv = pinCard.pin.pvv === "0000" ? "1111" : "0000";
        await expectRefused(
          p.openPin({ ...pinCard, pin: { ...pinCard.pin, pvv: otherPvv } }),
          "key_unavailable",
          [PAN],
        );
        const [v, kid, block] = pinCard.pin.pinSealed.split(":");
        const flipped = `${block!.slice(0, -1)}${block!.endsWith("0") ? "1" : "0"}`;
        await expectRefused(
          p.openPin({ ...pinCard, pin: { ...pinCard.pin, pinSealed: `${v}:${kid}:${flipped}` } }),
          "key_unavailable",
          [PAN],
        );
        await expectRefused(
          p.openPin({ ...pinCard, pin: { ...pinCard.pin, pinSealed: `v1:ct-unknown-key:${block}` } }),
          "key_unavailable",
          [PAN],
        );
      });

      const blocks: { label: string; format: PinBlockFormat; type: KeyType; key?: string }[] = [
        { label: "format 0, active pek-tdes", format: 0, type: "pek-tdes" },
        { label: "format 1, active pek-tdes", format: 1, type: "pek-tdes" },
        { label: "format 3, active pek-tdes", format: 3, type: "pek-tdes" },
        { label: "format 0, older pek-tdes by keyId", format: 0, type: "pek-tdes", key: "ct-pek-tdes-old" },
        { label: "format 3, older pek-tdes by keyId", format: 3, type: "pek-tdes", key: "ct-pek-tdes-old" },
        { label: "format 4, active pek-aes", format: 4, type: "pek-aes" },
      ];
      it.each(blocks)("verifyPinBlock: $label", async ({ format, type, key }) => {
        const k = key ? keys.find((x) => x.id === key)! : activeOf(keys, type);
        const make = (pin: string) =>
          encipherPinBlock({ format, pin, pan: PAN, key: k.material }).toString("hex").toUpperCase();
        for (const keyId of key ? [key] : [undefined, k.id]) {
          const attempt = (pinBlock: string) =>
            p.verifyPinBlock(pinCard, {
              format: format as 0 | 1 | 3 | 4,
              pinBlock,
              ...(keyId ? { keyId } : {}),
            });
          expect(await attempt(make("482916"))).toBe(true);
          expect(await attempt(make("482916").toLowerCase())).toBe(true);
          expect(await attempt(make("482917"))).toBe(false);
          expect(await attempt(make("4829"))).toBe(false);
        }
      });

      it("verifyPinBlock refuses a keyId it does not hold or of the wrong type, a malformed block, and an undecodable block (PinBlockUndecodableError), as validation_failed", async () => {
        const tdes = activeOf(keys, "pek-tdes");
        const aes = activeOf(keys, "pek-aes");
        const format0 = encipherPinBlock({ format: 0, pin: "482916", pan: PAN, key: tdes.material }).toString(
          "hex",
        );
        const format1 = encipherPinBlock({ format: 1, pin: "482916", key: tdes.material }).toString("hex");
        // A wrong key or a malformed block is a plain validation_failed; a well-formed block that deciphers to
        // no valid block is a PinBlockUndecodableError (the PIN service counts it as a wrong try).
        const refused = async (
          attempt: { format: 0 | 1 | 3 | 4; pinBlock: string; keyId?: string },
          undecodable = false,
        ) => {
          const error = await expectRefused(p.verifyPinBlock(pinCard, attempt), "validation_failed", [PAN]);
          expect(error instanceof PinBlockUndecodableError, JSON.stringify(attempt.format)).toBe(undecodable);
          expect(error.fields).toHaveProperty(attempt.keyId && !undecodable ? "keyId" : "pinBlock");
        };
        await refused({ format: 0, pinBlock: format0, keyId: "ct-pek-unknown" });
        await refused({ format: 0, pinBlock: format0, keyId: aes.id });
        await refused({ format: 4, pinBlock: `${format0}${format0}`, keyId: tdes.id });
        await refused({ format: 0, pinBlock: format0, keyId: activeOf(keys, "cvk").id });
        await refused({ format: 0, pinBlock: format1, keyId: tdes.id }, true); // a format-1 block read as format 0
        await refused({ format: 0, pinBlock: "F".repeat(16) }, true);
        await refused({ format: 4, pinBlock: "F".repeat(32) }, true);
        await refused({ format: 0, pinBlock: format0.slice(0, 8) });
        await refused({ format: 0, pinBlock: "ZZ".repeat(8) });
        await refused({ format: 4, pinBlock: format0 });
      });
    });

    describe("imported PINs (card import)", () => {
      it("importPin translates a block under a PIN-block key into format 4 under pin-storage, with its PVV under the PVK named", async () => {
        const tdes = activeOf(keys, "pek-tdes");
        const pvk = activeOf(keys, "pvk");
        const pvv = computePvv({ pvk: pvk.material, pvki: 2, pan: PAN, pin: "7351" });
        for (const format of [0, 1, 3] as const) {
          const pinBlock = encipherPinBlock({ format, pin: "7351", pan: PAN, key: tdes.material })
            .toString("hex")
            .toUpperCase();
          const stored = await p.importPin(
            card,
            { format, pinBlock, keyId: tdes.id },
            { pvkId: pvk.id, pvki: 2, pvv },
          );
          expect(stored).toMatchObject({ pvkId: pvk.id, pvki: 2, pvv });
          const [version, kid, block] = stored.pinSealed.split(":");
          expect([version, kid]).toEqual(["v1", activeOf(keys, "pin-storage").id]);
          const cipher = createPinBlockCipher(material("pin-storage"), "aes");
          expect(cipher.decipher({ format: 4, block: block!, pan: PAN })).toBe("7351");
          expect(await p.verifyPin({ ...card, pin: stored }, "7351")).toBe(true);
          expectNoPan(stored, [PAN]);
        }
        // Without a PVV the provider computes it.
        const aes = activeOf(keys, "pek-aes");
        const pinBlock = encipherPinBlock({ format: 4, pin: "7351", pan: PAN, key: aes.material }).toString(
          "hex",
        );
        const computed = await p.importPin(
          card,
          { format: 4, pinBlock, keyId: aes.id },
          { pvkId: pvk.id, pvki: 2 },
        );
        expect(computed.pvv).toBe(pvv);
      });

      it("importPin refuses a block whose PIN does not match the PVV, an undecodable block and a key of the wrong type", async () => {
        const tdes = activeOf(keys, "pek-tdes");
        const pvk = activeOf(keys, "pvk");
        const pinBlock = encipherPinBlock({ format: 0, pin: "7351", pan: PAN, key: tdes.material }).toString(
          "hex",
        );
        const pvv = computePvv({ pvk: pvk.material, pvki: 1, pan: PAN, pin: "7352" });
        const mismatch = await expectRefused(
          p.importPin(card, { format: 0, pinBlock, keyId: tdes.id }, { pvkId: pvk.id, pvki: 1, pvv }),
          "validation_failed",
          [PAN],
        );
        expect(mismatch.fields).toHaveProperty("pvv");
        expect(mismatch.message).not.toContain(pvv);
        const undecodable = await expectRefused(
          p.importPin(
            card,
            { format: 0, pinBlock: "F".repeat(16), keyId: tdes.id },
            { pvkId: pvk.id, pvki: 1 },
          ),
          "validation_failed",
          [PAN],
        );
        expect(undecodable instanceof PinBlockUndecodableError).toBe(true);
        const wrongKey = await expectRefused(
          p.importPin(
            card,
            { format: 0, pinBlock, keyId: activeOf(keys, "cvk").id },
            { pvkId: pvk.id, pvki: 1 },
          ),
          "validation_failed",
          [PAN],
        );
        expect(wrongKey.fields).toHaveProperty("zpkId");
      });

      it("a PIN stored as its PVV only verifies by the PVV, is not retrievable (pin_not_retrievable), and reseals unchanged", async () => {
        const pvk = activeOf(keys, "pvk");
        const pvv = computePvv({ pvk: pvk.material, pvki: 1, pan: PAN, pin: "2580" });
        const pvvOnly = { ...card, pin: { pvkId: pvk.id, pvki: 1, pvv, pinSealed: PVV_ONLY_PIN } };
        expect(await p.verifyPin(pvvOnly, "2580")).toBe(true);
        expect(await p.verifyPin(pvvOnly, "2581")).toBe(false);
        const tdes = activeOf(keys, "pek-tdes");
        const block = encipherPinBlock({ format: 0, pin: "2580", pan: PAN, key: tdes.material }).toString(
          "hex",
        );
        expect(await p.verifyPinBlock(pvvOnly, { format: 0, pinBlock: block })).toBe(true);
        await expectRefused(p.openPin(pvvOnly), "pin_not_retrievable", [PAN]);
        expect((await p.reseal(pvvOnly)).pinSealed).toBe(PVV_ONLY_PIN);
      });
    });

    describe("reseal (key rotation)", () => {
      let rotated: KeyProvider;
      let rotatedKeys: ContractKey[];
      beforeAll(async () => {
        rotatedKeys = [
          ...keys,
          { id: "ct-pan-data-2", type: "pan-data", material: randomBytes(32) },
          { id: "ct-pin-storage-2", type: "pin-storage", material: randomBytes(32) },
        ];
        rotated = await setup.provider(rotatedKeys);
      });

      it("seals the PAN and PIN block again under the new active keys; CVV, PIN and PVV unchanged", async () => {
        const { panSealed, pinSealed } = await rotated.reseal(pinCard);
        expect(panSealed.startsWith("v1:ct-pan-data-2:")).toBe(true);
        expect(pinSealed.startsWith("v1:ct-pin-storage-2:")).toBe(true);
        expect(openSealedText(panSealed, rotatedKeys, panAad(binding))).toBe(PAN);
        const block = pinSealed.split(":")[2]!;
        expect(
          createPinBlockCipher(rotatedKeys.at(-1)!.material, "aes").decipher({ format: 4, block, pan: PAN }),
        ).toBe("482916");
        expectNoPan([panSealed, pinSealed], [PAN]);
        const moved = { ...pinCard, panSealed, pin: { ...pinCard.pin, pinSealed } };
        expect(await rotated.deriveCvv(moved)).toBe(await p.deriveCvv(pinCard));
        expect(await rotated.openPin(moved)).toBe("482916");
        expect(await rotated.verifyPin(moved, "482916")).toBe(true);
        // Once current, a card comes back unchanged.
        expect(await rotated.reseal(moved)).toEqual({ panSealed, pinSealed });
        // Old ciphertexts still open under the older versions.
        expect(await rotated.openPin(pinCard)).toBe("482916");
      });

      it("returns a card already under the active keys unchanged, and moves only what is not", async () => {
        expect(await p.reseal(pinCard)).toEqual({
          panSealed: pinCard.panSealed,
          pinSealed: pinCard.pin.pinSealed,
        });
        const onlyPin = await setup.provider([
          ...keys,
          { id: "ct-pin-storage-3", type: "pin-storage", material: randomBytes(32) },
        ]);
        const result = await onlyPin.reseal(pinCard);
        expect(result.panSealed).toBe(pinCard.panSealed);
        expect(result.pinSealed.startsWith("v1:ct-pin-storage-3:")).toBe(true);
      });

      it("refuses to reseal a PIN block that does not match its PVV", async () => {
        const otherPvv = pinCard.pin.pvv === "0000" ? "1111" : "0000";
        await expectRefused(
          rotated.reseal({ ...pinCard, pin: { ...pinCard.pin, pvv: otherPvv } }),
          "key_unavailable",
          [PAN],
        );
      });
    });

    describe("webhook secrets", () => {
      const where = { tenantId: "tenant-a", endpointId: "ep-1" };
      const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

      it("seals with AES-256-GCM bound to tenant and endpoint, and opens only there", async () => {
        const sealed = await p.sealWebhookSecret(secret, where);
        expect(sealed.startsWith(`v1:${activeOf(keys, "webhook-secret").id}:`)).toBe(true);
        expect(sealed).not.toContain("MfKQ9r8G");
        expect(
          openSealedText(sealed, keys, `cardvault:webhook-secret:${where.tenantId}:${where.endpointId}`),
        ).toBe(secret);
        expect(await p.openWebhookSecret(sealed, where)).toBe(secret);
        for (const elsewhere of [
          { ...where, endpointId: "ep-2" },
          { ...where, tenantId: "tenant-b" },
        ]) {
          const error = await expectRefused(p.openWebhookSecret(sealed, elsewhere), "key_unavailable");
          expect(error.message).not.toContain("MfKQ9r8G");
        }
        await expectRefused(p.openWebhookSecret(tamper(sealed), where), "key_unavailable");
        // A sealed PAN is not a webhook secret, even with matching ids: the key type differs.
        const sealedPan = await p.sealPan(PAN, { tenantId: where.tenantId, cardId: where.endpointId });
        await expectRefused(p.openWebhookSecret(sealedPan, where), "key_unavailable", [PAN]);
      });
    });

    describe("access tokens", () => {
      it("signs the claims as given (EdDSA, typ at+jwt, kid of the active key) and publishes its public half", async () => {
        const signer = activeOf(keys, "access-token-sign");
        const claims = { sub: "client-1", tenant: "tenant-a", scope: "cvv:read", exp: 4_000_000_000 };
        const jwt = await p.signAccessToken(claims);
        const publicKey = createPublicKey(
          createPrivateKey({ key: signer.material, format: "der", type: "pkcs8" }),
        );
        const { payload, protectedHeader } = await compactVerify(jwt, publicKey);
        expect(protectedHeader).toEqual({ alg: "EdDSA", typ: "at+jwt", kid: signer.id });
        expect(JSON.parse(new TextDecoder().decode(payload))).toEqual(claims);
        const published = p.accessTokenPublicKeys();
        expect(published.map((k) => k.kid)).toEqual([signer.id]);
        expect(published[0]).toMatchObject({
          active: true,
          jwk: { kty: "OKP", crv: "Ed25519", alg: "EdDSA" },
        });
        expect(published[0]!.jwk.x).toBe(publicKey.export({ format: "jwk" }).x);
        expect(JSON.stringify(published)).not.toContain('"d"');
      });
    });

    describe("Get Card Data", () => {
      it("publishes the public halves of the wrap and sign keys it holds, and nothing private", () => {
        const published = p.secureDataKeys();
        for (const [type, use, alg, bits] of [
          ["secure-data-wrap", "wrap", "RSA-OAEP-256", 4096],
          ["secure-data-sign", "sign", "PS256", 3072],
        ] as const) {
          const k = activeOf(keys, type);
          const pub = published.find((x) => x.kid === k.id);
          expect(pub).toMatchObject({
            use,
            alg,
            active: true,
            jwk: { kid: k.id, alg, use: use === "wrap" ? "enc" : "sig" },
          });
          const expected = createPublicKey(
            createPrivateKey({ key: k.material, format: "der", type: "pkcs8" }),
          );
          expect(pub!.jwk.n).toBe(expected.export({ format: "jwk" }).n);
          const fromPem = createPublicKey(pub!.pem);
          expect(fromPem.asymmetricKeyDetails?.modulusLength).toBe(bits);
          expect(fromPem.export({ format: "jwk" }).n).toBe(pub!.jwk.n);
          expect(pub!.jwk).not.toHaveProperty("d");
          expect(pub!.pem).not.toContain("PRIVATE");
          expect(Number.isNaN(Date.parse(pub!.notAfter))).toBe(false);
        }
      });

      const cases: { fields: CardDataField[]; names: string[] }[] = [
        { fields: ["expiry"], names: ["expiryDate"] },
        { fields: ["cvv"], names: ["CVV"] },
        { fields: ["pin"], names: ["PIN"] },
        { fields: ["pan", "expiry"], names: ["PAN", "expiryDate"] },
        { fields: ["pan", "cvv", "expiry", "pin"], names: ["CVV", "PAN", "PIN", "expiryDate"] },
      ];
      const expectedValue = (name: string) =>
        ({
          PAN,
          CVV: computeCvv({
            cvk: material("cvk"),
            pan: PAN,
            expiry: card.expiry,
            serviceCode: card.serviceCode,
          }),
          expiryDate: expiryToDate(card.expiry),
          PIN: "482916",
        })[name];

      it.each(cases)(
        "a device session $fields: AES-256-CBC under the session key, signed RSA-PSS, exactly those fields",
        async ({ fields, names }) => {
          const wrap = p.secureDataKeys().find((k) => k.kid === activeOf(keys, "secure-data-wrap").id)!;
          const sessionKey = randomBytes(32);
          const {
            sealed: metadata,
            replayId,
            answer,
          } = await deliverThrough(
            p,
            { wrappedKey: wrapUnder(wrap.pem, sessionKey), now: new Date() },
            pinCard,
            fields,
          );
          const sealed = rsaAnswer(answer);
          expect(metadata).toEqual({
            method: "rsa-oaep+aes-cbc",
            wrapKeyId: wrap.kid,
            signingKeyId: activeOf(keys, "secure-data-sign").id,
          });
          expect(sealed.wrapKeyId).toBe(wrap.kid);
          expect(sealed.signingKeyId).toBe(activeOf(keys, "secure-data-sign").id);
          const sign = p.secureDataKeys().find((k) => k.kid === sealed.signingKeyId)!;
          const pss = { key: sign.pem, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
          expect(
            verify("sha256", Buffer.concat([sealed.encryptedPayload, sealed.iv]), pss, sealed.signature),
          ).toBe(true);
          const payload = openDevicePayload(sessionKey, sealed.iv, sealed.encryptedPayload);
          expect(Object.keys(payload).sort()).toEqual(names);
          for (const n of names) expect(payload[n], n).toBe(expectedValue(n));
          expect(stringsOf([metadata, sealed]).join()).not.toContain(PAN);
          expect(replayId).not.toContain(sessionKey.toString("base64url"));
          expect(replayId).not.toContain(sessionKey.toString("hex"));
        },
      );

      it("a device session: the same session key has the same replayId, another key another", async () => {
        const wrap = p.secureDataKeys().find((k) => k.kid === activeOf(keys, "secure-data-wrap").id)!;
        const sessionKey = randomBytes(32);
        const replayIdOf = async (key: Buffer) => {
          const session = p.deviceSession({
            wrappedKey: wrapUnder(wrap.pem, key),
            now: new Date(),
            keyId: wrap.kid,
          });
          try {
            await session.open();
            return session.replayId;
          } finally {
            session.close();
          }
        };
        const a = await replayIdOf(sessionKey);
        expect(await replayIdOf(Buffer.from(sessionKey))).toBe(a);
        expect(await replayIdOf(randomBytes(32))).not.toBe(a);
      });

      it("a device session seals again when asked (a transaction that runs again), signs each seal, and nothing once closed", async () => {
        const wrap = p.secureDataKeys().find((k) => k.kid === activeOf(keys, "secure-data-wrap").id)!;
        const sessionKey = randomBytes(32);
        const session = p.deviceSession({ wrappedKey: wrapUnder(wrap.pem, sessionKey), now: new Date() });
        await session.open();
        const first = await session.seal(pinCard, ["cvv"]);
        const second = await session.seal(pinCard, ["expiry"]);
        const answer = rsaAnswer(await session.sign(second));
        expect(Object.keys(openDevicePayload(sessionKey, answer.iv, answer.encryptedPayload))).toEqual([
          "expiryDate",
        ]);
        session.close();
        await expect(session.sign(first)).rejects.toThrow();
        await expect(session.seal(pinCard, ["cvv"])).rejects.toThrow();
      });

      it("a device session refuses a key that does not unwrap into 32 bytes, and a keyId that is no wrap key", async () => {
        const wrap = p.secureDataKeys().find((k) => k.kid === activeOf(keys, "secure-data-wrap").id)!;
        const opening = (request: { wrappedKey: Buffer; keyId?: string }) =>
          deliverThrough(p, { ...request, now: new Date() }, pinCard, ["pan"]);
        await expectRefused(
          opening({ wrappedKey: wrapUnder(wrap.pem, randomBytes(16)) }),
          "session_key_invalid",
          [PAN],
        );
        await expectRefused(opening({ wrappedKey: randomBytes(512) }), "session_key_invalid", [PAN]);
        await expectRefused(opening({ wrappedKey: randomBytes(12) }), "session_key_invalid", [PAN]);
        const wrappedKey = wrapUnder(wrap.pem, randomBytes(32));
        await expectRefused(
          opening({ wrappedKey, keyId: activeOf(keys, "secure-data-sign").id }),
          "validation_failed",
          [PAN],
        );
        await expectRefused(opening({ wrappedKey, keyId: "ct-no-such-key" }), "validation_failed", [PAN]);
      });

      it.each(cases)(
        "a device session with a device key $fields: JWS PS256 inside ECDH-ES+A256GCM, exactly those fields",
        async ({ fields, names }) => {
          const device = generateKeyPairSync("ec", { namedCurve: "P-256" });
          const deviceKey = device.publicKey.export({ format: "jwk" }) as Record<string, unknown>;
          const {
            sealed: metadata,
            replayId,
            answer,
          } = await deliverThrough(p, { deviceKey }, pinCard, fields);
          const sealed = jweAnswer(answer);
          expect(metadata).toEqual({
            method: "ecdh-es+a256gcm",
            signingKeyId: activeOf(keys, "secure-data-sign").id,
          });
          expect(sealed.signingKeyId).toBe(activeOf(keys, "secure-data-sign").id);
          expect(replayId).toBe(await calculateJwkThumbprint(deviceKey as JWK, "sha256"));
          expect(sealed.jwe).not.toContain(PAN);
          const { plaintext, protectedHeader } = await compactDecrypt(sealed.jwe, device.privateKey);
          expect(protectedHeader).toMatchObject({ alg: "ECDH-ES", enc: "A256GCM" });
          const sign = p.secureDataKeys().find((k) => k.kid === sealed.signingKeyId)!;
          const jws = await compactVerify(Buffer.from(plaintext).toString("utf8"), createPublicKey(sign.pem));
          expect(jws.protectedHeader).toMatchObject({ alg: "PS256", kid: sealed.signingKeyId });
          const payload = JSON.parse(Buffer.from(jws.payload).toString("utf8")) as Record<string, string>;
          expect(Object.keys(payload).sort()).toEqual(names);
          for (const n of names) expect(payload[n], n).toBe(expectedValue(n));
        },
      );

      it("a device session refuses a device key that is anything but a public P-256 key", async () => {
        const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
        const priv = ec.privateKey.export({ format: "jwk" }) as Record<string, unknown>;
        const pub = ec.publicKey.export({ format: "jwk" }) as Record<string, unknown>;
        const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey.export({ format: "jwk" });
        for (const deviceKey of [
          priv,
          p384,
          { ...pub, x: pub.y },
          { kty: "RSA", n: "AQAB", e: "AQAB" },
          {},
        ]) {
          await expectRefused(
            deliverThrough(p, { deviceKey: deviceKey as Record<string, unknown> }, pinCard, ["pan"]),
            "device_key_invalid",
            [PAN],
          );
        }
      });
    });

    describe("bindings", () => {
      // Every way a stored card can be wrong: copied to another tenant or card, tampered, or sealed elsewhere.
      const variants: [string, (c: SealedPinCard) => SealedPinCard][] = [
        ["another tenant", (c) => ({ ...c, tenantId: "tenant-b" })],
        ["another card", (c) => ({ ...c, cardId: "card-z" })],
        ["a tampered PAN envelope", (c) => ({ ...c, panSealed: tamper(c.panSealed) })],
        [
          "a PAN envelope naming an unknown key",
          (c) => ({ ...c, panSealed: c.panSealed.replace(/^v1:[^:]+:/, "v1:ct-gone:") }),
        ],
        ["a malformed PAN envelope", (c) => ({ ...c, panSealed: "not-an-envelope" })],
      ];
      let rotated: KeyProvider;
      let wrapPem: string;
      beforeAll(async () => {
        rotated = await setup.provider([
          ...keys,
          { id: "ct-pan-data-9", type: "pan-data", material: randomBytes(32) },
          { id: "ct-pin-storage-9", type: "pin-storage", material: randomBytes(32) },
        ]);
        wrapPem = p.secureDataKeys().find((k) => k.kid === activeOf(keys, "secure-data-wrap").id)!.pem;
      });

      it.each(variants)(
        "a card with %s fails every operation as key_unavailable, naming no PAN digit",
        async (_, wrong) => {
          const c = wrong(pinCard);
          const deviceKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
            format: "jwk",
          });
          const pinBlock = encipherPinBlock({
            format: 0,
            pin: "482916",
            pan: PAN,
            key: material("pek-tdes"),
          }).toString("hex");
          const operations: [string, () => Promise<unknown>][] = [
            ["deriveCvv", () => p.deriveCvv(c)],
            ["deriveCvvBatch", () => p.deriveCvvBatch([card, c])],
            ["verifyCvv", () => p.verifyCvv(c, "123")],
            ["sealPin", () => p.sealPin(c, "1234")],
            ["sealRandomPin", () => p.sealRandomPin(c, 4)],
            ["openPin", () => p.openPin(c)],
            ["verifyPin", () => p.verifyPin(c, "482916")],
            [
              "verifyPinBlock",
              () => p.verifyPinBlock(c, { format: 0, pinBlock, keyId: activeOf(keys, "pek-tdes").id }),
            ],
            ["reseal", () => rotated.reseal(c)],
            [
              "deviceSession (RSA)",
              () =>
                deliverThrough(p, { wrappedKey: wrapUnder(wrapPem, randomBytes(32)), now: new Date() }, c, [
                  "expiry",
                ]),
            ],
            [
              "deviceSession (JWE)",
              () => deliverThrough(p, { deviceKey: deviceKey as Record<string, unknown> }, c, ["expiry"]),
            ],
          ];
          for (const [what, run] of operations) {
            const error = await run().then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(error, what).toBeInstanceOf(AppError);
            expect((error as AppError).code, what).toBe("key_unavailable");
            expectNoPan(error, [PAN], true);
          }
        },
      );

      it("a sealed PAN opens under its own binding only, in every provider holding the key", async () => {
        const sealedHere = await p.sealPan(OTHER_PAN, { tenantId: "tenant-b", cardId: "card-a" });
        const swapped = { ...pinCard, panSealed: sealedHere };
        await expectRefused(p.deriveCvv(swapped), "key_unavailable", [PAN, OTHER_PAN]);
        expect(await p.deriveCvv({ ...swapped, tenantId: "tenant-b" })).toBe(
          computeCvv({
            cvk: material("cvk"),
            pan: OTHER_PAN,
            expiry: card.expiry,
            serviceCode: card.serviceCode,
          }),
        );
      });

      it("rejects malformed input without echoing it", async () => {
        for (const run of [
          () => p.sealPin(card, "12"),
          () => p.sealPin(card, "12ab"),
          () => p.deriveCvv({ ...card, expiry: "29-1" }),
          () => p.issuePan({ bin: "12", length: 16, binding }),
          () => p.issuePan({ bin: "400000", length: 40, binding }),
        ]) {
          const error = await run().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(Error);
          expectNoPan(error, [PAN], true);
          expect((error as Error).message).not.toContain("12ab");
        }
      });
    });

    describe("key ceremonies", () => {
      // TR-31:2018 A.7.2.2 (B, P0 TDES encrypt-only key) and a Thales payShield 10k K0 KEK in a B block
      // (openemv/tr31): published blocks, with their KBPKs.
      const B_EXAMPLE = {
        kbpk: "DD7515F2BFC17F85CE48F3CA25CB21F6",
        block: "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E",
      };
      const B_THALES_K0 = {
        kbpk: "EFE0853B256B583D868F251CE99EA1D9",
        block: "B0080K0TN00N00001C414014375212C24995E405B5EE052CB92B67F455EA2680F6751088F9F1C228",
        kcv: "5C9405",
      };
      const AES_KBPK = "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6";
      const cvkVector = VECTORS.cvv[0]!;
      const pvkVector = VECTORS.pvv.find((v) => v.pvki === "1")!;
      const binding = { tenantId: "tenant-c", cardId: "card-c" };
      let cp: KeyProvider;
      let ckeys: ContractKey[];
      const kbpkOf = (keyHex: string, algorithm: "tdes" | "aes"): KeyBlockProtectionKey => ({
        algorithm,
        length: keyHex.length / 2,
        cmac: (data) => (algorithm === "tdes" ? tdesCmac(hex(keyHex), data) : aesCmac(hex(keyHex), data)),
      });
      const kcvOf = (keyHex: string, algorithm: "tdes" | "aes") => keyCheckValue(hex(keyHex), algorithm, 3);
      const importedIds = (provider: KeyProvider) => provider.listKeys().map((k) => k.id);
      /** Refused with validation_failed, nothing stored, and no key material in the error. */
      async function expectImportRefused(promise: Promise<unknown>, message: RegExp, secrets: string[] = []) {
        const before = importedIds(cp);
        const error = await expectRefused(promise, "validation_failed");
        expect(error.message).toMatch(message);
        const text = stringsOf(error).join("\n").toUpperCase();
        for (const secret of secrets) expect(text).not.toContain(secret.toUpperCase().slice(0, 8));
        expect(importedIds(cp)).toEqual(before);
      }

      beforeAll(async () => {
        ckeys = generatedKeys(setup, "cx");
        cp = await setup.provider(ckeys);
      });

      it("imports a CVK that is never active and computes the published CVV under it, inside", async () => {
        const info = await cp.importKey({
          type: "cvk",
          material: hex(cvkVector.cvk),
          origin: "components",
          kcv: kcvOf(cvkVector.cvk, "tdes"),
        });
        expect(info).toMatchObject({ type: "cvk", origin: "components", active: false });
        expect(info.kcv).toBe(kcvOf(cvkVector.cvk, "tdes"));
        expect(info).not.toHaveProperty("material");
        expect(cp.activeKeyId("cvk")).toBe(activeOf(ckeys, "cvk").id);
        expect(cp.listKeys().find((k) => k.id === info.id)).toMatchObject({
          origin: "components",
          active: false,
        });
        for (const v of VECTORS.cvv.filter((x) => x.cvk === cvkVector.cvk)) {
          expect(
            await cp.computeCvv({
              keyId: info.id,
              pan: v.pan,
              expiry: v.expiry,
              serviceCode: v.service_code,
            }),
          ).toBe(v.cvv);
          // A card created under the imported CVK (a card program that names it) gets the same CVV.
          const c = {
            ...binding,
            panSealed: await cp.sealPan(v.pan, binding),
            expiry: v.expiry,
            cvkId: info.id,
            serviceCode: v.service_code,
          };
          expect(await cp.deriveCvv(c)).toBe(v.cvv);
        }
        expect(stringsOf(cp.listKeys()).join("\n")).not.toContain(cvkVector.cvk);
      });

      it("imports a PVK; sealPin with its id gives the published PVV", async () => {
        const info = await cp.importKey({ type: "pvk", material: hex(pvkVector.pvk), origin: "components" });
        expect(info).toMatchObject({ type: "pvk", active: false, origin: "components" });
        expect(cp.activeKeyId("pvk")).toBe(activeOf(ckeys, "pvk").id);
        expect(
          await cp.computePvv({
            keyId: info.id,
            pvki: pvkVector.pvki,
            pan: pvkVector.pan,
            pin: pvkVector.pin,
          }),
        ).toBe(pvkVector.pvv);
        const c = {
          ...binding,
          panSealed: await cp.sealPan(pvkVector.pan, binding),
          expiry: "3001",
          cvkId: cp.activeKeyId("cvk"),
          serviceCode: "000",
        };
        const stored = await cp.sealPin(c, pvkVector.pin, info.id);
        expect(stored).toMatchObject({ pvkId: info.id, pvki: 1, pvv: pvkVector.pvv });
        expect(await cp.verifyPin({ ...c, pin: stored }, pvkVector.pin)).toBe(true);
        // Without a PVK id, the active (generated) one, as before.
        expect((await cp.sealPin(c, pvkVector.pin)).pvkId).toBe(activeOf(ckeys, "pvk").id);
        const random = await cp.sealRandomPin(c, 4, info.id);
        expect(random.pvkId).toBe(info.id);
        expect(await cp.verifyPin({ ...c, pin: random }, await cp.openPin({ ...c, pin: random }))).toBe(true);
      });

      it("refuses a wrong check value, a type generated inside, a wrong length or algorithm: nothing stored", async () => {
        await expectImportRefused(
          cp.importKey({ type: "cvk", material: hex(cvkVector.cvk), origin: "components", kcv: "000000" }),
          /check value/,
          [cvkVector.cvk],
        );
        await expectImportRefused(
          cp.importKey({ type: "pan-data", material: randomBytes(32), origin: "components" }),
          /cannot be imported/,
        );
        await expectImportRefused(
          cp.importKey({ type: "cvk", material: randomBytes(24), origin: "components" }),
          /16 bytes/,
        );
        await expectImportRefused(
          cp.importKey({
            type: "pek-aes",
            material: randomBytes(16),
            origin: "components",
            algorithm: "tdes",
          }),
          /aes, not tdes/,
        );
        await expectImportRefused(
          cp.importKey({ type: "cvk", material: hex(cvkVector.cvk), origin: "components", kcv: "XYZ" }),
          /4 or 6 hex digits/,
        );
        await expectRefused(
          cp.computeCvv({
            keyId: activeOf(ckeys, "pvk").id,
            pan: "4123456789012",
            expiry: "8701",
            serviceCode: "101",
          }),
          "key_unavailable",
        );
      });

      it("a zone PIN key serves like a PEK of its algorithm (format 0 under TDES, format 4 under AES)", async () => {
        const v0 = VECTORS.pinblock_iso0_encrypted[0]!;
        const v4 = VECTORS.pinblock_iso4.find((v) => v.pan.length >= 12)!;
        const tdesZpk = await cp.importKey({ type: "zpk", material: hex(v0.key), origin: "components" });
        const aesZpk = await cp.importKey({
          type: "zpk",
          material: hex(v4.aes_key),
          origin: "components",
          algorithm: "aes",
        });
        expect(tdesZpk).toMatchObject({ type: "zpk", algorithm: "tdes-2key", active: false });
        expect(aesZpk).toMatchObject({ type: "zpk", algorithm: "aes-128", kcv: kcvOf(v4.aes_key, "aes") });
        for (const [v, format, keyId, block] of [
          [v0, 0, tdesZpk.id, v0.encrypted_pin_block],
          [v4, 4, aesZpk.id, v4.enciphered_pin_block],
        ] as const) {
          const c = {
            ...binding,
            panSealed: await cp.sealPan(v.pan, binding),
            expiry: "3001",
            cvkId: cp.activeKeyId("cvk"),
            serviceCode: "000",
          };
          const pc = { ...c, pin: await cp.sealPin(c, v.pin) };
          expect(await cp.verifyPinBlock(pc, { format, pinBlock: block, keyId })).toBe(true);
          const other = { ...c, pin: await cp.sealPin(c, "9876") };
          expect(await cp.verifyPinBlock(other, { format, pinBlock: block, keyId })).toBe(false);
        }
        // A zpk of the other algorithm is not a key for the format.
        const c = {
          ...binding,
          panSealed: await cp.sealPan(v4.pan, binding),
          expiry: "3001",
          cvkId: cp.activeKeyId("cvk"),
          serviceCode: "000",
        };
        const pc = { ...c, pin: await cp.sealPin(c, v4.pin) };
        await expectRefused(
          cp.verifyPinBlock(pc, { format: 4, pinBlock: v4.enciphered_pin_block, keyId: tdesZpk.id }),
          "validation_failed",
        );
      });

      it("TR-31 version B: the published K0 block unwraps under a KBPK imported by components", async () => {
        const kbpk = await cp.importKey({
          type: "kbpk",
          material: hex(B_THALES_K0.kbpk),
          origin: "components",
          kcv: kcvOf(B_THALES_K0.kbpk, "tdes"),
        });
        expect(kbpk).toMatchObject({ type: "kbpk", algorithm: "tdes-2key", active: false });
        const kek = await cp.importKeyBlock({ type: "kbpk", block: B_THALES_K0.block, kbpkId: kbpk.id });
        expect(kek).toMatchObject({ type: "kbpk", origin: "tr31", kcv: B_THALES_K0.kcv, active: false });
        // A CVK wrapped in a C0 block under that KEK: the published CVV comes out of it.
        const block = wrapKeyBlock(
          "B0000C0TC00N0000",
          hex(cvkVector.cvk),
          kbpkOf("5DB50B454F8389ADCE573BE50861F2BF", "tdes"),
        );
        const cvk = await cp.importKeyBlock({
          type: "cvk",
          block,
          kbpkId: kek.id,
          kcv: kcvOf(cvkVector.cvk, "tdes"),
        });
        expect(cvk).toMatchObject({ type: "cvk", origin: "tr31", active: false });
        expect(
          await cp.computeCvv({
            keyId: cvk.id,
            pan: cvkVector.pan,
            expiry: cvkVector.expiry,
            serviceCode: cvkVector.service_code,
          }),
        ).toBe(cvkVector.cvv);
      });

      it("TR-31 version D under an AES KBPK: a P0 AES zone PIN key", async () => {
        const kbpk = await cp.importKey({ type: "kbpk", material: hex(AES_KBPK), origin: "components" });
        expect(kbpk).toMatchObject({ algorithm: "aes-256" });
        const v4 = VECTORS.pinblock_iso4.find((v) => v.pan.length >= 12)!;
        const block = wrapKeyBlock("D0000P0AD00N0000", hex(v4.aes_key), kbpkOf(AES_KBPK, "aes"));
        const zpk = await cp.importKeyBlock({ type: "zpk", block, kbpkId: kbpk.id });
        expect(zpk).toMatchObject({
          type: "zpk",
          algorithm: "aes-128",
          origin: "tr31",
          kcv: kcvOf(v4.aes_key, "aes"),
        });
      });

      it("refuses a block whose header does not fit the type, naming the field; a MAC failure; a wrong KBPK id", async () => {
        const kbpk = await cp.importKey({
          type: "kbpk",
          material: hex(B_EXAMPLE.kbpk),
          origin: "components",
        });
        // The published P0 block is encrypt-only (E): we decipher PIN blocks, so it is no PEK or zpk of ours.
        await expectImportRefused(
          cp.importKeyBlock({ type: "zpk", block: B_EXAMPLE.block, kbpkId: kbpk.id }),
          /mode of use is E.*needs B or D or N/,
        );
        await expectImportRefused(
          cp.importKeyBlock({ type: "cvk", block: B_EXAMPLE.block, kbpkId: kbpk.id }),
          /key usage is P0 \(PIN encryption key\); a cvk key needs C0/,
        );
        const aesInB = wrapKeyBlock("B0000P0AD00N0000", randomBytes(16), kbpkOf(B_EXAMPLE.kbpk, "tdes"));
        await expectImportRefused(
          cp.importKeyBlock({ type: "pek-tdes", block: aesInB, kbpkId: kbpk.id }),
          /algorithm is A/,
        );
        // Under another KBPK the MAC does not verify.
        const other = await cp.importKey({
          type: "kbpk",
          material: hex(B_THALES_K0.kbpk),
          origin: "components",
        });
        await expectImportRefused(
          cp.importKeyBlock({ type: "pek-tdes", block: B_EXAMPLE.block, kbpkId: other.id }),
          /MAC does not verify/,
          [B_EXAMPLE.kbpk, B_THALES_K0.kbpk, B_EXAMPLE.block.slice(16)],
        );
        // A version D block needs an AES KBPK.
        const dBlock = wrapKeyBlock("D0000P0AD00N0000", randomBytes(16), kbpkOf(AES_KBPK, "aes"));
        await expectImportRefused(
          cp.importKeyBlock({ type: "zpk", block: dBlock, kbpkId: kbpk.id }),
          /needs a AES|AES key block/,
        );
        await expectImportRefused(
          cp.importKeyBlock({ type: "zpk", block: B_EXAMPLE.block, kbpkId: activeOf(ckeys, "cvk").id }),
          /names no kbpk/,
        );
        await expectImportRefused(
          cp.importKeyBlock({ type: "zpk", block: "B0016", kbpkId: kbpk.id }),
          /key block/,
        );
      });
    });

    describe("published vectors through the provider", () => {
      const binding = { tenantId: "tenant-v", cardId: "card-v" };
      const cvks = [...new Set(VECTORS.cvv.map((v) => v.cvk))];
      const pvks = [...new Set(VECTORS.pvv.map((v) => v.pvk))];
      // The PVV vectors with PVKI 1 come out of sealPin (which always uses PVKI 1) under the active PVK.
      const sealPvk = VECTORS.pvv.find((v) => v.pvki === "1")!.pvk;
      const pek4 = [...new Set(VECTORS.pinblock_iso4.map((v) => v.aes_key))];
      const pek0 = [...new Set(VECTORS.pinblock_iso0_encrypted.map((v) => v.key))];
      let vp: KeyProvider;
      let vkeys: ContractKey[];
      const idOf = (type: KeyType, keyHex: string) =>
        vkeys.find((k) => k.type === type && k.material.equals(hex(keyHex)))!.id;
      const vectorCard = async (pan: string, cvkId: string, expiry = "3001", serviceCode = "000") => ({
        ...binding,
        panSealed: await vp.sealPan(pan, binding),
        expiry,
        cvkId,
        serviceCode,
      });

      beforeAll(async () => {
        const base = generatedKeys(setup, "vx").filter((k) => k.type !== "pvk");
        vkeys = [
          ...cvks.map((k, i) => ({ id: `vector-cvk-${i}`, type: "cvk" as const, material: hex(k) })),
          ...pvks
            .filter((k) => k !== sealPvk)
            .map((k, i) => ({ id: `vector-pvk-${i}`, type: "pvk" as const, material: hex(k) })),
          { id: "vector-pvk-active", type: "pvk", material: hex(sealPvk) },
          ...pek4.map((k, i) => ({ id: `vector-pek-aes-${i}`, type: "pek-aes" as const, material: hex(k) })),
          ...pek0.map((k, i) => ({
            id: `vector-pek-tdes-${i}`,
            type: "pek-tdes" as const,
            material: hex(k),
          })),
          ...VECTORS.kcv.map((k, i) => ({
            id: `vector-kcv-${i}`,
            type: k.method === "tdes_ecb_zero" ? ("cvk" as const) : ("pek-aes" as const),
            material: hex(k.key),
          })),
        ];
        // The generated keys come last, so they are the active versions (but the PVK is the vector's).
        vp = await setup.provider([...vkeys, ...base]);
        vkeys = [...vkeys, ...base];
      });

      it.each(VECTORS.cvv)("CVV $pan $expiry $service_code -> $cvv", async (v) => {
        const c = await vectorCard(v.pan, idOf("cvk", v.cvk), v.expiry, v.service_code);
        expect(await vp.deriveCvv(c)).toBe(v.cvv);
        expect(await vp.verifyCvv(c, v.cvv)).toBe(true);
        expect(await vp.deriveCvvBatch([c, c])).toEqual([v.cvv, v.cvv]);
      });

      it("all CVV vectors in one batch", async () => {
        const cards = await Promise.all(
          VECTORS.cvv.map((v) => vectorCard(v.pan, idOf("cvk", v.cvk), v.expiry, v.service_code)),
        );
        expect(await vp.deriveCvvBatch(cards)).toEqual(VECTORS.cvv.map((v) => v.cvv));
      });

      it.each(VECTORS.pvv)("PVV $pan pvki $pvki -> $pvv", async (v) => {
        const c = await vectorCard(v.pan, vp.activeKeyId("cvk"));
        const stored = await vp.sealPin(c, v.pin);
        if (v.pvk === sealPvk && v.pvki === "1")
          expect(stored).toMatchObject({ pvkId: "vector-pvk-active", pvki: 1, pvv: v.pvv });
        // Any PVKI and PVK: the stored PIN named with the vector's PVK, PVKI and PVV verifies and opens.
        const named = {
          ...c,
          pin: { ...stored, pvkId: idOf("pvk", v.pvk), pvki: Number(v.pvki), pvv: v.pvv },
        };
        expect(await vp.verifyPin(named, v.pin)).toBe(true);
        expect(await vp.openPin(named)).toBe(v.pin);
        const wrongPvv = String((Number(v.pvv) + 1) % 10_000).padStart(4, "0");
        expect(await vp.verifyPin({ ...named, pin: { ...named.pin, pvv: wrongPvv } }, v.pin)).toBe(false);
      });

      // Format-4 vectors with a PAN of 12-19 digits (a card's PAN; the one with PAN "1" cannot be a card).
      it.each(VECTORS.pinblock_iso4.filter((v) => v.pan.length >= 12))(
        "enciphered format 4 under AES key $aes_key",
        async (v) => {
          const c = await vectorCard(v.pan, vp.activeKeyId("cvk"));
          const pc = { ...c, pin: await vp.sealPin(c, v.pin) };
          const keyId = idOf("pek-aes", v.aes_key);
          expect(await vp.verifyPinBlock(pc, { format: 4, pinBlock: v.enciphered_pin_block, keyId })).toBe(
            true,
          );
          const other = { ...c, pin: await vp.sealPin(c, "9876") };
          expect(await vp.verifyPinBlock(other, { format: 4, pinBlock: v.enciphered_pin_block, keyId })).toBe(
            false,
          );
        },
      );

      it.each(VECTORS.pinblock_iso0_encrypted)("enciphered format 0, PAN $pan", async (v) => {
        const c = await vectorCard(v.pan, vp.activeKeyId("cvk"));
        const pc = { ...c, pin: await vp.sealPin(c, v.pin) };
        const keyId = idOf("pek-tdes", v.key);
        expect(await vp.verifyPinBlock(pc, { format: 0, pinBlock: v.encrypted_pin_block, keyId })).toBe(true);
      });

      // The clear format 0/1/3 vectors, enciphered here with plain 3DES under the active PIN encryption key.
      const clear = [
        ...VECTORS.pinblock_iso0.map((v) => ({ ...v, format: 0 as const })),
        ...VECTORS.pinblock_iso1.map((v) => ({ ...v, pan: PAN, format: 1 as const })),
        ...VECTORS.pinblock_iso3.map((v) => ({ ...v, format: 3 as const })),
      ];
      it.each(clear.map((v) => ({ ...v, label: `format ${v.format} block ${v.pin_block}` })))(
        "clear $label enciphered under the pek-tdes key",
        async (v) => {
          const c = await vectorCard(v.pan, vp.activeKeyId("cvk"));
          const pc = { ...c, pin: await vp.sealPin(c, v.pin) };
          const pek = vkeys.find((k) => k.id === vp.activeKeyId("pek-tdes"))!.material;
          const pinBlock = tdesEncrypt(pek, hex(v.pin_block)).toString("hex");
          expect(await vp.verifyPinBlock(pc, { format: v.format, pinBlock })).toBe(true);
        },
      );

      it.each(VECTORS.kcv.map((v, i) => ({ ...v, i })))("KCV $method of $key -> $kcv", (v) => {
        const listed = vp.listKeys().find((k) => k.id === `vector-kcv-${v.i}`)!.kcv;
        expect(listed.length).toBeGreaterThanOrEqual(4);
        const n = Math.min(listed.length, v.kcv.length);
        expect(listed.slice(0, n)).toBe(v.kcv.slice(0, n));
      });
    });
  });
}
