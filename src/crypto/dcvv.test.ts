// dCVV and EMV master-key derivation (options A and B) beyond the jPOS vectors.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  CryptoInputError,
  computeCvv,
  computeDcvv,
  deriveIccMasterKey,
  iccDerivationData,
  toHex,
} from "./index.js";

const imk = Buffer.from("0123456789ABCDEFFEDCBA9876543210", "hex");

describe("ICC master key derivation", () => {
  it("option A takes the rightmost 16 digits of PAN || PSN, zero-padded", () => {
    expect(toHex(iccDerivationData("4000001234567899", "01", "A"))).toBe("0000123456789901");
    expect(toHex(iccDerivationData("123456789012", "00", "A"))).toBe("0012345678901200");
    expect(toHex(iccDerivationData("4000001234567899123", "05", "A"))).toBe("0123456789912305");
  });

  it("option B hashes the BCD PAN || PSN (odd length padded left) and decimalises", () => {
    const digest = createHash("sha1")
      .update(Buffer.from("04000001234567899123" + "05", "hex"))
      .digest("hex");
    const upper = digest.toUpperCase();
    const digits = (
      upper.replace(/[A-F]/g, "") + [...upper.replace(/[0-9]/g, "")].map((c) => c.charCodeAt(0) - 65).join("")
    ).slice(0, 16);
    expect(toHex(iccDerivationData("4000001234567899123", "05", "B"))).toBe(digits);
  });

  it("yields a parity-adjusted double-length key", () => {
    const mk = deriveIccMasterKey({ imk, pan: "4000001234567899", psn: "00" });
    expect(mk).toHaveLength(16);
    for (const byte of mk) expect(byte.toString(2).replace(/0/g, "").length % 2).toBe(1);
  });
});

describe("dCVV", () => {
  it("is the CVV method under the ICC master key with the ATC replacing the first four PAN digits", () => {
    const pan = "4000001234567899";
    const mk = deriveIccMasterKey({ imk, pan, psn: "00", option: "A" });
    const dcvv = computeDcvv({ imk, pan, psn: "00", expiry: "2812", serviceCode: "101", atc: "0042" });
    expect(dcvv).toBe(
      computeCvv({ cvk: mk, pan: `0042${pan.slice(4)}`, expiry: "2812", serviceCode: "101" }),
    );
  });

  it("accepts hex ATCs and changes with the ATC", () => {
    const base = { imk, pan: "4000001234567899", psn: "00", expiry: "2812", serviceCode: "101" };
    const values = new Set(
      ["0001", "00FF", "00ff", "ABCD", "FFFF"].map((atc) => computeDcvv({ ...base, atc })),
    );
    expect(values.size).toBeGreaterThanOrEqual(3);
    expect(computeDcvv({ ...base, atc: "00ff" })).toBe(computeDcvv({ ...base, atc: "00FF" }));
  });

  it.each([
    ["ATC length", { atc: "123" }],
    ["ATC non-hex", { atc: "12G4" }],
    ["PSN length", { psn: "0" }],
    ["PAN", { pan: "40000012345" }],
    ["expiry", { expiry: "281" }],
    ["service code", { serviceCode: "1O1" }],
    ["option", { option: "C" as "A" }],
    ["IMK length", { imk: Buffer.alloc(24) }],
  ])("rejects bad %s", (_name, change) => {
    const input = {
      imk,
      pan: "4000001234567899",
      psn: "00",
      expiry: "2812",
      serviceCode: "101",
      atc: "0001",
    };
    expect(() => computeDcvv({ ...input, ...change })).toThrow(CryptoInputError);
  });
});
