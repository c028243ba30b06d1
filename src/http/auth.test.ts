import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { AuthConfig } from "../config.js";
import { fixedClock } from "../lib/clock.js";
import { createTokenVerifier, mintToken } from "./auth.js";

const secret = "a-shared-secret-of-at-least-32-bytes!!";
const hsConfig: AuthConfig = { hs256Secret: secret, algorithms: ["HS256"], tenantClaim: "tenant" };

async function jwksSetup() {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const dir = mkdtempSync(join(tmpdir(), "cardvault-jwks-"));
  const file = join(dir, "jwks.json");
  writeFileSync(file, JSON.stringify({ keys: [jwk] }));
  const config: AuthConfig = { jwksFile: file, algorithms: ["RS256"], tenantClaim: "tenant" };
  return { publicKey, privateKey, config };
}

const claims = { tenant: "acme", scope: "cards:read cvv:read" };

describe("token verification", () => {
  it("accepts a minted HS256 token and reads subject, tenant and scopes", async () => {
    const clock = fixedClock("2026-11-28T10:00:00Z");
    const token = await mintToken({
      secret,
      tenantId: "acme",
      scopes: ["cards:read", "cvv:read"],
      subject: "svc",
      ttlSeconds: 60,
      tenantClaim: "tenant",
      clock,
    });
    const principal = await createTokenVerifier(hsConfig, clock).verify(token);
    expect(principal.subject).toBe("svc");
    expect(principal.tenantId).toBe("acme");
    expect([...principal.scopes]).toEqual(["cards:read", "cvv:read"]);
  });

  it("stops accepting a cached token once it expires", async () => {
    const clock = fixedClock("2026-11-28T10:00:00Z");
    const verifier = createTokenVerifier(hsConfig, clock);
    const token = await mintToken({
      secret,
      tenantId: "acme",
      scopes: [],
      subject: "svc",
      ttlSeconds: 60,
      tenantClaim: "tenant",
      clock,
    });
    await verifier.verify(token);
    await verifier.verify(token); // from the cache
    clock.advance(66_000);
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: "unauthorized" });
  });

  it("verifies RS256 tokens against a JWKS file", async () => {
    const { privateKey, config } = await jwksSetup();
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setSubject("svc")
      .setExpirationTime("5m")
      .sign(privateKey);
    expect((await createTokenVerifier(config, fixedClock(new Date())).verify(token)).tenantId).toBe("acme");
  });

  it("refuses algorithm confusion: HS256 signed with the RS256 public key", async () => {
    const { publicKey, config } = await jwksSetup();
    const pem = await exportSPKI(publicKey);
    const forged = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256", kid: "k1" })
      .setSubject("svc")
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(pem));
    await expect(createTokenVerifier(config, fixedClock(new Date())).verify(forged)).rejects.toMatchObject({
      code: "unauthorized",
    });
  });

  it("refuses an unknown kid and a key that is not in the set", async () => {
    const { config } = await jwksSetup();
    const other = await generateKeyPair("RS256");
    const unknownKid = await new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: "k2" })
      .setSubject("svc")
      .setExpirationTime("5m")
      .sign(other.privateKey);
    const wrongKey = await new SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .setSubject("svc")
      .setExpirationTime("5m")
      .sign(other.privateKey);
    const verifier = createTokenVerifier(config, fixedClock(new Date()));
    await expect(verifier.verify(unknownKid)).rejects.toMatchObject({ code: "unauthorized" });
    await expect(verifier.verify(wrongKey)).rejects.toMatchObject({ code: "unauthorized" });
  });

  it("requires exp", async () => {
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("svc")
      .sign(new TextEncoder().encode(secret));
    await expect(createTokenVerifier(hsConfig, fixedClock(new Date())).verify(token)).rejects.toMatchObject({
      code: "unauthorized",
    });
  });
});
