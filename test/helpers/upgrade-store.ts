// A store on a fresh database of the test's project (its own SQLite file, or its own PostgreSQL database),
// connected but not migrated: for tests of one migration on a database an older release left, which migrate
// to the release before it, write what that release wrote, then migrate to the latest.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Migrator } from "kysely";
import { afterAll, beforeAll, expect } from "vitest";
import { loadConfig } from "../../src/config.js";
import { connectStore } from "../../src/runtime.js";
import type { Store } from "../../src/store/db.js";
import { migrationProvider } from "../../src/store/migrations/index.js";
import { createTestDatabase, type TestDatabase } from "./test-database.js";

/** Registers the file's hooks; `store()` is the store once they ran, `migrateTo(name)` migrates it up to name. */
export function upgradeStore() {
  const dataDir = mkdtempSync(join(tmpdir(), "cardvault-migration-"));
  let database: TestDatabase;
  let store: Store;
  beforeAll(async () => {
    database = await createTestDatabase();
    store = connectStore(
      loadConfig(database.url ? { CARDVAULT_DATABASE_URL: database.url } : {}, { dataDir }),
    );
  });
  afterAll(async () => {
    await store.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    store: () => store,
    async migrateTo(name: string): Promise<void> {
      const { error } = await new Migrator({ db: store.db, provider: migrationProvider }).migrateTo(name);
      expect(error).toBeUndefined();
    },
  };
}
