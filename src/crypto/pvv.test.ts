// Visa PVV beyond the vectors: TSP layout, second decimalisation pass, short PANs, input rejection.
import { createCipheriv } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CryptoInputError, computePvv, createPvvGenerator, pvvTsp } from "./index.js";

const pvk = Buffer.from("0123456789ABCDEFFEDCBA9876543210", "hex");

/** Independent PVV: raw OpenSSL 3DES and regex decimalisation. */
function referencePvv(key: Buffer, tsp: string) {
  const cipher = createCipheriv("des-ede3-ecb", Buffer.concat([key, key.subarray(0, 8)]), null);
  const hex = cipher.setAutoPadding(false).update(Buffer.from(tsp, "hex")).toString("hex").toUpperCase();
  const first = hex.replace(/[A-F]/g, "");
  const second = [...hex.replace(/[0-9]/g, "")].map((c) => String(c.charCodeAt(0) - 65)).join("");
  return { hex, pvv: (first + second).slice(0, 4), firstPassDigits: first.length };
}

describe("PVV", () => {
  it("builds the TSP from the 11 PAN digits left of the check digit", () => {
    expect(pvvTsp({ pan: "4000001234567899", pvki: 1, pin: "123456" })).toBe("0012345678911234");
    expect(pvvTsp({ pan: "123456789012", pvki: "3", pin: "9876" })).toBe("1234567890139876");
  });

  it("uses the second decimalisation pass when the first yields fewer than 4 digits", () => {
    // Found by search: TSP 0000000000010943 enciphers to 04FCFBCFACECF2DC (three decimal nibbles).
    const ref = referencePvv(pvk, "0000000000010943");
    expect(ref.hex).toBe("04FCFBCFACECF2DC");
    expect(ref.firstPassDigits).toBe(3);
    expect(ref.pvv).toBe("0425");
    expect(computePvv({ pvk, pvki: "1", pan: "4000000000000002", pin: "0943" })).toBe("0425");
    for (const pin of ["1755", "2687"]) {
      const r = referencePvv(pvk, `00000000000${1}${pin}`);
      expect(r.firstPassDigits).toBeLessThan(4);
      expect(computePvv({ pvk, pvki: 1, pan: "4000000000000002", pin })).toBe(r.pvv);
    }
  });

  it("only the first four PIN digits count, for PINs of 4-12 digits", () => {
    const generate = createPvvGenerator(pvk);
    const base = generate({ pvki: 1, pan: "4000001234567899", pin: "1234" });
    for (let length = 5; length <= 12; length++) {
      const pin = "1234567890123".slice(0, length);
      expect(generate({ pvki: 1, pan: "4000001234567899", pin })).toBe(base);
    }
  });

  it("a generator reused across many inputs gives the one-off answer every time (its TSP block is reused)", () => {
    const generate = createPvvGenerator(pvk);
    const other = createPvvGenerator(Buffer.from("FEDCBA98765432100123456789ABCDEF", "hex"));
    for (let i = 0; i < 200; i++) {
      const input = {
        pvki: i % 10,
        pan: `4${String(10_000_000_000_000 + i * 7919).padStart(14, "0")}9`,
        pin: String(1000 + i * 37)
          .slice(-4)
          .padStart(4, "0"),
      };
      const expected = referencePvv(pvk, pvvTsp(input)).pvv;
      expect(generate(input)).toBe(expected);
      expect(computePvv({ pvk, ...input })).toBe(expected);
      // A generator for another key in between does not disturb this one.
      other(input);
      // A rejected input in between leaves the reused block usable.
      expect(() => generate({ ...input, pin: "12a4" })).toThrow(CryptoInputError);
    }
  });

  it("handles 12-digit PANs", () => {
    const pan = "400000123456";
    expect(computePvv({ pvk, pvki: 2, pan, pin: "4321" })).toBe(referencePvv(pvk, "4000001234524321").pvv);
  });

  it.each([
    ["short PAN", { pan: "40000012345" }],
    ["non-digit PAN", { pan: "400000123456789X" }],
    ["short PIN", { pin: "123" }],
    ["long PIN", { pin: "1234567890123" }],
    ["PVKI 10", { pvki: 10 }],
    ["PVKI letter", { pvki: "A" }],
    ["triple-length key", { pvk: Buffer.alloc(24) }],
  ])("rejects %s", (_name, change) => {
    const input = { pvk, pvki: "1", pan: "4000001234567899", pin: "1234", ...change };
    expect(() => computePvv(input)).toThrow(CryptoInputError);
  });
});
