// A row version on cards: every change a service decides from what it read (status, PIN, CVV rotation,
// schedule) is written only if the version is still the one it read, and moves the version on. A counter
// step is guarded by it too, so a try is never counted against a PIN or CVV that changed since it was read.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("cards")
    .addColumn("version", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("cards").dropColumn("version").execute();
}
