// cardvault crypto: every subcommand against the vectors, help/usage, and bad input (exit 2, one stderr line, no secrets).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main } from "./commands.js";
import type { CliIo } from "./io.js";

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

const v: VectorFile = JSON.parse(
  readFileSync(new URL("../../test/vectors/card-crypto.json", import.meta.url), "utf8"),
);

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (t) => out.push(t), stderr: (t) => err.push(t) };
  const code = await main(["crypto", ...args], io);
  return { code, stdout: out.join(""), stderr: err.join("") };
}

const KEY = "0123456789ABCDEFFEDCBA9876543210";

describe("crypto CLI: results", () => {
  it.each(v.cvv)("cvv $pan -> $cvv", async (c) => {
    const r = await run(
      "cvv",
      "--cvk",
      c.cvk,
      "--pan",
      c.pan,
      "--expiry",
      c.expiry,
      "--service-code",
      c.service_code,
    );
    expect(r).toEqual({ code: 0, stdout: `${c.cvv}\n`, stderr: "" });
  });

  it.each(v.pvv)("pvv $pan -> $pvv", async (c) => {
    const r = await run("pvv", "--pvk", c.pvk, "--pvki", c.pvki, "--pan", c.pan, "--pin", c.pin);
    expect(r).toEqual({ code: 0, stdout: `${c.pvv}\n`, stderr: "" });
  });

  it.each(v.ibm3624)("ibm3624-offset pin $pin -> $offset", async (c) => {
    const r = await run(
      "ibm3624-offset",
      "--pvk",
      c.pvk,
      "--decimalization-table",
      c.decimalization_table,
      "--validation-data",
      c.validation_data,
      "--pad",
      c.pad,
      "--pin",
      c.pin,
    );
    expect(r).toEqual({ code: 0, stdout: `${c.offset}\n`, stderr: "" });
  });

  it("ibm3624-offset honours --check-length", async () => {
    const c = v.ibm3624[2];
    const base = ["--pvk", c.pvk, "--decimalization-table", c.decimalization_table, "--validation-data"];
    const r = await run(
      "ibm3624-offset",
      ...base,
      c.validation_data,
      "--pad",
      "F",
      "--pin",
      "123456",
      "--check-length",
      "4",
    );
    expect(r).toEqual({ code: 0, stdout: "7710\n", stderr: "" });
  });

  it.each(v.kcv)("kcv $method -> $kcv", async (c) => {
    const algorithm = c.method === "aes_cmac_zero" ? "aes" : "tdes";
    const r = await run("kcv", "--key", c.key, "--algorithm", algorithm, "--length", String(c.bytes));
    expect(r).toEqual({ code: 0, stdout: `${c.kcv}\n`, stderr: "" });
  });

  it("kcv defaults to 3 bytes", async () => {
    expect((await run("kcv", "--key", KEY, "--algorithm", "tdes")).stdout).toBe("08D7B4\n");
  });

  it.each(v.dcvv)("dcvv $mk_derivation -> $dcvv", async (c) => {
    const option = c.mk_derivation.endsWith("B") ? ["--option", "B"] : [];
    const r = await run(
      "dcvv",
      "--imk",
      c.imk_ac,
      "--pan",
      c.pan,
      "--psn",
      c.psn,
      "--expiry",
      c.expiry,
      "--service-code",
      c.service_code,
      "--atc",
      c.atc,
      ...option,
    );
    expect(r).toEqual({ code: 0, stdout: `${c.dcvv}\n`, stderr: "" });
  });

  it.each([...v.pinblock_iso0, ...v.pinblock_iso1, ...v.pinblock_iso2, ...v.pinblock_iso3])(
    "pin-block decode format $format $pin_block",
    async (c) => {
      const pan = c.pan ? ["--pan", c.pan] : [];
      const r = await run(
        "pin-block",
        "decode",
        "--format",
        String(c.format),
        "--block",
        c.pin_block,
        ...pan,
      );
      expect(r).toEqual({ code: 0, stdout: `${c.pin}\n`, stderr: "" });
    },
  );

  it.each([...v.pinblock_iso0, ...v.pinblock_iso2])(
    "pin-block encode format $format -> $pin_block",
    async (c) => {
      const pan = c.pan ? ["--pan", c.pan] : [];
      const r = await run("pin-block", "encode", "--format", String(c.format), "--pin", c.pin, ...pan);
      expect(r).toEqual({ code: 0, stdout: `${c.pin_block}\n`, stderr: "" });
    },
  );

  it.each(v.pinblock_iso0_encrypted)("pin-block enciphered format 0", async (c) => {
    const enc = await run(
      "pin-block",
      "encode",
      "--format",
      "0",
      "--pin",
      c.pin,
      "--pan",
      c.pan,
      "--key",
      c.key,
    );
    expect(enc).toEqual({ code: 0, stdout: `${c.encrypted_pin_block}\n`, stderr: "" });
    const dec = await run(
      "pin-block",
      "decode",
      "--format",
      "0",
      "--block",
      c.encrypted_pin_block,
      "--pan",
      c.pan,
      "--key",
      c.key,
    );
    expect(dec).toEqual({ code: 0, stdout: `${c.pin}\n`, stderr: "" });
  });

  it.each(v.pinblock_iso4)("pin-block format 4 deciphers $enciphered_pin_block", async (c) => {
    const args = ["--format", "4", "--block", c.enciphered_pin_block, "--pan", c.pan, "--key", c.aes_key];
    expect(await run("pin-block", "decode", ...args)).toEqual({ code: 0, stdout: `${c.pin}\n`, stderr: "" });
    const clear = await run("pin-block", "decode", "--format", "4", "--block", c.pin_field);
    expect(clear).toEqual({ code: 0, stdout: `${c.pin}\n`, stderr: "" });
  });

  it("format 4 encode round-trips through decode", async () => {
    const aes = "00112233445566778899AABBCCDDEEFF";
    const enc = await run(
      "pin-block",
      "encode",
      "--format",
      "4",
      "--pin",
      "123456",
      "--pan",
      "4111111111111111",
      "--key",
      aes,
    );
    expect(enc.stdout).toMatch(/^[0-9A-F]{32}\n$/);
    const dec = await run(
      "pin-block",
      "decode",
      "--format",
      "4",
      "--block",
      enc.stdout.trim(),
      "--pan",
      "4111111111111111",
      "--key",
      aes,
    );
    expect(dec.stdout).toBe("123456\n");
    const field = await run("pin-block", "encode", "--format", "4", "--pin", "1234");
    expect(field.stdout).toMatch(/^441234A{10}[0-9A-F]{16}\n$/);
  });
});

