import { describe, expect, it } from "vitest";
import { decoyHash, hashSecret, verifySecret } from "./secret-hash.js";

describe("secret hashes (scrypt)", () => {
  it("verifies the secret it hashed, and nothing else; salts differ; the secret is not in the hash", async () => {
    const secret = "cvs_S3cr3t-that-is-long-enough";
    const [a, b] = await Promise.all([hashSecret(secret), hashSecret(secret)]);
    expect(a).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain(secret);
    expect(await verifySecret(secret, a)).toBe(true);
    expect(await verifySecret(`${secret}x`, a)).toBe(false);
    expect(await verifySecret(secret, "plain")).toBe(false);
    expect(await verifySecret(secret, await decoyHash())).toBe(false);
  });

  it("honours the parameters stored with a hash (they may be raised later)", async () => {
    const { scryptSync } = await import("node:crypto");
    const salt = Buffer.from("0123456789abcdef");
    const key = scryptSync("s", salt, 32, { N: 1024, r: 8, p: 1 });
    const stored = `scrypt$1024$8$1$${salt.toString("base64url")}$${key.toString("base64url")}`;
    expect(await verifySecret("s", stored)).toBe(true);
    expect(await verifySecret("t", stored)).toBe(false);
  });
});
