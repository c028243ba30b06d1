// The rolling wrong-try budget of each card's CVV and PIN (domain/tries.ts): the times of the secret's last
// wrong tries, as many as the budget counts (24-character ISO times, concatenated; '' for none), and when the
// secret was found compromised (null: it is not). An unblock touches neither; a rotated CVV or a new PIN
// clears both.
import type { Kysely } from "kysely";

const columns = ["cvv", "pin"].flatMap((secret) => [`${secret}_wrong_tries`, `${secret}_compromised_at`]);

export async function up(db: Kysely<unknown>): Promise<void> {
  // One column per statement: SQLite adds one column per ALTER TABLE.
  for (const secret of ["cvv", "pin"]) {
    await db.schema
      .alterTable("cards")
      .addColumn(`${secret}_wrong_tries`, "text", (c) => c.notNull().defaultTo(""))
      .execute();
    await db.schema.alterTable("cards").addColumn(`${secret}_compromised_at`, "text").execute();
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const column of columns) await db.schema.alterTable("cards").dropColumn(column).execute();
}
