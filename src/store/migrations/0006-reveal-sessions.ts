// Card reveal sessions: single-use, card-scoped, short-lived grants for the embeddable reveal page. Only a
// SHA-256 digest of the session token is kept (unique: it is how a presented token is found), never the token.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("reveal_sessions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull().references("tenants.id"))
    .addColumn("card_id", "text", (c) => c.notNull())
    .addColumn("public_token", "text", (c) => c.notNull())
    .addColumn("token_hash", "text", (c) => c.notNull().unique())
    // Comma-separated, canonical order: pan,expiry,cvv,pin.
    .addColumn("fields", "text", (c) => c.notNull())
    .addColumn("target_origin", "text", (c) => c.notNull())
    .addColumn("created_by", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .addColumn("used_at", "text")
    .execute();
  await db.schema
    .createIndex("reveal_sessions_expires_at")
    .on("reveal_sessions")
    .column("expires_at")
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("reveal_sessions").execute();
}
