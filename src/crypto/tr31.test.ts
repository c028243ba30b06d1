// TR-31 / ANSI X9.143 key blocks against the published examples: TR-31:2018 A.7.2.2 (version B) and A.7.4
// (version D), and Thales payShield 10k blocks published with openemv/tr31 (a K0 KEK in B, a D0 AES-256 key in
// D). Unwrap, MAC failure (a wrong KBPK, a flipped bit), malformed blocks and the KBPK as a function; wrap
// reproduces the published blocks from their key and padding. TDES-CMAC against SP 800-38B's examples.
import { describe, expect, it } from "vitest";
import { aesCmac, keyCheckValue, tdesCmac, toHex } from "./index.js";
import { type KeyBlockProtectionKey, parseKeyBlockHeader, unwrapKeyBlock, wrapKeyBlock } from "./tr31.js";

const hex = (h: string) => Buffer.from(h, "hex");

/** A KBPK as the module sees it: its kind, size and a CMAC. Counts its calls, to show it is all that is used. */
function kbpkOf(keyHex: string, algorithm: "tdes" | "aes") {
  const key = hex(keyHex);
  const calls: Buffer[] = [];
  const kbpk: KeyBlockProtectionKey = {
    algorithm,
    length: key.length,
    cmac: (data) => {
      calls.push(Buffer.from(data));
      return algorithm === "tdes" ? tdesCmac(key, data) : aesCmac(key, data);
    },
  };
  return { kbpk, calls };
}

// TR-31:2018 A.7.2.2: a P0 TDES key, encrypt only, in a version B block under a double-length KBPK.
const B_EXAMPLE = {
  kbpk: "DD7515F2BFC17F85CE48F3CA25CB21F6",
  block: "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E",
  key: "3F419E1CB7079442AA37474C2EFBF8B8",
  kcv: "57C409",
};
// Thales payShield 10k (openemv/tr31 test1): a K0 key-encryption key, no restrictions, version B.
const B_THALES_K0 = {
  kbpk: "EFE0853B256B583D868F251CE99EA1D9",
  block: "B0080K0TN00N00001C414014375212C24995E405B5EE052CB92B67F455EA2680F6751088F9F1C228",
  key: "5DB50B454F8389ADCE573BE50861F2BF",
  kcv: "5C9405",
};
// TR-31:2018 A.7.4: a P0 AES-128 key in a version D block under an AES-256 KBPK (padding published).
const D_EXAMPLE = {
  kbpk: "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6",
  block:
    "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34",
  key: "3F419E1CB7079442AA37474C2EFBF8B8",
  pad: "1C2965473CE206BB855B01533782",
  kcv: "08793E",
};
// Thales payShield 10k (openemv/tr31 test8): a D0 AES-256 data key, version D.
const D_THALES_AES256 = {
  kbpk: "4141414141414141414141414141414141414141414141414141414141414141",
  block:
    "D0144D0AN00N0000127862F945C2DED04530FAF7CDBC8B0BA10C7AA79BD5E0C2C5D6AC173BF588E4B19ACF1357178D50EA0AB193228E13958304FC6149632DFDCADF3A5B3D57E814",
  key: "BE19E6A07A760F10EF8E83A226B63AAD141F463FDDD4F47DB244B4023EC3CACC",
  kcv: "0A00E3",
};

describe("TDES-CMAC (SP 800-38B, D.4 three-key TDEA)", () => {
  const key = hex("8AA83BF8CBDA10620BC1BF19FBB6CD58BC313D4A371CA8B5");
  it.each([
    ["", "B7A688E122FFAF95"],
    ["6BC1BEE22E409F96", "8E8F293136283797"],
    ["6BC1BEE22E409F96E93D7E117393172AAE2D8A57", "743DDBE0CE2DC2ED"],
  ])("message %s", (message, tag) => {
    expect(toHex(tdesCmac(key, hex(message)))).toBe(tag);
  });
});

