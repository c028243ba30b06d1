// API clients (issue 16, item 1): OAuth2 client-credentials clients of a tenant, with the scopes they may be
// granted. Secrets are stored only as slow hashes (lib/secret-hash.ts); after a rotation the previous hash stays
// valid until previous_valid_until, so a fleet can move to the new secret without a moment of refusals.
// revoked_at set: the client is refused from then on. `version` guards every change (read, then write where
// the version is still the one read).
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("api_clients")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull().references("tenants.id"))
    .addColumn("name", "text")
    .addColumn("scope", "text", (c) => c.notNull())
    .addColumn("secret_hash", "text", (c) => c.notNull())
    .addColumn("previous_secret_hash", "text")
    .addColumn("previous_valid_until", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("rotated_at", "text")
    .addColumn("revoked_at", "text")
    .addColumn("version", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex("api_clients_tenant").on("api_clients").columns(["tenant_id", "id"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("api_clients").execute();
}
