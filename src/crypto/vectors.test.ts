// Every published known-answer vector in test/vectors/card-crypto.json (a copy of the shared file, so
// CI does not depend on a sibling folder) must pass.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  computeCvv,
  computeCvvBatch,
  computeDcvv,
  computePvv,
  createCvvGenerator,
  createPinBlockCipher,
  createPvvGenerator,
  decipherPinBlock,
  decodePinBlock,
  encipherPinBlock,
  encodePinBlock,
  ibm3624NaturalPin,
  ibm3624Offset,
  ibm3624PinFromOffset,
  iso4PanField,
  keyCheckValue,
  type PinBlockFormat,
  pvvTsp,
  tdesDecrypt,
  toHex,
} from "./index.js";

const localUrl = new URL("../../test/vectors/card-crypto.json", import.meta.url);
const sharedUrl = new URL("../../../shared/vectors/card-crypto.json", import.meta.url);
type Section =
  | "cvv"
  | "pvv"
  | "ibm3624"
  | "pinblock_iso0"
  | "pinblock_iso1"
  | "pinblock_iso2"
  | "pinblock_iso3"
  | "pinblock_iso4"
  | "iso4_pan_field"
  | "pinblock_iso0_encrypted"
  | "kcv"
  | "dcvv";
// biome-ignore lint/suspicious/noExplicitAny: vector shapes are checked by the assertions that use them
type VectorFile = Record<Section, any[]>;

const v: VectorFile = JSON.parse(readFileSync(localUrl, "utf8"));
const key = (hex: string) => Buffer.from(hex, "hex");

describe("vector file", () => {
  it("the local copy equals the shared vectors when the shared file exists", () => {
    if (!existsSync(sharedUrl)) return;
    expect(v).toEqual(JSON.parse(readFileSync(sharedUrl, "utf8")));
  });

  it("has every section", () => {
    for (const section of [
      "cvv",
      "pvv",
      "ibm3624",
      "pinblock_iso0",
      "pinblock_iso1",
      "pinblock_iso2",
      "pinblock_iso3",
      "pinblock_iso4",
      "iso4_pan_field",
      "pinblock_iso0_encrypted",
      "kcv",
      "dcvv",
    ] as const satisfies readonly Section[]) {
      expect(v[section]?.length, section).toBeGreaterThan(0);
    }
  });
});

describe("Visa CVV vectors", () => {
  it.each(v.cvv)("$pan $expiry $service_code -> $cvv", (c) => {
    const input = { pan: c.pan, expiry: c.expiry, serviceCode: c.service_code };
    expect(computeCvv({ cvk: key(c.cvk), ...input })).toBe(c.cvv);
    expect(createCvvGenerator(key(c.cvk))(input)).toBe(c.cvv);
    expect(computeCvvBatch(key(c.cvk), [input, input])).toEqual([c.cvv, c.cvv]);
  });
});

describe("Visa PVV vectors", () => {
  it.each(v.pvv)("$pan pvki $pvki -> $pvv", (c) => {
    const input = { pvki: c.pvki, pan: c.pan, pin: c.pin };
    expect(pvvTsp(input)).toBe(c.tsp);
    expect(computePvv({ pvk: key(c.pvk), ...input })).toBe(c.pvv);
    const generate = createPvvGenerator(key(c.pvk));
    expect(generate(input)).toBe(c.pvv);
    expect(generate(input)).toBe(c.pvv);
  });
});

describe("IBM 3624 vectors", () => {
  it.each(v.ibm3624)("offset $offset <-> pin $pin", (c) => {
    const params = {
      pvk: key(c.pvk),
      decimalizationTable: c.decimalization_table,
      validationData: c.validation_data,
      pad: c.pad,
    };
    expect(ibm3624NaturalPin({ ...params, checkLength: c.pin.length })).toBe(c.natural_pin);
    expect(ibm3624Offset({ ...params, pin: c.pin })).toBe(c.offset);
    expect(ibm3624PinFromOffset({ ...params, offset: c.offset })).toBe(c.pin);
  });
});