describe("TR-31 unwrap: published blocks", () => {
  it.each([
    ["B, TR-31:2018 A.7.2.2", B_EXAMPLE, "tdes", { keyUsage: "P0", algorithm: "T", modeOfUse: "E" }],
    ["B, Thales K0", B_THALES_K0, "tdes", { keyUsage: "K0", algorithm: "T", modeOfUse: "N" }],
    ["D, TR-31:2018 A.7.4", D_EXAMPLE, "aes", { keyUsage: "P0", algorithm: "A", modeOfUse: "E" }],
    ["D, Thales D0 AES-256", D_THALES_AES256, "aes", { keyUsage: "D0", algorithm: "A", modeOfUse: "N" }],
  ] as const)("%s", (_name, example, algorithm, attributes) => {
    const { kbpk, calls } = kbpkOf(example.kbpk, algorithm);
    const { header, key } = unwrapKeyBlock(example.block, kbpk);
    expect(toHex(key)).toBe(example.key);
    expect(header).toMatchObject({ version: example.block[0], length: example.block.length, ...attributes });
    const keyAlgorithm = header.algorithm === "T" ? "tdes" : "aes";
    expect(keyCheckValue(key, keyAlgorithm, 3)).toBe(example.kcv);
    // The KBPK was asked for CMACs of 8-byte derivation data only: KBEK and KBAK, one per KBPK block.
    expect(calls.every((data) => data.length === 8)).toBe(true);
    const perKey = algorithm === "tdes" ? example.kbpk.length / 16 : Math.ceil(example.kbpk.length / 32);
    expect(calls).toHaveLength(2 * perKey);
  });

  it("a wrong KBPK fails the MAC, and no key comes out", () => {
    const { kbpk } = kbpkOf("EFE0853B256B583D868F251CE99EA1D9", "tdes");
    expect(() => unwrapKeyBlock(B_EXAMPLE.block, kbpk)).toThrow(/MAC does not verify/);
    const { kbpk: aes } = kbpkOf(D_THALES_AES256.kbpk, "aes");
    expect(() => unwrapKeyBlock(D_EXAMPLE.block, aes)).toThrow(/MAC does not verify/);
  });

  it.each([
    ["a bit of the encrypted key", 20],
    ["a bit of the MAC", B_EXAMPLE.block.length - 1],
    ["the header (mode of use E → D)", 8],
  ])("flipping %s fails the MAC", (_what, at) => {
    const chars = B_EXAMPLE.block.split("");
    chars[at] = at === 8 ? "D" : chars[at] === "0" ? "1" : "0";
    const { kbpk } = kbpkOf(B_EXAMPLE.kbpk, "tdes");
    expect(() => unwrapKeyBlock(chars.join(""), kbpk)).toThrow(/MAC does not verify/);
  });

  it("refuses a KBPK of the wrong kind for the version", () => {
    expect(() => unwrapKeyBlock(B_EXAMPLE.block, kbpkOf(D_EXAMPLE.kbpk, "aes").kbpk)).toThrow(
      /version B key block needs a TDES/,
    );
    expect(() => unwrapKeyBlock(D_EXAMPLE.block, kbpkOf(B_EXAMPLE.kbpk, "tdes").kbpk)).toThrow(
      /version D key block needs a AES|version D key block needs an? AES/,
    );
  });

  it.each([
    [
      "A0072P0TE00E0000F5161ED902807AF26F1D62263644BD24192FDB3193C730301CEE8701",
      /version ID .*only B .* and D/,
    ],
    [B_EXAMPLE.block.slice(0, -2), /length field says 80 characters, the block has 78/],
    ["B0016P0TE00E0000", /whole 8-byte blocks/],
    [`${B_EXAMPLE.block.slice(0, 16)}${"Z".repeat(64)}`, /must be hex/],
    ["B00", /shorter than its 16-character header/],
  ])("refuses a malformed block %#", (block, message) => {
    const { kbpk } = kbpkOf(B_EXAMPLE.kbpk, "tdes");
    expect(() => unwrapKeyBlock(block, kbpk)).toThrow(message);
  });

  it("never puts key material in an error", () => {
    const { kbpk } = kbpkOf(B_THALES_K0.kbpk, "tdes");
    try {
      unwrapKeyBlock(B_EXAMPLE.block, kbpk);
      expect.unreachable();
    } catch (error) {
      const message = (error as Error).message.toUpperCase();
      for (const secret of [B_EXAMPLE.key, B_THALES_K0.kbpk, B_EXAMPLE.block.slice(16)]) {
        expect(message).not.toContain(secret.slice(0, 8));
      }
    }
  });
});

describe("TR-31 header", () => {
  it("reads optional blocks (TR-31:2018 A.7.3.2: a KS block in a version B header)", () => {
    const header = parseKeyBlockHeader(
      "B0104B0TX12S0100KS1800604B120F9292800000BB68BE8680A400D9191AD4ECE45B6E6C0D21C4738A52190E248719E24B433627",
    );
    expect(header).toMatchObject({
      keyUsage: "B0",
      modeOfUse: "X",
      keyVersionNumber: "12",
      exportability: "S",
      optionalBlocks: [{ id: "KS", data: "00604B120F9292800000" }],
    });
    expect(header.text).toBe("B0104B0TX12S0100KS1800604B120F9292800000");
  });
});

describe("TR-31 wrap", () => {
  it("reproduces TR-31:2018 A.7.4 from its key and published padding", () => {
    const { kbpk } = kbpkOf(D_EXAMPLE.kbpk, "aes");
    expect(wrapKeyBlock("D0000P0AE00E0000", hex(D_EXAMPLE.key), kbpk, hex(D_EXAMPLE.pad))).toBe(
      D_EXAMPLE.block,
    );
  });

  it("round-trips B and D blocks with random padding", () => {
    for (const [kbpkHex, algorithm, header] of [
      ["0123456789ABCDEFFEDCBA9876543210", "tdes", "B0000C0TC00N0000"],
      ["0123456789ABCDEFFEDCBA98765432100123456789ABCDEF", "tdes", "B0000V2TC00N0000"],
      [D_EXAMPLE.kbpk, "aes", "D0000C0TC00N0000"],
      ["00112233445566778899AABBCCDDEEFF", "aes", "D0000P0AD00N0000"],
    ] as const) {
      const { kbpk } = kbpkOf(kbpkHex, algorithm);
      const key = hex("0123456789ABCDEFFEDCBA9876543210");
      const block = wrapKeyBlock(header, key, kbpk);
      expect(block.slice(5, 16)).toBe(header.slice(5));
      expect(toHex(unwrapKeyBlock(block, kbpk).key)).toBe(toHex(key));
    }
  });
});
