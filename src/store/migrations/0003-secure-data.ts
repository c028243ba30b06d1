// Get Card Data: the session keys already used (a wrapped key delivers card secrets once), and the tenant
// switch that adds the PIN to the payload. Only digests of session keys are kept, never a key.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("tenants")
    .addColumn("secure_data_pin", "integer", (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable("secure_data_session_keys")
    // A digest of the session key (or the device key's JWK thumbprint): the primary key makes "once" atomic.
    .addColumn("replay_id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull().references("tenants.id"))
    .addColumn("card_id", "text", (c) => c.notNull())
    .addColumn("used_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("secure_data_session_keys_used_at")
    .on("secure_data_session_keys")
    .column("used_at")
    .execute();
}
