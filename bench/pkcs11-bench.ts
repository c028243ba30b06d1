// The PKCS#11 provider on SoftHSM2 against the local provider, the same operations through the KeyProvider
// interface on the same keys (imported into the token by the same ids), measured interleaved in one run: CVV
// derivation, PVV verify (a PIN check: its PVV and the stored block) and PIN-block decode (format 0 verify).
// Every call opens the card's sealed PAN first (AES-GCM), as the service does. Invariant: the ratio is
// pkcs11 / local on identical inputs; skipped, saying so, where SoftHSM2 is absent.
import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { adjustDesParity } from "../src/crypto/des.js";
import { encipherPinBlock } from "../src/crypto/pin-block.js";
import type { KeyProvider, KeyType, SealedPinCard } from "../src/keys/key-provider.js";
import { generatedKeyTypes } from "../src/keys/key-provider.js";
import type { ClearKey } from "../src/keys/keystore-file.js";
import { createLocalKeyProvider } from "../src/keys/local-keystore.js";
import { createPkcs11KeyProvider } from "../src/keys/pkcs11-provider.js";
import { importSecretKey, openToken } from "../src/keys/pkcs11-token.js";
import { systemClock } from "../src/lib/clock.js";
import { createSoftHsmToken, SOFTHSM_MODULE } from "../test/helpers/softhsm.js";
import { testRsaKeyGenerator } from "../test/helpers/test-rsa-keys.js";
import { finish, median, type ScenarioResult } from "./stats.js";

export interface Pkcs11BenchOptions {
  rounds: number;
  ms: number;
}

/** Awaited calls, one at a time, for about `ms` milliseconds: calls per second. */
async function callsPerSecond(fn: () => Promise<unknown>, ms: number): Promise<number> {
  for (let i = 0; i < 200; i++) await fn();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 32; i++) await fn();
    calls += 32;
    now = performance.now();
  }
  return (calls * 1000) / (now - start);
}

function materialFor(type: KeyType): Buffer {
  if (type === "secure-data-wrap") return Buffer.from(testRsaKeyGenerator(4096));
  if (type === "secure-data-sign") return Buffer.from(testRsaKeyGenerator(3072));
  if (type === "access-token-sign")
    return generateKeyPairSync("ed25519", {
      publicKeyEncoding: { type: "spki", format: "der" },
      privateKeyEncoding: { type: "pkcs8", format: "der" },
    }).privateKey;
  if (type === "cvk" || type === "pvk" || type === "pek-tdes")
    return adjustDesParity(Buffer.from(crypto.getRandomValues(new Uint8Array(16))));
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32)));
}

export async function runPkcs11Bench(
  options: Pkcs11BenchOptions,
  log: (line: string) => void,
): Promise<ScenarioResult[]> {
  if (!existsSync(SOFTHSM_MODULE)) {
    log(
      `PKCS#11 scenarios SKIPPED: SoftHSM2 (${SOFTHSM_MODULE}) is not installed (apt-get install softhsm2).`,
    );
    return [];
  }
  const createdAt = new Date().toISOString();
  const clear: ClearKey[] = generatedKeyTypes.map((type) => ({
    id: `${type}-v1`,
    type,
    version: 1,
    // The local provider picks a PIN block key's cipher by its algorithm (key-import.ts familyOf).
    algorithm: ["cvk", "pvk", "pek-tdes"].includes(type) ? "tdes-2key" : "aes-256",
    kcv: "",
    createdAt,
    notAfter: createdAt,
    active: true,
    origin: "generated" as const,
    material: materialFor(type),
  }));
  const token = openToken(createSoftHsmToken("bench"));
  for (const k of clear) {
    importSecretKey(
      token,
      { id: k.id, type: k.type, material: Buffer.from(k.material), origin: "generated" },
      systemClock,
    );
  }
  const pkcs11 = createPkcs11KeyProvider(token);
  const local = createLocalKeyProvider(clear, undefined, { pool: { threads: 1, queue: 1 } });

  const pan = "4123456789012345";
  const binding = { tenantId: "bench", cardId: "card-1" };
  /** The same card as each provider stores it (each sealed its own envelope of the same PAN and PIN). */
  const cardOf = async (p: KeyProvider): Promise<SealedPinCard> => {
    const card = {
      ...binding,
      panSealed: await p.sealPan(pan, binding),
      expiry: "2812",
      cvkId: "cvk-v1",
      serviceCode: "000",
    };
    return { ...card, pin: await p.sealPin(card, "1234") };
  };
  const cards = new Map<KeyProvider, SealedPinCard>([
    [pkcs11, await cardOf(pkcs11)],
    [local, await cardOf(local)],
  ]);
  const pek = clear.find((k) => k.type === "pek-tdes")!.material;
  const pinBlock = encipherPinBlock({ format: 0, pin: "1234", pan, key: pek }).toString("hex");

  const scenarios: { id: string; title: string; unit: string; run: (p: KeyProvider) => Promise<unknown> }[] =
    [
      {
        id: "pkcs11-cvv",
        title: "CVV derivation through SoftHSM2 (PAN opened, 2 DES blocks)",
        unit: "CVV/s",
        run: (p) => p.deriveCvv(cards.get(p)!),
      },
      {
        id: "pkcs11-pvv",
        title: "PVV verify through SoftHSM2 (PAN opened, PVV, stored block)",
        unit: "verify/s",
        run: (p) => p.verifyPin(cards.get(p)!, "1234"),
      },
      {
        id: "pkcs11-pin-block",
        title: "PIN-block decode (format 0) through SoftHSM2, verified",
        unit: "verify/s",
        run: (p) => p.verifyPinBlock(cards.get(p)!, { format: 0, pinBlock }),
      },
    ];

  const results: ScenarioResult[] = [];
  try {
    for (const s of scenarios) {
      const values: number[] = [];
      const baselines: number[] = [];
      for (let r = 0; r < options.rounds; r++) {
        baselines.push(await callsPerSecond(() => s.run(local), options.ms));
        values.push(await callsPerSecond(() => s.run(pkcs11), options.ms));
      }
      results.push(
        finish({
          id: s.id,
          title: s.title,
          unit: s.unit,
          value: median(values),
          baseline: median(baselines),
          baselineLabel: "the local provider, same call",
          rounds: { value: values, baseline: baselines },
          target: 0.5,
        }),
      );
    }
  } finally {
    await pkcs11.close();
    await local.close();
  }
  return results;
}
