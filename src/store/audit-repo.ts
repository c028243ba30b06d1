// The append-only audit trail. Rows are written inside the transaction of the change they record; ids are
// UUIDv7, so id order is time order and serves as the pagination cursor. A row without a tenant is the
// operator's (refused requests no registered tenant owns); a tenant's list never includes one.
import { chunksOf } from "./chunks.js";
import type { Db } from "./db.js";
import { everyColumn, prepared } from "./prepared.js";
import type { AuditRow } from "./schema.js";

const COLUMNS: Record<keyof AuditRow, true> = {
  id: true,
  tenant_id: true,
  card_id: true,
  public_token: true,
  actor: true,
  action: true,
  outcome: true,
  request_id: true,
  details: true,
  created_at: true,
};

export function createAuditRepo(db: Db) {
  // Every verify writes one: compiled once (prepared.ts), and on PostgreSQL it waits to travel with the
  // transaction's next statement (write-behind.ts): nothing reads its answer.
  const insertOne = prepared(
    (p: AuditRow) => db.insertInto("audit_events").values(everyColumn(p, COLUMNS)),
    "deferred",
  );

  return {
    async insert(row: AuditRow, tx: Db = db): Promise<void> {
      await insertOne(tx, row);
    },
    /** Many rows with one statement per chunk (a scheduler batch audits thousands of rotations at once). */
    async insertMany(rows: readonly AuditRow[], tx: Db = db): Promise<void> {
      for (const chunk of chunksOf(rows)) await tx.insertInto("audit_events").values(chunk).execute();
    },
    /** A tenant's rows, or (null) the operator's. */
    list(
      tenantId: string | null,
      options: { after?: string; limit: number; cardId?: string },
      tx: Db = db,
    ): Promise<AuditRow[]> {
      let query = tx
        .selectFrom("audit_events")
        .selectAll()
        .where("tenant_id", tenantId === null ? "is" : "=", tenantId);
      if (options.after) query = query.where("id", ">", options.after);
      if (options.cardId) query = query.where("card_id", "=", options.cardId);
      return query.orderBy("id").limit(options.limit).execute();
    },
  };
}

export type AuditRepo = ReturnType<typeof createAuditRepo>;
