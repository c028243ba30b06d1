// Rate-limit windows come in more than one length (a minute for attempts, a day for unblocks), so a row says
// when it can go: the end of its window. The purge deletes by it, a bounded batch at a time, through its
// index. Rows written before this migration have no end (''): they sort before every instant and go first;
// at worst the window in progress at the upgrade starts counting again.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("rate_limits")
    .addColumn("expires_at", "text", (c) => c.notNull().defaultTo(""))
    .execute();
  await db.schema.dropIndex("rate_limits_window").execute();
  await db.schema.createIndex("rate_limits_expiry").on("rate_limits").column("expires_at").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("rate_limits_expiry").execute();
  await db.schema.createIndex("rate_limits_window").on("rate_limits").column("window_start").execute();
  await db.schema.alterTable("rate_limits").dropColumn("expires_at").execute();
}