describe("ISO 9564 clear PIN block vectors", () => {
  const clear = [...v.pinblock_iso0, ...v.pinblock_iso1, ...v.pinblock_iso2, ...v.pinblock_iso3];
  it.each(clear)("format $format $pin_block decodes to $pin", (c) => {
    const pan = c.pan ?? undefined;
    expect(decodePinBlock({ format: c.format as PinBlockFormat, block: c.pin_block, pan })).toBe(c.pin);
    expect(decodePinBlock({ format: c.format as PinBlockFormat, block: key(c.pin_block), pan })).toBe(c.pin);
  });

  it.each([...v.pinblock_iso0, ...v.pinblock_iso2])("format $format encodes $pin to $pin_block", (c) => {
    expect(toHex(encodePinBlock({ format: c.format, pin: c.pin, pan: c.pan ?? undefined }))).toBe(
      c.pin_block,
    );
  });
});

describe("ISO 9564 format 4 vectors", () => {
  it.each(v.pinblock_iso4)("AES key $aes_key, PAN $pan", (c) => {
    const randomTail = key(c.pin_field.slice(16));
    const random = (size: number) => randomTail.subarray(0, size);
    expect(toHex(iso4PanField(c.pan))).toBe(c.pan_field);
    expect(toHex(encodePinBlock({ format: 4, pin: c.pin, random }))).toBe(c.pin_field);
    expect(decodePinBlock({ format: 4, block: c.pin_field })).toBe(c.pin);
    expect(
      decipherPinBlock({ format: 4, block: c.enciphered_pin_block, pan: c.pan, key: key(c.aes_key) }),
    ).toBe(c.pin);
    const enciphered = encipherPinBlock({ format: 4, pin: c.pin, pan: c.pan, key: key(c.aes_key), random });
    expect(toHex(enciphered)).toBe(c.enciphered_pin_block);
    // The reused-cipher path the key provider takes, twice in a row (the second call reuses the schedules).
    const cipher = createPinBlockCipher(key(c.aes_key), "aes");
    for (let i = 0; i < 2; i++) {
      expect(cipher.decipher({ format: 4, block: c.enciphered_pin_block, pan: c.pan })).toBe(c.pin);
      expect(toHex(cipher.encipher({ format: 4, pin: c.pin, pan: c.pan, random }))).toBe(
        c.enciphered_pin_block,
      );
    }
  });

  it.each(v.iso4_pan_field)("PAN field for $pan", (c) => {
    expect(toHex(iso4PanField(c.pan))).toBe(c.pan_field);
  });
});

describe("enciphered format 0 vectors", () => {
  it.each(v.pinblock_iso0_encrypted)("PAN $pan", (c) => {
    expect(toHex(encodePinBlock({ format: 0, pin: c.pin, pan: c.pan }))).toBe(c.clear_pin_block);
    expect(toHex(encipherPinBlock({ format: 0, pin: c.pin, pan: c.pan, key: key(c.key) }))).toBe(
      c.encrypted_pin_block,
    );
    expect(toHex(tdesDecrypt(key(c.key), key(c.encrypted_pin_block)))).toBe(c.clear_pin_block);
    expect(decipherPinBlock({ format: 0, block: c.encrypted_pin_block, pan: c.pan, key: key(c.key) })).toBe(
      c.pin,
    );
    const cipher = createPinBlockCipher(key(c.key), "tdes");
    for (let i = 0; i < 2; i++) {
      expect(cipher.decipher({ format: 0, block: key(c.encrypted_pin_block), pan: c.pan })).toBe(c.pin);
      expect(toHex(cipher.encipher({ format: 0, pin: c.pin, pan: c.pan }))).toBe(c.encrypted_pin_block);
    }
  });
});

describe("KCV vectors", () => {
  it.each(v.kcv)("$method $bytes bytes -> $kcv", (c) => {
    const algorithm = c.method === "aes_cmac_zero" ? "aes" : "tdes";
    expect(keyCheckValue(key(c.key), algorithm, c.bytes)).toBe(c.kcv);
  });
});

describe("dCVV vectors", () => {
  it.each(v.dcvv)("$mk_derivation, PAN $pan -> $dcvv", (c) => {
    const option = c.mk_derivation === "EMV option B" ? "B" : "A";
    expect(
      computeDcvv({
        imk: key(c.imk_ac),
        pan: c.pan,
        psn: c.psn,
        expiry: c.expiry,
        serviceCode: c.service_code,
        atc: c.atc,
        option,
      }),
    ).toBe(c.dcvv);
  });
});
