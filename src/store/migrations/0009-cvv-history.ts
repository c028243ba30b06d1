// The CVV service codes a card had before its current one, most recent first (at most 10, a JSON array). A
// rotation must not bring back a CVV the card had in its last 10 rotations; CVVs are never stored, so the
// codes are kept and the CVVs derived from them again when a rotation draws a new one.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("cards")
    .addColumn("cvv_history", "text", (c) => c.notNull().defaultTo("[]"))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("cards").dropColumn("cvv_history").execute();
}
