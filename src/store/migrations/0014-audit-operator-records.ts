// Audit records that belong to no tenant: refused requests whose token did not verify or named a tenant this
// service does not hold are the operator's (read with `cardvault audit list --operator`), so audit_events'
// tenant_id may now be null. PostgreSQL drops the NOT NULL in place. SQLite cannot alter a column, so the table
// is rebuilt by SQLite's documented procedure (new table, rows copied, old dropped, new renamed, index again) in
// the migration's transaction: a one-off copy of the audit table, taking time in proportion to its size.
import { type Kysely, SqliteAdapter, sql } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof SqliteAdapter)) {
    await db.schema
      .alterTable("audit_events")
      .alterColumn("tenant_id", (c) => c.dropNotNull())
      .execute();
    return;
  }
  await db.schema
    .createTable("audit_events_0014")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("tenant_id", "text")
    .addColumn("card_id", "text")
    .addColumn("public_token", "text")
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("action", "text", (c) => c.notNull())
    .addColumn("outcome", "text", (c) => c.notNull())
    .addColumn("request_id", "text")
    .addColumn("details", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await sql`insert into audit_events_0014 (id, tenant_id, card_id, public_token, actor, action, outcome, request_id, details, created_at)
    select id, tenant_id, card_id, public_token, actor, action, outcome, request_id, details, created_at from audit_events`.execute(
    db,
  );
  await db.schema.dropTable("audit_events").execute();
  await db.schema.alterTable("audit_events_0014").renameTo("audit_events").execute();
  await db.schema
    .createIndex("audit_events_tenant_id")
    .on("audit_events")
    .columns(["tenant_id", "id"])
    .execute();
}
