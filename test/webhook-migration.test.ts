// Migration 0013 on a database of the previous release: each tenant's live endpoint count (the endpoint cap's
// guarded counter) starts from the endpoints it already has, deleted ones not counted, and every endpoint
// starts with a closed circuit.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Migrator } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { connectStore } from "../src/runtime.js";
import { migrateToLatest, type Store } from "../src/store/db.js";
import { migrationProvider } from "../src/store/migrations/index.js";
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

it("0013 counts each tenant's live webhook endpoints and closes every circuit", async () => {
  const { error } = await new Migrator({ db: store.db, provider: migrationProvider }).migrateTo(
    "0012-wrong-try-budget",
  );
  expect(error).toBeUndefined();
  const tenant = (id: string) => ({
    id,
    name: null,
    bin: "400000",
    pan_length: 16,
    max_cvv_tries: 3,
    max_pin_tries: 3,
    created_at: "2026-06-01T00:00:00.000Z",
    sandbox: 0,
    default_rotation_interval_hours: null,
    webhooks_allow_private: 0,
    secure_data_pin: 0,
  });
  await store.db
    .insertInto("tenants")
    .values([tenant("acme"), tenant("globex")])
    .execute();
  const endpoint = (id: string, deletedAt: string | null) => ({
    id,
    tenant_id: "acme",
    url: "https://hooks.example.invalid/x",
    description: null,
    event_types: null,
    secret_sealed: "v1:sealed",
    created_at: "2026-06-01T00:00:00.000Z",
    deleted_at: deletedAt,
  });
  await store.db
    .insertInto("webhook_endpoints")
    .values([endpoint("e1", null), endpoint("e2", null), endpoint("e3", "2026-06-02T00:00:00.000Z")])
    .execute();

  expect(await migrateToLatest(store.db)).toContain("0013-webhook-fairness");
  const counts = await store.db
    .selectFrom("tenants")
    .select(["id", "webhook_endpoints"])
    .orderBy("id")
    .execute();
  expect(counts).toEqual([
    { id: "acme", webhook_endpoints: 2 },
    { id: "globex", webhook_endpoints: 0 },
  ]);
  const circuits = await store.db
    .selectFrom("webhook_endpoints")
    .select(["consecutive_failures", "circuit_open_until"])
    .execute();
  expect(circuits).toEqual(Array(3).fill({ consecutive_failures: 0, circuit_open_until: null }));
});
