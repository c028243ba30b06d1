// The PKCS#11 provider on SoftHSM2: the provider contract over keys imported into a fresh token (every published
// vector that names a key goes through the token with that key imported), then what only a token shows: the
// attributes of every object the service creates read back (sensitive, never extractable; generated keys never
// were), key metadata that survives a restart, and no key material in what it lists, logs or throws.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compactVerify, importJWK } from "jose";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSoftHsmToken, initTestTokenKeys, softhsmAvailable } from "../../test/helpers/softhsm.js";
import { testRsaKeyGenerator } from "../../test/helpers/test-rsa-keys.js";
import { main } from "../cli/commands.js";
import { adjustDesParity } from "../crypto/des.js";
import { keyCheckValue } from "../crypto/kcv.js";
import { fixedClock } from "../lib/clock.js";
import { describeKeyProviderContract } from "./key-provider.contract.js";
import { generatedKeyTypes } from "./key-provider.js";
import { createPkcs11KeyProvider } from "./pkcs11-provider.js";
import { generateKey, importSecretKey, initTokenKeys, openToken, type Token } from "./pkcs11-token.js";

const clock = fixedClock("2026-11-28T10:00:00Z");
const T = pkcs11js;
const available = softhsmAvailable();

describe.skipIf(!available)("PKCS#11 provider on SoftHSM2", () => {
  const opened: Token[] = [];
  const open = (settings = createSoftHsmToken()) => {
    const token = openToken(settings);
    opened.push(token);
    return token;
  };
  afterAll(() => {
    for (const t of opened) t.close();
  });

  describeKeyProviderContract("pkcs11 (SoftHSM2)", {
    provider: async (keys) => {
      const token = open();
      // As `keys init` would have made them: generated (so the last of each type is active), imported here.
      for (const k of keys)
        importSecretKey(token, { ...k, material: Buffer.from(k.material), origin: "generated" }, clock);
      return createPkcs11KeyProvider(token);
    },
    fresh: async () => {
      const token = open();
      await initTestTokenKeys(token, clock);
      return createPkcs11KeyProvider(token);
    },
    rsaKey: (bits) => testRsaKeyGenerator(bits),
  });
});

