// Card imports (issue 15): a program moving from another processor brings its cards. Cards gain the vendor
// alias a Pismo program knows them by (an integer card id, unique within the tenant; null for every card not
// imported with one). card_imports keeps what an API import did — its counts and each rejected line's number
// and reason, never a line's content — for GET /v1/card-imports/{id}.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("cards").addColumn("pismo_id", "bigint").execute();
  // NULLs are distinct in a unique index on both SQLite and PostgreSQL: cards without an alias never collide.
  await db.schema
    .createIndex("cards_tenant_pismo_id")
    .on("cards")
    .columns(["tenant_id", "pismo_id"])
    .unique()
    .execute();
  await db.schema
    .createTable("card_imports")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text", (c) => c.notNull())
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("dry_run", "integer", (c) => c.notNull())
    .addColumn("lines", "integer", (c) => c.notNull())
    .addColumn("imported", "integer", (c) => c.notNull())
    .addColumn("already_present", "integer", (c) => c.notNull())
    .addColumn("rejected", "integer", (c) => c.notNull())
    /** JSON array of {line, reason}: line numbers and field-level reasons only. */
    .addColumn("rejects", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("finished_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("card_imports_tenant_id")
    .on("card_imports")
    .columns(["tenant_id", "id"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("card_imports").execute();
  await db.schema.dropIndex("cards_tenant_pismo_id").execute();
  await db.schema.alterTable("cards").dropColumn("pismo_id").execute();
}
