// The event outbox: events are written in the transaction of the change that caused them, and delivered
// later by jobs/, so an event exists if and only if its change committed.
import type { Db } from "./db.js";
import type { OutboxEventsTable } from "./schema.js";

export function createOutboxRepo(db: Db) {
  return {
    async insert(row: OutboxEventsTable, tx: Db = db): Promise<void> {
      await tx.insertInto("outbox_events").values(row).execute();
    },
    list(tenantId: string, tx: Db = db): Promise<OutboxEventsTable[]> {
      return tx.selectFrom("outbox_events").selectAll().where("tenant_id", "=", tenantId).orderBy("id").execute();
    },
  };
}

export type OutboxRepo = ReturnType<typeof createOutboxRepo>;
