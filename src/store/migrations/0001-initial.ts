// The first schema: tenants, cards, audit, outbox and idempotency keys. Portable types only (text, integer),
// so the same file runs on SQLite and PostgreSQL.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("tenants")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text")
    .addColumn("bin", "text", (c) => c.notNull())
    .addColumn("pan_length", "integer", (c) => c.notNull())
    .addColumn("max_cvv_tries", "integer", (c) => c.notNull())
    .addColumn("max_pin_tries", "integer", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("cards")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull().references("tenants.id"))
    .addColumn("public_token", "text", (c) => c.notNull().unique())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("pan_sealed", "text", (c) => c.notNull())
    .addColumn("pan_fingerprint", "text", (c) => c.notNull().unique())
    .addColumn("pan_first6", "text", (c) => c.notNull())
    .addColumn("pan_last4", "text", (c) => c.notNull())
    .addColumn("expiry", "text", (c) => c.notNull())
    .addColumn("cardholder_name", "text")
    .addColumn("customer_reference", "text")
    .addColumn("cvk_id", "text", (c) => c.notNull())
    .addColumn("cvv_service_code", "text", (c) => c.notNull())
    .addColumn("cvv_tries_remaining", "integer", (c) => c.notNull())
    .addColumn("pin_sealed", "text", (c) => c.notNull())
    .addColumn("pvk_id", "text", (c) => c.notNull())
    .addColumn("pvki", "integer", (c) => c.notNull())
    .addColumn("pvv", "text", (c) => c.notNull())
    .addColumn("pin_tries_remaining", "integer", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("cards_tenant_created").on("cards").columns(["tenant_id", "id"]).execute();

  await db.schema
    .createTable("audit_events")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("card_id", "text")
    .addColumn("public_token", "text")
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("outcome", "text", (c) => c.notNull())
    .addColumn("request_id", "text")
    .addColumn("details", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("audit_events_tenant_id")
    .on("audit_events")
    .columns(["tenant_id", "id"])
    .execute();

  await db.schema
    .createTable("outbox_events")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("card_id", "text")
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("payload", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("idempotency_keys")
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("fingerprint", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("response_status", "integer")
    .addColumn("response_body", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("idempotency_keys_pk", ["tenant_id", "key"])
    .execute();
  await db.schema
    .createIndex("idempotency_keys_expiry")
    .on("idempotency_keys")
    .column("expires_at")
    .execute();
}
