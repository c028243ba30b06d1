// CVV rotation: each card's interval and schedule, the tenant's default interval and sandbox flag, test
// clocks, and job leases (one scheduler at a time on SQLite).
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const [column, type] of [
    ["rotation_interval_hours", "integer"],
    ["next_rotation_at", "text"],
    ["last_scheduled_at", "text"],
    ["last_rotated_at", "text"],
    ["test_clock_id", "text"],
  ] as const) {
    await db.schema.alterTable("cards").addColumn(column, type).execute();
  }
  await db.schema.createIndex("cards_next_rotation").on("cards").columns(["next_rotation_at"]).execute();

  await db.schema
    .alterTable("tenants")
    .addColumn("sandbox", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable("tenants").addColumn("default_rotation_interval_hours", "integer").execute();

  await db.schema
    .createTable("test_clocks")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("frozen_time", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("job_leases")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("holder", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .execute();
}
