// Keys per card program (issue 14, item 4): a tenant may name its own CVK and PVK (imported by a key ceremony,
// e.g. the keys its existing cards were issued under). Null: the provider's active version, as before. Cards
// record the key they were created under (cards.cvk_id, cards.pvk_id), so changing these never moves a card.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("tenants").addColumn("cvk_id", "text").execute();
  await db.schema.alterTable("tenants").addColumn("pvk_id", "text").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("tenants").dropColumn("pvk_id").execute();
  await db.schema.alterTable("tenants").dropColumn("cvk_id").execute();
}