describe("crypto CLI: help and usage", () => {
  it("--help prints usage on stdout with exit 0", async () => {
    for (const args of [["--help"], ["-h"], ["cvv", "--help"], ["pin-block", "--help"]]) {
      const r = await run(...args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("usage: cardvault crypto");
      expect(r.stderr).toBe("");
    }
  });

  it("no subcommand prints usage on stderr with exit 2", async () => {
    const r = await run();
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("usage: cardvault crypto");
  });

  it("unknown commands and pin-block without a mode exit 2", async () => {
    expect((await run("cvc3")).code).toBe(2);
    expect((await run("pin-block")).code).toBe(2);
    expect((await run("pin-block", "translate")).code).toBe(2);
  });
});

describe("crypto CLI: bad input", () => {
  const SECRET_PIN = "98765";
  const cases: [string, string[], RegExp][] = [
    [
      "missing option",
      ["cvv", "--cvk", KEY, "--pan", "4123456789012345", "--expiry", "8701"],
      /missing --service-code/,
    ],
    [
      "short key",
      [
        "cvv",
        "--cvk",
        "0123456789ABCDEF",
        "--pan",
        "4123456789012",
        "--expiry",
        "8701",
        "--service-code",
        "101",
      ],
      /CVK must be 16 bytes/,
    ],
    ["non-hex key", ["kcv", "--key", `${KEY.slice(0, 31)}Z`, "--algorithm", "aes"], /hex digits/],
    ["bad algorithm", ["kcv", "--key", KEY, "--algorithm", "des"], /tdes or aes/],
    ["bad length", ["kcv", "--key", KEY, "--algorithm", "tdes", "--length", "abc"], /whole number/],
    [
      "bad PAN",
      ["cvv", "--cvk", KEY, "--pan", "41234", "--expiry", "8701", "--service-code", "101"],
      /PAN must be/,
    ],
    [
      "bad PIN",
      ["pvv", "--pvk", KEY, "--pvki", "1", "--pan", "4123456789012345", "--pin", "12x4"],
      /PIN must be/,
    ],
    [
      "bad PVKI",
      ["pvv", "--pvk", KEY, "--pvki", "12", "--pan", "4123456789012345", "--pin", SECRET_PIN],
      /PVKI/,
    ],
    ["unknown option", ["cvv", "--cvk", KEY, "--cvc", "1"], /unknown option --cvc/],
    ["missing value", ["cvv", "--cvk"], /option --cvk needs a value/],
    ["stray positional", ["pvv", "--pin", "1234", SECRET_PIN], /unexpected argument/],
    ["bad format", ["pin-block", "decode", "--format", "5", "--block", "241234FFFFFFFFFF"], /--format/],
    [
      "malformed block",
      ["pin-block", "decode", "--format", "2", "--block", "24123AFFFFFFFFFF"],
      /non-decimal/,
    ],
    ["format 0 without PAN", ["pin-block", "encode", "--format", "0", "--pin", SECRET_PIN], /needs the PAN/],
    [
      "format 4 key without PAN",
      ["pin-block", "encode", "--format", "4", "--pin", SECRET_PIN, "--key", KEY],
      /needs --pan/,
    ],
    [
      "wrong AES key size",
      [
        "pin-block",
        "decode",
        "--format",
        "4",
        "--block",
        "00".repeat(16),
        "--pan",
        "4111111111111111",
        "--key",
        "00".repeat(20),
      ],
      /AES PIN key/,
    ],
    [
      "bad dCVV option",
      [
        "dcvv",
        "--imk",
        KEY,
        "--pan",
        "4123456789012345",
        "--psn",
        "00",
        "--expiry",
        "2812",
        "--service-code",
        "101",
        "--atc",
        "0001",
        "--option",
        "C",
      ],
      /--option must be A or B/,
    ],
    [
      "bad ATC",
      [
        "dcvv",
        "--imk",
        KEY,
        "--pan",
        "4123456789012345",
        "--psn",
        "00",
        "--expiry",
        "2812",
        "--service-code",
        "101",
        "--atc",
        "001",
      ],
      /ATC/,
    ],
  ];

  it.each(cases)("%s: one line on stderr, exit 2, no secrets echoed", async (_name, args, message) => {
    const r = await run(...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toContain(SECRET_PIN);
    expect(r.stderr).not.toContain(KEY.slice(0, 12));
    expect(r.stderr).not.toContain("4123456789");
  });
});
