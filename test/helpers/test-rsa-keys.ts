// RSA key pairs for test keystores. A 4096-bit RSA keygen takes a second or more; every test file builds a
// fresh keystore, so the pairs are made once per machine (cached under the OS temp directory) and reused.
// Test keys only: production keystores get fresh pairs from `keys init` (keystore-file.ts).
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import type { RsaKeyGenerator } from "../../src/keys/keystore-file.js";

const CACHE_DIR = join(tmpdir(), `cardvault-test-rsa-${userInfo().uid}`);
const memo = new Map<number, Buffer>();

export const testRsaKeyGenerator: RsaKeyGenerator = (bits) => {
  const known = memo.get(bits);
  if (known) return known;
  const file = join(CACHE_DIR, `rsa-${bits}.pkcs8.der`);
  let der: Buffer;
  if (existsSync(file)) {
    der = readFileSync(file);
  } else {
    der = generateKeyPairSync("rsa", {
      modulusLength: bits,
      publicKeyEncoding: { type: "spki", format: "der" },
      privateKeyEncoding: { type: "pkcs8", format: "der" },
    }).privateKey;
    mkdirSync(CACHE_DIR, { recursive: true, mode: 0o700 });
    // Write-then-rename: test files running in parallel may race; either complete file is fine.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, der, { mode: 0o600 });
    renameSync(tmp, file);
  }
  memo.set(bits, der);
  return der;
};
