// Webhook formats (issue 16, item 2). An endpoint's format says in whose schema it receives events: cardvault's
// own (every existing endpoint) or Pismo's. A delivery may carry its own body, rendered when the event is
// published (a Pismo event); null means the event's cardvault payload in the outbox, as before.
import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("webhook_endpoints")
    .addColumn("format", "text", (c) => c.notNull().defaultTo("cardvault"))
    .execute();
  await db.schema.alterTable("webhook_deliveries").addColumn("payload", "text").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("webhook_deliveries").dropColumn("payload").execute();
  await db.schema.alterTable("webhook_endpoints").dropColumn("format").execute();
}
