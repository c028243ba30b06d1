// Migration 0014 on a database of the previous release: the audit rows it holds survive (SQLite rebuilds the
// table), and a row without a tenant — the operator's record of a refused request — can be written after it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Migrator } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { connectStore } from "../src/runtime.js";
import { createAuditRepo } from "../src/store/audit-repo.js";
import { migrateToLatest, type Store } from "../src/store/db.js";
import { migrationProvider } from "../src/store/migrations/index.js";
import type { AuditRow } from "../src/store/schema.js";
import { createTestDatabase, type TestDatabase } from "./helpers/test-database.js";

const dataDir = mkdtempSync(join(tmpdir(), "cardvault-migration-"));
let database: TestDatabase;
let store: Store;
beforeAll(async () => {
  database = await createTestDatabase();
  store = connectStore(loadConfig(database.url ? { CARDVAULT_DATABASE_URL: database.url } : {}, { dataDir }));
});
afterAll(async () => {
  await store.close();
  await database.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

const row = (id: string, tenantId: string | null): AuditRow => ({
  id,
  tenant_id: tenantId,
  card_id: null,
  public_token: null,
  actor: "test-user",
  action: "card.create",
  outcome: "success",
  request_id: "req-1",
  details: '{"a":1}',
  created_at: "2026-06-01T00:00:00.000Z",
});

it("0014 keeps every audit row and lets a row have no tenant", async () => {
  const { error } = await new Migrator({ db: store.db, provider: migrationProvider }).migrateTo(
    "0010-reveal-sessions-by-card",
  );
  expect(error).toBeUndefined();
  const audit = createAuditRepo(store.db);
  await audit.insertMany([row("01900000-0000-7000-8000-000000000001", "acme")]);
  await expect(audit.insert(row("01900000-0000-7000-8000-000000000002", null))).rejects.toThrow();

  expect(await migrateToLatest(store.db)).toContain("0014-audit-operator-records");
  await audit.insert(row("01900000-0000-7000-8000-000000000003", null));
  expect(await audit.list("acme", { limit: 10 })).toEqual([
    row("01900000-0000-7000-8000-000000000001", "acme"),
  ]);
  expect(await audit.list(null, { limit: 10 })).toEqual([row("01900000-0000-7000-8000-000000000003", null)]);
});
