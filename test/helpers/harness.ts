// A fresh cardvault per test file: its own data directory (SQLite database + keystore), two tenants, the
// real app driven through inject(), and tokens minted with the configured secret.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import { loadConfig } from "../../src/config.js";
import { buildApp } from "../../src/http/app.js";
import { createTokenVerifier, mintToken, scopes } from "../../src/http/auth.js";
import { type Clock, systemClock } from "../../src/lib/clock.js";
import { openRuntime } from "../../src/runtime.js";
import type { Telemetry } from "../../src/telemetry/instrument.js";
import { createSoftHsmToken, softhsmAvailable } from "./softhsm.js";
import { createTestDatabase, prepareStoreAndKeys } from "./test-database.js";

export const TEST_JWT_SECRET = "test-secret-that-is-long-enough-for-hs256!";
export const TEST_MASTER_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
export const ALL_SCOPES = [...scopes];

export interface HarnessOptions {
  clock?: Clock;
  logger?: Logger;
  maxCvvTries?: number;
  maxPinTries?: number;
  /** Tenant acme is a sandbox tenant (may use test clocks); globex never is. */
  sandbox?: boolean;
  env?: Record<string, string>;
  /** Tenants (acme, globex) whose webhooks may reach loopback and private addresses. */
  allowPrivateWebhooks?: readonly string[];
  /** Rewrites the test database URL the service uses (e.g. to go through a proxy the test controls). */
  databaseUrlFor?: (url: string) => string;
  /** Tenants (acme, globex) that accept format-1 (not PAN-bound) PIN blocks. */
  allowPinBlockFormat1?: readonly string[];
  /** Tenants (acme, globex) whose Get Card Data payloads include the PIN. */
  secureDataPin?: readonly string[];
  /** Metrics and tracer instead of the configuration's (the trace test's in-memory exporter). */
  telemetry?: Telemetry;
}

export async function createHarness(options: HarnessOptions = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), "cardvault-test-"));
  const clock = options.clock ?? systemClock;
  const database = await createTestDatabase();
  const config = loadConfig(
    {
      CARDVAULT_JWT_SECRET: TEST_JWT_SECRET,
      CARDVAULT_MASTER_KEY: TEST_MASTER_KEY,
      ...testKeyProviderEnv(),
      ...(database.url
        ? { CARDVAULT_DATABASE_URL: options.databaseUrlFor?.(database.url) ?? database.url }
        : {}),
      ...options.env,
    },
    { dataDir },
  );
  await prepareStoreAndKeys(config, clock);
  const runtime = await openRuntime(config, { clock, warn: () => {}, telemetry: options.telemetry });
  for (const id of ["acme", "globex"]) {
    await runtime.services.tenants.add({
      id,
      bin: id === "acme" ? "400000" : "510000",
      maxCvvTries: options.maxCvvTries ?? 3,
      maxPinTries: options.maxPinTries ?? 3,
      sandbox: id === "acme" && options.sandbox === true,
      allowPrivateWebhooks: options.allowPrivateWebhooks?.includes(id),
      secureDataPin: options.secureDataPin?.includes(id),
      allowPinBlockFormat1: options.allowPinBlockFormat1?.includes(id),
    });
  }
  const app = await buildApp({
    services: runtime.services,
    idempotency: runtime.repos.idempotency,
    verifier: createTokenVerifier({ ...config.auth, hs256Secret: runtime.jwtSecret }, clock, {
      issuer: config.publicUrl,
      keys: runtime.keys,
    }),
    store: runtime.store,
    keys: runtime.keys,
    clock,
    bodyLimitBytes: config.bodyLimitBytes,
    idempotencyTtlHours: config.idempotencyTtlHours,
    apiDocs: config.apiDocs,
    publicUrl: config.publicUrl,
    logger: options.logger ?? false,
    telemetry: runtime.telemetry,
  });

  const token = (tokenScopes: string[] = ALL_SCOPES, tenant = "acme", subject = "test-user") =>
    mintToken({
      secret: TEST_JWT_SECRET,
      tenantId: tenant,
      scopes: tokenScopes,
      subject,
      ttlSeconds: 3600,
      tenantClaim: config.auth.tenantClaim,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      clock,
    });

  const defaultToken = await token();

  /** One request as the default (all scopes, tenant acme) caller unless a token or headers are given. */
  async function call(
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    url: string,
    body?: unknown,
    init: { token?: string | null; headers?: Record<string, string> } = {},
  ) {
    const bearer = init.token === undefined ? defaultToken : init.token;
    return app.inject({
      method,
      url,
      headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...init.headers },
      ...(body === undefined ? {} : { payload: body as object }),
    });
  }

  async function createCard(body: Record<string, unknown> = { type: "virtual" }, bearer?: string) {
    const response = await call("POST", "/v1/cards", body, { token: bearer });
    if (response.statusCode !== 201)
      throw new Error(`create card failed: ${response.statusCode} ${response.body}`);
    return response.json() as { publicToken: string; maskedPan: string; expiry: string; status: string };
  }

  return {
    app,
    runtime,
    config,
    dataDir,
    token,
    call,
    createCard,
    async close() {
      await app.close();
      await runtime.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The key provider the suite runs on: the local keystore, or (CARDVAULT_TEST_KEY_PROVIDER=pkcs11, the vitest
 * project "pkcs11") a fresh SoftHSM2 token of this test file.
 */
function testKeyProviderEnv(): Record<string, string> {
  if (process.env.CARDVAULT_TEST_KEY_PROVIDER !== "pkcs11") return {};
  if (!softhsmAvailable())
    throw new Error("CARDVAULT_TEST_KEY_PROVIDER=pkcs11 needs SoftHSM2 (apt-get install softhsm2)");
  const token = createSoftHsmToken("http");
  return {
    CARDVAULT_KEY_PROVIDER: "pkcs11",
    CARDVAULT_PKCS11_MODULE: token.module,
    CARDVAULT_PKCS11_TOKEN: token.label,
    CARDVAULT_PKCS11_PIN: token.pin,
  };
}

export type Harness = Awaited<ReturnType<typeof createHarness>>;
