import { mkdtempSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseMasterKey } from "./config.js";

describe("configuration", () => {
  it("has development defaults: loopback, port 8080, ./data, HS256", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ host: "127.0.0.1", port: 8080, production: false, masterKey: undefined });
    expect(config.dataDir).toMatch(/data$/);
    expect(config.auth.algorithms).toEqual(["HS256"]);
  });

  it("takes flags over environment", () => {
    const config = loadConfig({ CARDVAULT_PORT: "9000", CARDVAULT_HOST: "0.0.0.0" }, { port: "9100" });
    expect(config.port).toBe(9100);
    expect(config.host).toBe("0.0.0.0");
  });

  it("refuses production without a master key or JWT configuration, listing every problem", () => {
    expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(ConfigError);
    try {
      loadConfig({ NODE_ENV: "production" });
    } catch (error) {
      expect((error as Error).message).toMatch(/CARDVAULT_MASTER_KEY is required/);
      expect((error as Error).message).toMatch(/CARDVAULT_JWT_SECRET/);
    }
  });

  it("selects the key provider: local by default; pkcs11 needs its module, token and one PIN source", () => {
    expect(loadConfig({}).keyProvider).toBe("local");
    expect(() => loadConfig({ CARDVAULT_KEY_PROVIDER: "hsm" })).toThrow(/must be local or pkcs11/);
    const dir = mkdtempSync(join(tmpdir(), "cardvault-config-"));
    const module = join(dir, "module.so");
    const pinFile = join(dir, "pin");
    writeFileSync(module, "");
    writeFileSync(pinFile, "246810\n");
    const base = {
      CARDVAULT_KEY_PROVIDER: "pkcs11",
      CARDVAULT_PKCS11_MODULE: module,
      CARDVAULT_PKCS11_TOKEN: "cv",
    };
    expect(loadConfig({ ...base, CARDVAULT_PKCS11_PIN_FILE: pinFile }).pkcs11).toEqual({
      module,
      label: "cv",
      pin: "246810",
    });
    expect(loadConfig({ ...base, CARDVAULT_PKCS11_PIN: "1234" }).pkcs11?.pin).toBe("1234");
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return "";
      } catch (error) {
        return (error as Error).message;
      }
    };
    const missing = problems({ CARDVAULT_KEY_PROVIDER: "pkcs11" });
    expect(missing).toMatch(/CARDVAULT_PKCS11_MODULE/);
    expect(missing).toMatch(/CARDVAULT_PKCS11_TOKEN/);
    expect(missing).toMatch(/CARDVAULT_PKCS11_PIN or CARDVAULT_PKCS11_PIN_FILE/);
    expect(problems({ ...base, CARDVAULT_PKCS11_PIN: "1234", CARDVAULT_PKCS11_PIN_FILE: pinFile })).toMatch(
      /not both/,
    );
    expect(
      problems({ ...base, CARDVAULT_PKCS11_MODULE: join(dir, "absent.so"), CARDVAULT_PKCS11_PIN: "1" }),
    ).toMatch(/no file at/);
    // The PIN is never echoed, and production needs no master key when the keys are in a token.
    expect(
      problems({ ...base, CARDVAULT_PKCS11_PIN: "1234", CARDVAULT_PKCS11_PIN_FILE: pinFile }),
    ).not.toContain("246810");
    expect(
      problems({
        ...base,
        CARDVAULT_PKCS11_PIN: "1234",
        NODE_ENV: "production",
        CARDVAULT_JWT_SECRET: "x".repeat(8),
      }),
    ).not.toMatch(/CARDVAULT_MASTER_KEY/);
  });

  it("rejects short secrets, malformed master keys, bad ports and disallowed algorithms", () => {
    expect(() => loadConfig({ CARDVAULT_JWT_SECRET: "short" })).toThrow(/at least 32 bytes/);
    expect(() => loadConfig({ CARDVAULT_MASTER_KEY: "abcd" })).toThrow(/32 bytes/);
    expect(() => loadConfig({ CARDVAULT_PORT: "70000" })).toThrow(/port/);
    expect(() => loadConfig({ CARDVAULT_JWT_ALGORITHMS: "none" })).toThrow(/not allowed/);
    expect(() => loadConfig({ CARDVAULT_JWKS_FILE: "x.json", CARDVAULT_JWT_ALGORITHMS: "HS256" })).toThrow(
      /not allowed/,
    );
  });

  it("accepts the log levels and refuses any other with a ConfigError (not a crash at start)", () => {
    expect(loadConfig({}).logLevel).toBe("info");
    for (const level of ["fatal", "error", "warn", "info", "debug", "trace", "silent"]) {
      expect(loadConfig({ CARDVAULT_LOG_LEVEL: level }).logLevel).toBe(level);
    }
    for (const bad of ["verbose", "INFO", ""]) {
      expect(() => loadConfig({ CARDVAULT_LOG_LEVEL: bad }), bad).toThrow(
        /CARDVAULT_LOG_LEVEL must be one of/,
      );
    }
  });

  it("takes the public URL from CARDVAULT_PUBLIC_URL, validated; defaults to the listen address outside production", () => {
    expect(loadConfig({}).publicUrl).toBe("http://127.0.0.1:8080");
    expect(loadConfig({ CARDVAULT_HOST: "::1", CARDVAULT_PORT: "9000" }).publicUrl).toBe("http://[::1]:9000");
    expect(loadConfig({ CARDVAULT_PUBLIC_URL: "https://vault.cardvault.test/" }).publicUrl).toBe(
      "https://vault.cardvault.test",
    );
    expect(loadConfig({ CARDVAULT_PUBLIC_URL: "https://vault.cardvault.test/cv" }).publicUrl).toBe(
      "https://vault.cardvault.test/cv",
    );
    for (const bad of [
      "vault.cardvault.test",
      "ftp://vault.cardvault.test",
      "https://vault.cardvault.test/?x=1",
      "https://u@h",
    ]) {
      expect(() => loadConfig({ CARDVAULT_PUBLIC_URL: bad }), bad).toThrow(/CARDVAULT_PUBLIC_URL/);
    }
    expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(/CARDVAULT_PUBLIC_URL is required/);
  });

  it("reads the per-card hourly cap on reveal sessions (default 10)", () => {
    expect(loadConfig({}).revealSessionsPerCardHour).toBe(10);
    expect(loadConfig({ CARDVAULT_REVEAL_SESSIONS_PER_CARD_HOUR: "3" }).revealSessionsPerCardHour).toBe(3);
    expect(() => loadConfig({ CARDVAULT_REVEAL_SESSIONS_PER_CARD_HOUR: "0" })).toThrow(/REVEAL_SESSIONS/);
  });

  it("reads the wrong-try budget: 10 wrong tries in 24 hours by default, whole numbers in range (Hardening II)", () => {
    expect(loadConfig({}).wrongTryBudget).toEqual({ tries: 10, windowHours: 24 });
    expect(
      loadConfig({ CARDVAULT_WRONG_TRY_BUDGET: "5", CARDVAULT_WRONG_TRY_BUDGET_HOURS: "72" }).wrongTryBudget,
    ).toEqual({ tries: 5, windowHours: 72 });
    for (const tries of ["0", "101", "2.5", "ten", ""]) {
      expect(() => loadConfig({ CARDVAULT_WRONG_TRY_BUDGET: tries }), tries).toThrow(
        /CARDVAULT_WRONG_TRY_BUDGET /,
      );
    }
    for (const hours of ["0", "8785", "1.5", "day"]) {
      expect(() => loadConfig({ CARDVAULT_WRONG_TRY_BUDGET_HOURS: hours }), hours).toThrow(
        /CARDVAULT_WRONG_TRY_BUDGET_HOURS/,
      );
    }
  });

  it("reads the purge job's batch size per table and run (default 1000)", () => {
    expect(loadConfig({}).purgeBatchSize).toBe(1000);
    expect(loadConfig({ CARDVAULT_PURGE_BATCH_SIZE: "50" }).purgeBatchSize).toBe(50);
    for (const bad of ["0", "-1", "1.5", "x", "100001"]) {
      expect(() => loadConfig({ CARDVAULT_PURGE_BATCH_SIZE: bad }), bad).toThrow(
        /CARDVAULT_PURGE_BATCH_SIZE/,
      );
    }
  });

  it("sizes Get Card Data's worker threads from the CPUs and bounds their queue (Hardening II)", () => {
    expect(loadConfig({}).secureDataPool).toEqual({
      threads: Math.max(1, availableParallelism() - 1),
      queue: 32,
    });
    expect(
      loadConfig({ CARDVAULT_SECURE_DATA_THREADS: "3", CARDVAULT_SECURE_DATA_QUEUE: "0" }).secureDataPool,
    ).toEqual({ threads: 3, queue: 0 });
    expect(() => loadConfig({ CARDVAULT_SECURE_DATA_THREADS: "0" })).toThrow(/CARDVAULT_SECURE_DATA_THREADS/);
    expect(() => loadConfig({ CARDVAULT_SECURE_DATA_QUEUE: "-1" })).toThrow(/CARDVAULT_SECURE_DATA_QUEUE/);
    expect(() => loadConfig({ CARDVAULT_SECURE_DATA_QUEUE: "many" })).toThrow(/CARDVAULT_SECURE_DATA_QUEUE/);
  });

  it("reads the webhook limits: endpoint cap, timeouts, shares, breaker (Hardening II)", () => {
    expect(loadConfig({}).webhooks).toEqual({
      endpointsPerTenant: 16,
      timeoutMs: 10_000,
      connectTimeoutMs: 3_000,
      concurrency: 50,
      tenantConcurrency: 10,
      breakerFailures: 5,
      breakerCooldownMs: 60_000,
    });
    const set = loadConfig({
      CARDVAULT_WEBHOOK_ENDPOINTS_PER_TENANT: "3",
      CARDVAULT_WEBHOOK_TIMEOUT_MS: "5000",
      CARDVAULT_WEBHOOK_CONNECT_TIMEOUT_MS: "500",
      CARDVAULT_WEBHOOK_CONCURRENCY: "8",
      CARDVAULT_WEBHOOK_TENANT_CONCURRENCY: "2",
      CARDVAULT_WEBHOOK_BREAKER_FAILURES: "4",
      CARDVAULT_WEBHOOK_BREAKER_COOLDOWN_SECONDS: "30",
    }).webhooks;
    expect(set).toEqual({
      endpointsPerTenant: 3,
      timeoutMs: 5000,
      connectTimeoutMs: 500,
      concurrency: 8,
      tenantConcurrency: 2,
      breakerFailures: 4,
      breakerCooldownMs: 30_000,
    });
    for (const [name, value] of [
      ["CARDVAULT_WEBHOOK_ENDPOINTS_PER_TENANT", "0"],
      ["CARDVAULT_WEBHOOK_TIMEOUT_MS", "1.5"],
      ["CARDVAULT_WEBHOOK_BREAKER_FAILURES", "many"],
      ["CARDVAULT_WEBHOOK_CONNECT_TIMEOUT_MS", "20000"],
      ["CARDVAULT_WEBHOOK_TENANT_CONCURRENCY", "51"],
    ] as const) {
      expect(() => loadConfig({ [name]: value }), name).toThrow(name);
    }
  });

  it("reads a master key as hex or base64", () => {
    const hex = "ab".repeat(32);
    expect(parseMasterKey(hex)?.toString("hex")).toBe(hex);
    expect(parseMasterKey(Buffer.from(hex, "hex").toString("base64"))?.toString("hex")).toBe(hex);
    expect(parseMasterKey("not a key")).toBeNull();
  });

  it("reads a master key only as strict hex or canonical base64 (Hardening II)", () => {
    const key = Buffer.from("0f1e2d3c4b5a69788796a5b4c3d2e1f000112233445566778899aabbccddeeff", "hex");
    const canonical = key.toString("base64");
    expect(parseMasterKey(canonical)?.equals(key)).toBe(true);
    // Lenient forms Buffer.from(…, "base64") accepts: no padding, base64url, spaces or junk inside, a
    // non-zero last bit the canonical form would not have (decodes to the same 32 bytes).
    const lastChar = canonical.at(-2)!;
    const sibling = "AEIMQUYcgkosw048".includes(lastChar)
      ? String.fromCharCode(lastChar.charCodeAt(0) + 1)
      : undefined;
    const lenient = [
      canonical.replace(/=+$/, ""),
      key.toString("base64url"),
      `${canonical.slice(0, 20)} ${canonical.slice(20)}`,
      `${canonical.slice(0, 20)}!${canonical.slice(20, -1)}`,
      ...(sibling ? [`${canonical.slice(0, -2)}${sibling}=`] : []),
      `${"ab".repeat(31)}zz`,
    ];
    for (const value of lenient) {
      expect(parseMasterKey(value), value).toBeNull();
      expect(() => loadConfig({ CARDVAULT_MASTER_KEY: value }), value).toThrow(/CARDVAULT_MASTER_KEY/);
    }
    expect(parseMasterKey("AB".repeat(32))?.toString("hex")).toBe("ab".repeat(32));
  });

  it("refuses a trivially low-entropy JWT secret in production (Hardening II)", () => {
    const production = {
      NODE_ENV: "production",
      CARDVAULT_MASTER_KEY: "ab".repeat(32),
      CARDVAULT_PUBLIC_URL: "https://cards.cardvault.test",
    };
    for (const secret of ["a".repeat(32), "ab".repeat(32), "abcdefg".repeat(6), "\0".repeat(40)]) {
      expect(() => loadConfig({ ...production, CARDVAULT_JWT_SECRET: secret }), secret).toThrow(
        /CARDVAULT_JWT_SECRET/,
      );
    }
    expect(
      loadConfig({ ...production, CARDVAULT_JWT_SECRET: "k7Q2-vX9m_Lp4ZtR8wYb3NcE6hJ0sFdA" }).production,
    ).toBe(true);
    // Development keeps working with whatever a developer types (it warns elsewhere, never reaches cards).
    expect(loadConfig({ CARDVAULT_JWT_SECRET: "a".repeat(32) }).auth.hs256Secret).toBe("a".repeat(32));
  });

  it("serves the API documentation page in development, and in production only when enabled (Hardening II)", () => {
    const production = {
      NODE_ENV: "production",
      CARDVAULT_MASTER_KEY: "ab".repeat(32),
      CARDVAULT_JWT_SECRET: "k7Q2-vX9m_Lp4ZtR8wYb3NcE6hJ0sFdA",
      CARDVAULT_PUBLIC_URL: "https://cards.cardvault.test",
    };
    expect(loadConfig({}).apiDocs).toBe(true);
    expect(loadConfig({ CARDVAULT_API_DOCS: "off" }).apiDocs).toBe(false);
    expect(loadConfig(production).apiDocs).toBe(false);
    expect(loadConfig({ ...production, CARDVAULT_API_DOCS: "on" }).apiDocs).toBe(true);
    expect(() => loadConfig({ CARDVAULT_API_DOCS: "yes" })).toThrow(/CARDVAULT_API_DOCS/);
  });
});