describe.skipIf(!available)("PKCS#11 token objects", () => {
  const settings = available ? createSoftHsmToken("attrs") : undefined!;
  let token: Token;
  beforeAll(async () => {
    token = openToken(settings);
    await initTokenKeysQuick(token);
    // An imported key beside the generated ones (a ceremony's path).
    importSecretKey(
      token,
      { id: "cvk-imported", type: "cvk", material: Buffer.alloc(16, 0x23), origin: "components" },
      clock,
    );
  });
  afterAll(() => token?.close());

  /**
   * What initTokenKeys does, the signing pair generated in the token too (C_GenerateKeyPair, as checked here);
   * the RSA-4096 wrap pair, the same code path at ten seconds of SoftHSM keygen, imported from the test cache.
   */
  async function initTokenKeysQuick(t: Token) {
    for (const type of generatedKeyTypes) {
      if (type !== "secure-data-wrap") await generateKey(t, type, clock);
      else
        importSecretKey(
          t,
          {
            id: "wrap-imported",
            type,
            material: Buffer.from(testRsaKeyGenerator(4096)),
            origin: "generated",
          },
          clock,
        );
    }
  }

  function objects(cls: number) {
    const { pkcs11, session } = token;
    pkcs11.C_FindObjectsInit(session, [{ type: T.CKA_CLASS, value: cls }]);
    const found = pkcs11.C_FindObjects(session, 1000);
    pkcs11.C_FindObjectsFinal(session);
    return found.map((h) => {
      const [label, sensitive, extractable, never, always, keyType] = pkcs11.C_GetAttributeValue(session, h, [
        { type: T.CKA_LABEL },
        { type: T.CKA_SENSITIVE },
        { type: T.CKA_EXTRACTABLE },
        { type: T.CKA_NEVER_EXTRACTABLE },
        { type: T.CKA_ALWAYS_SENSITIVE },
        { type: T.CKA_KEY_TYPE },
      ]);
      const flag = (a: typeof label) => a!.value![0] === 1;
      return {
        handle: h,
        // RSA: the private exponent; secret keys and Ed25519 (CKK_EC_EDWARDS, the seed): CKA_VALUE.
        secretAttribute: keyType!.value!.readUInt32LE(0) === T.CKK_RSA ? T.CKA_PRIVATE_EXPONENT : T.CKA_VALUE,
        label: label!.value!.toString(),
        sensitive: flag(sensitive),
        extractable: flag(extractable),
        neverExtractable: flag(never),
        alwaysSensitive: flag(always),
      };
    });
  }

  it("every key object is sensitive and not extractable; generated ones never were; values cannot be read", {
    timeout: 60_000,
  }, () => {
    const keys = [...objects(T.CKO_SECRET_KEY), ...objects(T.CKO_PRIVATE_KEY)];
    const listed = token.readKeys();
    // One object per key, and the CVKs' A||A halves.
    expect(keys.length).toBe(listed.length + listed.filter((k) => k.type === "cvk").length);
    for (const k of keys) {
      expect(k, k.label).toMatchObject({ sensitive: true, extractable: false });
      const info = listed.find((i) => i.id === k.label || `${i.id}/a` === k.label)!;
      // Generated in the token (C_GenerateKey / C_GenerateKeyPair): never extractable, always sensitive. A CVK
      // is created from the token's RNG (single DES is not available, see pkcs11-token.ts) and imported keys
      // came from outside: PKCS#11 says they were not "never extractable", which is true.
      // (wrap-imported stands in for a generated pair, see initTokenKeysQuick: it was created, not generated.)
      if (info.origin === "generated" && info.type !== "cvk" && k.label !== "wrap-imported") {
        expect(k, k.label).toMatchObject({ neverExtractable: true, alwaysSensitive: true });
      }
      expect(() =>
        token.pkcs11.C_GetAttributeValue(token.session, k.handle, [{ type: k.secretAttribute }]),
      ).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
    }
    // The public halves of generated pairs are not kept: the private object carries modulus and exponent.
    expect(objects(T.CKO_PUBLIC_KEY)).toEqual([]);
  });

  it("key metadata lives in the token: a restart sees the same keys, check values and active versions", async () => {
    const before = createPkcs11KeyProvider(token).listKeys();
    const again = openToken(settings);
    try {
      const after = createPkcs11KeyProvider(again).listKeys();
      expect(after).toEqual(before);
      expect(
        before
          .filter((k) => k.active)
          .map((k) => k.type)
          .sort(),
      ).toEqual([...generatedKeyTypes].sort());
      // An imported key takes the next version but is never active: cards that name no CVK keep cvk-v1.
      expect(before.find((k) => k.id === "cvk-imported")).toMatchObject({
        active: false,
        version: 2,
        origin: "components",
      });
      expect(before.find((k) => k.type === "cvk" && k.active)?.id).toBe("cvk-v1");
    } finally {
      again.close();
    }
  });

  it("keys init on a token adds only the types it lacks", async () => {
    expect(await initTokenKeys(token, clock)).toEqual([]);
  });

  it("a ceremony's key is an object of its usages only; a refused one leaves no object behind", async () => {
    const p = createPkcs11KeyProvider(token, { clock });
    const secretKeys = () => objects(T.CKO_SECRET_KEY).map((o) => o.label);
    const before = secretKeys();
    const cvk = Buffer.from("0123456789ABCDEFFEDCBA9876543210", "hex");
    await expect(
      p.importKey({ type: "cvk", material: cvk, origin: "components", kcv: "000000" }),
    ).rejects.toThrow(/check value/);
    expect(secretKeys()).toEqual(before);

    const zpk = await p.importKey({ type: "zpk", material: Buffer.alloc(32, 0x5a), origin: "components" });
    const kbpk = await p.importKey({ type: "kbpk", material: Buffer.alloc(16, 0x3d), origin: "components" });
    expect([zpk, kbpk]).toMatchObject([
      { type: "zpk", algorithm: "aes-256", origin: "components", active: false },
      { type: "kbpk", algorithm: "tdes-2key", origin: "components", active: false },
    ]);
    const usages = (label: string) => {
      const handle = objects(T.CKO_SECRET_KEY).find((o) => o.label === label)!.handle;
      const [decrypt, sign, sensitive, extractable] = token.pkcs11.C_GetAttributeValue(
        token.session,
        handle,
        [
          { type: T.CKA_DECRYPT },
          { type: T.CKA_SIGN },
          { type: T.CKA_SENSITIVE },
          { type: T.CKA_EXTRACTABLE },
        ],
      );
      const flag = (a: typeof decrypt) => a!.value![0] === 1;
      return {
        decrypt: flag(decrypt),
        sign: flag(sign),
        sensitive: flag(sensitive),
        extractable: flag(extractable),
      };
    };
    // A zone PIN key deciphers PIN blocks (and CMACs its AES check value); a KBPK computes TR-31 CMACs only.
    expect(usages(zpk.id)).toEqual({ decrypt: true, sign: true, sensitive: true, extractable: false });
    expect(usages(kbpk.id)).toEqual({ decrypt: false, sign: true, sensitive: true, extractable: false });
  });

  it("a wrong PIN or an unknown token is a clear error that names neither the PIN nor any key", () => {
    // A token no session of this process is logged in to (a login is the whole application's).
    const other = createSoftHsmToken("pin");
    expect(() => openToken({ ...other, pin: "999999" })).toThrow(/CKR_PIN_INCORRECT/);
    try {
      openToken({ ...other, pin: "999999" });
    } catch (error) {
      expect((error as Error).message).not.toContain("999999");
    }
    expect(() => openToken({ ...settings, label: "no-such-token" })).toThrow(/No token labelled/);
  });
});

