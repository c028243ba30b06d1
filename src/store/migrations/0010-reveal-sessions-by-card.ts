// The per-card hourly cap on reveal sessions counts a card's sessions of the last hour when one is minted:
// an index on (tenant, card, creation) keeps that one range read however many sessions the table holds.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex("reveal_sessions_card_created")
    .on("reveal_sessions")
    .columns(["tenant_id", "card_id", "created_at"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("reveal_sessions_card_created").execute();
}
