// The PKCS#11 provider on SoftHSM2: the provider contract over keys imported into a fresh token (every published
// vector that names a key goes through the token with that key imported), then what only a token shows: the
// attributes of every object the service creates read back (sensitive, never extractable; generated keys never
// were), key metadata that survives a restart, and no key material in what it lists, logs or throws.
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createSoftHsmToken,
  initTestTokenKeys,
  softhsmAvailable,
} from "../../test/helpers/softhsm.js";
import { testRsaKeyGenerator } from "../../test/helpers/test-rsa-keys.js";
import { fixedClock } from "../lib/clock.js";
import { describeKeyProviderContract } from "./key-provider.contract.js";
import { keyTypes } from "./key-provider.js";
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
      for (const k of keys) importSecretKey(token, { ...k, material: Buffer.from(k.material) }, clock);
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