describe.skipIf(!available)("cardvault keys on a PKCS#11 token", () => {
  it("keys init generates every key type inside the token; keys list shows ids, check values and origin, never a key; keys import brings a key in, never active", {
    timeout: 180_000,
  }, async () => {
    const settings = createSoftHsmToken("cli");
    const env = {
      CARDVAULT_KEY_PROVIDER: "pkcs11",
      CARDVAULT_PKCS11_MODULE: settings.module,
      CARDVAULT_PKCS11_TOKEN: settings.label,
      CARDVAULT_PKCS11_PIN: settings.pin,
    };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t) };
    try {
      const { keysCommand } = await import("../cli/keys.js");
      expect(await keysCommand("init", { "batch-size": "500", "grace-ms": "0" }, io)).toBe(0);
      expect(out.join("\n")).toMatch(
        /^created cvk-v1, pvk-v1, .*secure-data-sign-v1, access-token-sign-v1 in the token/,
      );
      out.length = 0;
      expect(await keysCommand("list", {}, io)).toBe(0);
      expect(out).toHaveLength(generatedKeyTypes.length);
      for (const line of out)
        expect(line).toMatch(/^[a-z-]+-v1\t[a-z-]+\tv1\t\S+\torigin=generated\tkcv=[0-9A-F]{6}\tactive\t/);
      // The service starts on it (runtime.ts openKeys) and computes with what it generated.
      const token = openToken(settings);
      try {
        const p = createPkcs11KeyProvider(token);
        const binding = { tenantId: "t", cardId: "c" };
        const issued = await p.issuePan({ bin: "400000", length: 16, binding });
        const card = {
          ...binding,
          panSealed: issued.panSealed,
          expiry: "3001",
          cvkId: "cvk-v1",
          serviceCode: "000",
        };
        expect(await p.verifyCvv(card, await p.deriveCvv(card))).toBe(true);
        // The Ed25519 key generated in the token (CKM_EC_EDWARDS_KEY_PAIR_GEN) signs (CKM_EDDSA) what its
        // published public half verifies.
        const [published] = p.accessTokenPublicKeys();
        const jwt = await p.signAccessToken({ sub: "client-1", scope: "cards:read" });
        const { payload, protectedHeader } = await compactVerify(
          jwt,
          await importJWK(published!.jwk, "EdDSA"),
        );
        expect(protectedHeader).toEqual({ alg: "EdDSA", typ: "at+jwt", kid: "access-token-sign-v1" });
        expect(JSON.parse(new TextDecoder().decode(payload))).toEqual({
          sub: "client-1",
          scope: "cards:read",
        });
      } finally {
        token.close();
      }
      // A key ceremony into the token through the CLI (a published CVK by two components), checked with
      // `crypto cvv --key-id` inside the token; listed as imported, never active; zpk/kbpk cannot be rotated.
      const dataDir = mkdtempSync(join(tmpdir(), "cardvault-pkcs11-cli-"));
      try {
        const cli = async (...args: string[]) => {
          out.length = 0;
          return main([...args, "--data-dir", dataDir], io);
        };
        const cvk = Buffer.from("0123456789ABCDEFFEDCBA9876543210", "hex");
        const first = adjustDesParity(randomBytes(16));
        const second = adjustDesParity(cvk.map((b, i) => b ^ first[i]!));
        const hexOf = (b: Uint8Array) => Buffer.from(b).toString("hex");
        const imported = await cli(
          "keys",
          "import",
          "--operator",
          "alice",
          "--type",
          "cvk",
          "--component",
          hexOf(first),
          "--component",
          hexOf(second),
          "--kcv",
          keyCheckValue(cvk, "tdes", 3),
        );
        expect(imported, out.join("\n")).toBe(0);
        // Visa's CVV test vector (test/vectors/card-crypto.json, cvv[0]).
        expect(
          await cli(
            "crypto",
            "cvv",
            "--key-id",
            "cvk-v2",
            "--pan",
            "4123456789012",
            "--expiry",
            "8701",
            "--service-code",
            "101",
          ),
        ).toBe(0);
        expect(out.join("").trim()).toBe("370");
        expect(await cli("keys", "list")).toBe(0);
        expect(out.find((l) => l.startsWith("cvk-v2\t"))).toMatch(
          /\torigin=components\tkcv=08D7B4\timported \(used by id\)\t/,
        );
        expect(await cli("keys", "rotate", "--type", "zpk")).not.toBe(0);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});
