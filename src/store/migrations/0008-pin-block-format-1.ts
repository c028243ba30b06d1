// A tenant setting: whether PIN verification accepts ISO 9564 format-1 blocks, which are not bound to the PAN
// (a block captured for one card verifies against any card with the same PIN). Off by default.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("tenants")
    .addColumn("allow_pin_block_format_1", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("tenants").dropColumn("allow_pin_block_format_1").execute();
}
