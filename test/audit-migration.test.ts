// Migration 0014 on a database of the previous release: the audit rows it holds survive (SQLite rebuilds the
// table), and a row without a tenant — the operator's record of a refused request — can be written after it.
import { expect, it } from "vitest";
import { createAuditRepo } from "../src/store/audit-repo.js";
import { migrateToLatest } from "../src/store/db.js";
import type { AuditRow } from "../src/store/schema.js";
import { upgradeStore } from "./helpers/upgrade-store.js";

const upgrade = upgradeStore();

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
  await upgrade.migrateTo("0010-reveal-sessions-by-card");
  const store = upgrade.store();
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
