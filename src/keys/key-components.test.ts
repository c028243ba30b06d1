// The component ceremony through a real local provider over a keystore file: components split from the
// published CVK and PVK of test/vectors/card-crypto.json (2 and 3 of them), each component's check value told
// before combining, the combined key checked against --kcv, and the imported key computing the published
// CVV/PVV. Refusals (wrong check value, parity, lengths, a single component in production) store nothing.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testRsaKeyGenerator } from "../../test/helpers/test-rsa-keys.js";
import { adjustDesParity } from "../crypto/des.js";
import { keyCheckValue } from "../crypto/kcv.js";
import { AppError } from "../domain/errors.js";
import { fixedClock } from "../lib/clock.js";
import { importByComponents } from "./key-components.js";
import type { KeyProvider } from "./key-provider.js";
import { addImportedKey, initKeystore, loadKeystore } from "./keystore-file.js";
import { createLocalKeyProvider } from "./local-keystore.js";

const VECTORS = JSON.parse(
  readFileSync(new URL("../../test/vectors/card-crypto.json", import.meta.url), "utf8"),
) as {
  cvv: { cvk: string; pan: string; expiry: string; service_code: string; cvv: string }[];
  pvv: { pvk: string; pvki: string; pin: string; pan: string; pvv: string }[];
};

const clock = fixedClock("2026-12-01T10:00:00Z");
const master = Buffer.alloc(32, 9);
let provider: KeyProvider;

beforeAll(() => {
  const file = join(mkdtempSync(join(tmpdir(), "cardvault-components-")), "keystore.json");
  initKeystore(file, master, clock, { generateRsaKey: testRsaKeyGenerator });
  provider = createLocalKeyProvider(loadKeystore(file, master), undefined, {
    importer: (entry) => addImportedKey(file, master, entry, clock),
  });
});
afterAll(() => provider.close());

const hex = (h: string) => Buffer.from(h, "hex");
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((x, i) => x ^ b[i]!));

/** `count` odd-parity components whose XOR is `key` (up to parity bits, which DES ignores). */
function split(keyHex: string, count: number): Buffer[] {
  const key = hex(keyHex);
  const parts = Array.from({ length: count - 1 }, () => adjustDesParity(randomBytes(key.length)));
  const last = adjustDesParity(parts.reduce(xor, key));
  return [...parts, last];
}

async function ceremony(request: Partial<Parameters<typeof importByComponents>[1]>) {
  const told: string[] = [];
  const before = provider.listKeys().length;
  const result = await importByComponents(
    provider,
    { type: "cvk", components: [], kcv: "", production: true, ...request },
    (position, kcv) => told.push(`${position}:${kcv}`),
  ).then(
    (key) => ({ key, error: undefined }),
    (error: unknown) => ({ key: undefined, error: error as AppError }),
  );
  if (result.error) expect(provider.listKeys()).toHaveLength(before);
  return { ...result, told };
}

describe("key import by components", () => {
  const cvk = VECTORS.cvv[0]!;
  const pvv = VECTORS.pvv.find((v) => v.pvki === "1")!;

  it("two components: each check value told, the CVK imported, and the published CVVs come out", async () => {
    const components = split(cvk.cvk, 2);
    const expected = components.map((c) => `${keyCheckValue(c, "tdes", 3)}`);
    const { key, told } = await ceremony({ components, kcv: keyCheckValue(hex(cvk.cvk), "tdes", 3) });
    expect(told).toEqual(expected.map((k, i) => `${i + 1}:${k}`));
    expect(key).toMatchObject({ type: "cvk", origin: "components", active: false, kcv: "08D7B4" });
    // The components were wiped once used.
    expect(components.every((c) => c.every((b) => b === 0))).toBe(true);
    for (const v of VECTORS.cvv.filter((x) => x.cvk === cvk.cvk)) {
      expect(
        await provider.computeCvv({
          keyId: key!.id,
          pan: v.pan,
          expiry: v.expiry,
          serviceCode: v.service_code,
        }),
      ).toBe(v.cvv);
    }
  });

  it("three components make the PVK of the published PVV", async () => {
    const { key, told } = await ceremony({
      type: "pvk",
      components: split(pvv.pvk, 3),
      kcv: keyCheckValue(hex(pvv.pvk), "tdes", 3).slice(0, 4),
    });
    expect(told).toHaveLength(3);
    expect(key).toMatchObject({ type: "pvk", origin: "components" });
    expect(await provider.computePvv({ keyId: key!.id, pvki: pvv.pvki, pan: pvv.pan, pin: pvv.pin })).toBe(
      pvv.pvv,
    );
  });

  it("refuses a combined key whose check value is not --kcv, after telling each component's", async () => {
    const { error, told } = await ceremony({ components: split(cvk.cvk, 2), kcv: "123456" });
    expect(error).toBeInstanceOf(AppError);
    expect(error!.message).toMatch(/check value is 08D7B4, not 123456.*Nothing was stored/);
    expect(told).toHaveLength(2);
    expect(error!.message.toUpperCase()).not.toContain(cvk.cvk.slice(0, 8));
  });

  it("refuses a component without odd parity (a mistyped digit), naming it, before anything is told", async () => {
    const components = split(cvk.cvk, 2);
    components[1]![3] = components[1]![3]! ^ 0x10;
    const { error, told } = await ceremony({ components, kcv: "08D7B4" });
    expect(error!.message).toMatch(/Component 2 does not have odd parity/);
    expect(told).toEqual([]);
  });

  it("refuses components of unequal or wrong lengths, and a single component in production", async () => {
    const [a] = split(cvk.cvk, 2);
    expect((await ceremony({ components: [a!, Buffer.alloc(24, 1)], kcv: "08D7B4" })).error!.message).toMatch(
      /Component 2 is 24 bytes; component 1 is 16/,
    );
    expect(
      (
        await ceremony({
          components: [adjustDesParity(randomBytes(24)), adjustDesParity(randomBytes(24))],
          kcv: "08D7B4",
        })
      ).error!.message,
    ).toMatch(/16 bytes/);
    expect((await ceremony({ components: [hex(cvk.cvk)], kcv: "08D7B4" })).error!.message).toMatch(
      /single component is refused in production/,
    );
    // Outside production one component will do (a development or test key).
    expect(
      (await ceremony({ components: [hex(cvk.cvk)], kcv: "08D7B4", production: false })).key,
    ).toMatchObject({
      kcv: "08D7B4",
    });
  });

  it("AES components (no parity): a zone PIN key by --algorithm aes", async () => {
    const key = randomBytes(16);
    const parts = [randomBytes(16)];
    parts.push(xor(key, parts[0]!));
    const result = await ceremony({
      type: "zpk",
      algorithm: "aes",
      components: parts,
      kcv: keyCheckValue(key, "aes", 3),
    });
    expect(result.key).toMatchObject({
      type: "zpk",
      algorithm: "aes-128",
      kcv: keyCheckValue(key, "aes", 3),
    });
  });
});
