// Micro-benchmarks of the card cryptography on the authorisation and scheduler paths, each against the raw
// OpenSSL cipher work it cannot avoid (a reused cipher, measured in the same process and run). Invariant: the
// subject is the code the key provider really calls; the baseline is the same number of cipher blocks.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { computeCvvBatch, createCvvGenerator } from "../src/crypto/cvv.js";
import { createPinBlockCipher, encipherPinBlock } from "../src/crypto/pin-block.js";
import { createPvvGenerator } from "../src/crypto/pvv.js";
import { finish, median, opsPerSecond, type ScenarioResult } from "./stats.js";

export interface CryptoBenchOptions {
  rounds: number;
  ms: number;
}

const PAN = "4123456789012345";

function reusedBlock(name: string, key: Buffer, blockSize: number, decrypt = false): () => Buffer {
  const cipher = (
    decrypt ? createDecipheriv(name, key, null) : createCipheriv(name, key, null)
  ).setAutoPadding(false);
  const block = randomBytes(blockSize);
  return () => cipher.update(block);
}

/** Decodes enciphered PIN blocks the way the key provider does: one PIN block cipher per key, reused. */
function pinBlockDecoder(format: 0 | 4, key: Buffer): (block: Buffer, pan: string) => string {
  const cipher = createPinBlockCipher(key, format === 4 ? "aes" : "tdes");
  return (block, pan) => cipher.decipher({ format, block, pan });
}

function measure(
  rounds: number,
  subject: () => number,
  baseline: () => number,
): { value: number; baseline: number; rounds: { value: number[]; baseline: number[] } } {
  const values: number[] = [];
  const baselines: number[] = [];
  // Interleaved, so a noisy neighbour hits both sides alike.
  for (let r = 0; r < rounds; r++) {
    baselines.push(baseline());
    values.push(subject());
  }
  return {
    value: median(values),
    baseline: median(baselines),
    rounds: { value: values, baseline: baselines },
  };
}

export function runCryptoBench(options: CryptoBenchOptions): ScenarioResult[] {
  const { rounds, ms } = options;
  const tdesKey = randomBytes(16);
  const tdesKey24 = Buffer.concat([tdesKey, tdesKey.subarray(0, 8)]);
  const aesKey = randomBytes(32);
  const results: ScenarioResult[] = [];

  // CVV, one call at a time: two cipher blocks (single DES under A, then 3DES under A||B).
  const cvv = createCvvGenerator(tdesKey);
  const cvvInput = { pan: PAN, expiry: "2812", serviceCode: "000" };
  const oneBlock = reusedBlock("des-ede3-ecb", tdesKey24, 8);
  const single = measure(
    rounds,
    () => opsPerSecond(() => cvv(cvvInput), ms),
    () => opsPerSecond(oneBlock, ms) / 2,
  );
  results.push(
    finish({
      id: "cvv-single",
      title: "CVV derivation, one call at a time",
      unit: "CVV/s",
      baselineLabel: "reused 3DES block/s ÷ 2",
      target: 0.6,
      ...single,
    }),
  );

  // CVV batch of 10,000 (the scheduler's path): two bulk cipher calls per chunk.
  const inputs = Array.from({ length: 10_000 }, (_, i) => ({
    pan: `4${String(100_000_000_000_000 + i * 7919).slice(0, 15)}`,
    expiry: "2812",
    serviceCode: String(i % 1000).padStart(3, "0"),
  }));
  const bulk = createCipheriv("des-ede3-ecb", tdesKey24, null).setAutoPadding(false);
  const bulkData = randomBytes(10_000 * 8);
  const batch = measure(
    rounds,
    () => opsPerSecond(() => computeCvvBatch(tdesKey, inputs), ms, inputs.length),
    () => opsPerSecond(() => bulk.update(bulkData), ms, 10_000) / 2,
  );
  results.push(
    finish({
      id: "cvv-batch",
      title: "CVV derivation, batch of 10,000",
      unit: "CVV/s",
      baselineLabel: "bulk 3DES-ECB block/s ÷ 2",
      target: 0.5,
      ...batch,
    }),
  );

  // PVV verify: one 3DES block and a comparison.
  const pvv = createPvvGenerator(tdesKey);
  const stored = pvv({ pvki: 1, pan: PAN, pin: "1234" });
  const pvvRun = measure(
    rounds,
    () => opsPerSecond(() => pvv({ pvki: 1, pan: PAN, pin: "1234" }) === stored, ms),
    () => opsPerSecond(oneBlock, ms),
  );
  results.push(
    finish({
      id: "pvv-verify",
      title: "PVV verify",
      unit: "verify/s",
      baselineLabel: "reused 3DES block/s",
      target: 0.5,
      ...pvvRun,
    }),
  );

  // PIN block format 0: one 3DES decryption, the PAN XOR and the format checks.
  const block0 = encipherPinBlock({ format: 0, pin: "1234", pan: PAN, key: tdesKey });
  const decode0 = pinBlockDecoder(0, tdesKey);
  const oneDecrypt = reusedBlock("des-ede3-ecb", tdesKey24, 8, true);
  const f0 = measure(
    rounds,
    () => opsPerSecond(() => decode0(block0, PAN), ms),
    () => opsPerSecond(oneDecrypt, ms),
  );
  results.push(
    finish({
      id: "pin-block-0",
      title: "PIN-block decode, format 0",
      unit: "decode/s",
      baselineLabel: "reused 3DES decrypt block/s",
      target: 0.5,
      ...f0,
    }),
  );

  // PIN block format 4: two AES-256 decryptions around the PAN field, then the format checks.
  const block4 = encipherPinBlock({ format: 4, pin: "1234", pan: PAN, key: aesKey });
  const decode4 = pinBlockDecoder(4, aesKey);
  const oneAes = reusedBlock("aes-256-ecb", aesKey, 16, true);
  const f4 = measure(
    rounds,
    () => opsPerSecond(() => decode4(block4, PAN), ms),
    () => opsPerSecond(oneAes, ms) / 2,
  );
  results.push(
    finish({
      id: "pin-block-4",
      title: "PIN-block decode, format 4",
      unit: "decode/s",
      baselineLabel: "reused AES-256 decrypt block/s ÷ 2",
      target: 0.5,
      ...f4,
    }),
  );
  return results;
}
