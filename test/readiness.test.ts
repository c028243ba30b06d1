// Readiness means the instance can serve: /readyz names each check (store, keys, migrations) and answers a 503
// problem naming the one that fails — a store at an older migration, a store that cannot be reached — on both
// stores. The app is the real one, on real databases; only the store under it changes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Migrator } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { buildApp } from "../src/http/app.js";
import { createTokenVerifier } from "../src/http/auth.js";
import type { KeyProvider } from "../src/keys/key-provider.js";
import { loadKeystore } from "../src/keys/keystore-file.js";
import { createLocalKeyProvider } from "../src/keys/local-keystore.js";
import { systemClock } from "../src/lib/clock.js";
import { connectStore, keystorePath } from "../src/runtime.js";
import type { Store } from "../src/store/db.js";
import { latestMigration, migrationProvider } from "../src/store/migrations/index.js";
import { createHarness, type Harness, TEST_MASTER_KEY } from "./helpers/harness.js";
import { createTestDatabase, type TestDatabase } from "./helpers/test-database.js";

let h: Harness;
let database: TestDatabase;
let other: Store;
const dataDir = mkdtempSync(join(tmpdir(), "cardvault-readiness-"));

beforeAll(async () => {
  h = await createHarness();
  database = await createTestDatabase();
  other = connectStore(loadConfig(database.url ? { CARDVAULT_DATABASE_URL: database.url } : {}, { dataDir }));
});
afterAll(async () => {
  await h.close();
  await other.close().catch(() => {});
  await database.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The real app with the harness's services, answering readiness for `store` and `keys`. */
function appOn(store: Store, keys: KeyProvider = h.runtime.keys) {
  return buildApp({
    services: h.runtime.services,
    idempotency: h.runtime.repos.idempotency,
    verifier: createTokenVerifier({ ...h.config.auth, hs256Secret: h.runtime.jwtSecret }, systemClock),
    store,
    keys,
    clock: systemClock,
    bodyLimitBytes: h.config.bodyLimitBytes,
    idempotencyTtlHours: h.config.idempotencyTtlHours,
    apiDocs: false,
    publicUrl: h.config.publicUrl,
  });
}

describe("/readyz", () => {
  it("is ready on a migrated store with its keys open, naming each check", async () => {
    const response = await h.app.inject({ method: "GET", url: "/readyz" });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: "ready",
      checks: { store: "ok", keys: "ok", migrations: "ok" },
    });
  });

  it("is not ready, naming migrations, on a database not migrated to this build's latest", async () => {
    const app = await appOn(other);
    try {
      const fresh = await app.inject({ method: "GET", url: "/readyz" });
      expect(fresh.statusCode).toBe(503);
      expect(fresh.headers["content-type"]).toContain("application/problem+json");
      expect(fresh.json()).toMatchObject({
        code: "service_unavailable",
        errors: { migrations: [expect.any(String)] },
      });
      expect(Object.keys(fresh.json().errors)).toEqual(["migrations"]);

      // One migration short of the latest, as a database left by the release before.
      const names = Object.keys(await migrationProvider.getMigrations()).sort();
      const { error } = await new Migrator({ db: other.db, provider: migrationProvider }).migrateTo(
        names.at(-2)!,
      );
      expect(error).toBeUndefined();
      const behind = await app.inject({ method: "GET", url: "/readyz" });
      expect(behind.statusCode).toBe(503);
      expect(Object.keys(behind.json().errors)).toEqual(["migrations"]);

      await new Migrator({ db: other.db, provider: migrationProvider }).migrateTo(latestMigration);
      expect((await app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it("is not ready, naming the store, when the database cannot be reached, and says nothing of where it is", async () => {
    const app = await appOn(other);
    try {
      await other.close();
      const response = await app.inject({ method: "GET", url: "/readyz" });
      expect(response.statusCode).toBe(503);
      expect(Object.keys(response.json().errors)).toEqual(["store"]);
      for (const secret of [database.url ?? dataDir, "postgres://", "cardvault.db"]) {
        expect(response.body).not.toContain(secret);
      }
    } finally {
      await app.close();
    }
  });

  it("is not ready, naming keys, when the key provider lacks a type of key (a keystore from an older build)", async () => {
    const clear = loadKeystore(keystorePath(h.config), Buffer.from(TEST_MASTER_KEY, "hex"));
    const keys = createLocalKeyProvider(clear.filter((k) => k.type !== "pek-aes"));
    const app = await appOn(h.runtime.store, keys);
    try {
      const response = await app.inject({ method: "GET", url: "/readyz" });
      expect(response.statusCode).toBe(503);
      expect(response.json().errors).toEqual({ keys: [expect.stringContaining("pek-aes")] });
    } finally {
      await app.close();
      await keys.close();
    }
  });
});
