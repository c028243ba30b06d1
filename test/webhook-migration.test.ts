// Migration 0013 on a database of the previous release: each tenant's live endpoint count (the endpoint cap's
// guarded counter) starts from the endpoints it already has, deleted ones not counted, and every endpoint
// starts with a closed circuit.
import { expect, it } from "vitest";
import { migrateToLatest } from "../src/store/db.js";
import { upgradeStore } from "./helpers/upgrade-store.js";

const upgrade = upgradeStore();

it("0013 counts each tenant's live webhook endpoints and closes every circuit", async () => {
  await upgrade.migrateTo("0012-wrong-try-budget");
  const store = upgrade.store();
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
