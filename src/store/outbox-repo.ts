// The event outbox: events are written in the transaction of the change that caused them, and delivered
// later by jobs/, so an event exists if and only if its change committed.
import { chunksOf } from "./chunks.js";
import type { Db } from "./db.js";
import { everyColumn, prepared } from "./prepared.js";
import type { OutboxEventsTable } from "./schema.js";

const COLUMNS: Record<keyof OutboxEventsTable, true> = {
  id: true,
  tenant_id: true,
  card_id: true,
  type: true,
  payload: true,
  created_at: true,
};

export function createOutboxRepo(db: Db) {
  // The one event a service publishes with its change (a card created, a counter blocked): compiled once, and
  // deferred on PostgreSQL like the audit row (write-behind.ts).
  const insertOne = prepared(
    (p: OutboxEventsTable) => db.insertInto("outbox_events").values(everyColumn(p, COLUMNS)),
    "deferred",
  );

  return {
    /** Many events with one statement per chunk (the rotation scheduler publishes thousands at once). */
    async insertMany(rows: readonly OutboxEventsTable[], tx: Db = db): Promise<void> {
      if (rows.length === 1) await insertOne(tx, rows[0]!);
      else for (const chunk of chunksOf(rows)) await tx.insertInto("outbox_events").values(chunk).execute();
    },
    page(
      tenantId: string,
      options: { after?: string; type?: string; limit: number },
      tx: Db = db,
    ): Promise<OutboxEventsTable[]> {
      let query = tx.selectFrom("outbox_events").selectAll().where("tenant_id", "=", tenantId);
      if (options.after) query = query.where("id", ">", options.after);
      if (options.type) query = query.where("type", "=", options.type);
      return query.orderBy("id").limit(options.limit).execute();
    },
    list(tenantId: string, tx: Db = db): Promise<OutboxEventsTable[]> {
      return tx
        .selectFrom("outbox_events")
        .selectAll()
        .where("tenant_id", "=", tenantId)
        .orderBy("id")
        .execute();
    },
  };
}

export type OutboxRepo = ReturnType<typeof createOutboxRepo>;
