// Webhook fairness (issue 13, item 7). A tenant's live endpoint count, kept beside the tenant so that the cap
// on endpoints is one guarded UPDATE (count < cap) that concurrent creations cannot both pass; filled from the
// endpoints already there. Each endpoint's circuit breaker, shared by every sender process through the store:
// its consecutive failed attempts, and until when it is not tried (the claim skips it; its deliveries wait). The
// claim's indexes: each tenant's due deliveries and attempts in flight, read on their own.
import { type Kysely, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("tenants")
    .addColumn("webhook_endpoints", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`update tenants set webhook_endpoints = (
    select count(*) from webhook_endpoints e where e.tenant_id = tenants.id and e.deleted_at is null
  )`.execute(db);
  await db.schema
    .alterTable("webhook_endpoints")
    .addColumn("consecutive_failures", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable("webhook_endpoints").addColumn("circuit_open_until", "text").execute();
  // A claim reads each waiting tenant's next due deliveries (in due order, then id: bursts share a time) as one
  // range each, and what each tenant has in flight from an index of the leased rows only. The global due index
  // goes: no query reads the due deliveries of every tenant any more, and SQLite (which has no statistics here)
  // would pick it over the primary key to lease a handful of rows by id, scanning the whole backlog.
  await db.schema.dropIndex("webhook_deliveries_due").execute();
  await db.schema
    .createIndex("webhook_deliveries_tenant_due")
    .on("webhook_deliveries")
    .columns(["tenant_id", "status", "next_attempt_at", "id"])
    .execute();
  await db.schema
    .createIndex("webhook_deliveries_in_flight")
    .on("webhook_deliveries")
    .columns(["tenant_id", "locked_until"])
    .where(sql.ref("lock_token"), "is not", null)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("webhook_deliveries_in_flight").execute();
  await db.schema.dropIndex("webhook_deliveries_tenant_due").execute();
  await db.schema
    .createIndex("webhook_deliveries_due")
    .on("webhook_deliveries")
    .columns(["status", "next_attempt_at"])
    .execute();
  await db.schema.alterTable("webhook_endpoints").dropColumn("circuit_open_until").execute();
  await db.schema.alterTable("webhook_endpoints").dropColumn("consecutive_failures").execute();
  await db.schema.alterTable("tenants").dropColumn("webhook_endpoints").execute();
}
