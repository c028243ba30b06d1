// Visa CVV beyond the vectors: second decimalisation pass, batch = single = independent reference, input rejection.
import { createCipheriv, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CryptoInputError,
  CVV2_SERVICE_CODE,
  computeCvv,
  computeCvvBatch,
  createCvvGenerator,
  ICVV_SERVICE_CODE,
  visaDecimalize,
} from "./index.js";

const cvk = Buffer.from("0123456789ABCDEFFEDCBA9876543210", "hex");

/** Independent Visa CVV: raw OpenSSL calls and a regex decimalisation, no code shared with cvv.ts. */
function referenceCvv(key: Buffer, pan: string, expiry: string, serviceCode: string) {
  const data = Buffer.from(`${pan}${expiry}${serviceCode}`.padEnd(32, "0"), "hex");
  const a = key.subarray(0, 8);
  const single = createCipheriv("des-ede3-ecb", Buffer.concat([a, a, a]), null).setAutoPadding(false);
  const mid = single.update(data.subarray(0, 8));
  for (let i = 0; i < 8; i++) mid[i] = (mid[i] as number) ^ (data[i + 8] as number);
  const triple = createCipheriv("des-ede3-ecb", Buffer.concat([key, a]), null).setAutoPadding(false);
  const hex = triple.update(mid).toString("hex").toUpperCase();
  const first = hex.replace(/[A-F]/g, "");
  const second = [...hex.replace(/[0-9]/g, "")].map((c) => String(c.charCodeAt(0) - 65)).join("");
  return { hex, cvv: (first + second).slice(0, 3), firstPassDigits: first.length };
}

describe("Visa decimalisation", () => {
  it("takes decimal nibbles first, then A-F minus 10", () => {
    expect(visaDecimalize(Buffer.from("ABCDEF1234567890", "hex"), 16)).toBe("1234567890012345");
    expect(visaDecimalize(Buffer.from("FEDCBA9AAAAAAAAA", "hex"), 4)).toBe("9543");
  });
});

describe("CVV second decimalisation pass", () => {
  // Found by search: the 3DES result ED8C6ECDEBFCBBDF has only two decimal nibbles (8, 6).
  it("uses the A-F pass when the first pass yields fewer than 3 digits", () => {
    const ref = referenceCvv(cvk, "4111110000515960", "2812", "000");
    expect(ref.hex).toBe("ED8C6ECDEBFCBBDF");
    expect(ref.firstPassDigits).toBe(2);
    expect(ref.cvv).toBe("864");
    expect(computeCvv({ cvk, pan: "4111110000515960", expiry: "2812", serviceCode: "000" })).toBe("864");
  });

  it("matches the reference for other inputs whose first pass is short", () => {
    for (const pan of ["4111110000760038", "4111110001170203"]) {
      const ref = referenceCvv(cvk, pan, "2812", "000");
      expect(ref.firstPassDigits).toBeLessThan(3);
      expect(computeCvv({ cvk, pan, expiry: "2812", serviceCode: "000" })).toBe(ref.cvv);
    }
  });
});

describe("CVV properties", () => {
  const input = fc.record({
    pan: fc.stringMatching(/^[0-9]{12,19}$/),
    expiry: fc.stringMatching(/^[0-9]{4}$/),
    serviceCode: fc.stringMatching(/^[0-9]{3}$/),
  });

  it("generator, one-off and batch agree with an independent implementation", () => {
    const key = randomBytes(16);
    const generate = createCvvGenerator(key);
    fc.assert(
      fc.property(fc.array(input, { minLength: 1, maxLength: 20 }), (inputs) => {
        const expected = inputs.map((i) => referenceCvv(key, i.pan, i.expiry, i.serviceCode).cvv);
        expect(inputs.map(generate)).toEqual(expected);
        expect(computeCvvBatch(key, inputs)).toEqual(expected);
        expect(computeCvv({ cvk: key, ...(inputs[0] as (typeof inputs)[0]) })).toBe(expected[0]);
      }),
      { numRuns: 100 },
    );
  });

  it("batch handles more inputs than one chunk, in order", () => {
    const inputs = Array.from({ length: 9000 }, (_, i) => ({
      pan: String(4_000_000_000_000_000 + i * 7919),
      expiry: "2812",
      serviceCode: i % 2 === 0 ? CVV2_SERVICE_CODE : ICVV_SERVICE_CODE,
    }));
    const generate = createCvvGenerator(cvk);
    expect(computeCvvBatch(cvk, inputs)).toEqual(inputs.map(generate));
    expect(computeCvvBatch(cvk, [])).toEqual([]);
  });

  it("CVV2 and iCVV are the CVV method with service codes 000 and 999", () => {
    const pan = "4123456789012345";
    const cvv2 = computeCvv({ cvk, pan, expiry: "8701", serviceCode: CVV2_SERVICE_CODE });
    const icvv = computeCvv({ cvk, pan, expiry: "8701", serviceCode: ICVV_SERVICE_CODE });
    expect(cvv2).toBe(referenceCvv(cvk, pan, "8701", "000").cvv);
    expect(icvv).toBe(referenceCvv(cvk, pan, "8701", "999").cvv);
  });

  it("works for 12-digit PANs", () => {
    const pan = "123456789012";
    expect(computeCvv({ cvk, pan, expiry: "1108", serviceCode: "101" })).toBe(
      referenceCvv(cvk, pan, "1108", "101").cvv,
    );
  });
});

describe("CVV input validation", () => {
  const good = { cvk, pan: "4123456789012345", expiry: "8701", serviceCode: "101" };
  it.each([
    ["short PAN", { pan: "41234567890" }],
    ["long PAN", { pan: "41234567890123456789" }],
    ["non-digit PAN", { pan: "4123456789O12345" }],
    ["hex PAN", { pan: "4123456789A12345" }],
    ["expiry length", { expiry: "871" }],
    ["expiry digits", { expiry: "87-1" }],
    ["service code length", { serviceCode: "1010" }],
    ["service code digits", { serviceCode: "1a1" }],
    ["key length", { cvk: Buffer.alloc(24) }],
    ["short key", { cvk: Buffer.alloc(8) }],
  ])("rejects %s", (_name, change) => {
    const input = { ...good, ...change };
    expect(() => computeCvv(input)).toThrow(CryptoInputError);
    expect(() => computeCvvBatch(input.cvk, [good, input])).toThrow(CryptoInputError);
  });

  it("never puts the PAN in the message", () => {
    expect(() => computeCvv({ ...good, pan: "4123456789O12345" })).toThrow(
      /^PAN must be 12-19 decimal digits$/,
    );
  });
});
