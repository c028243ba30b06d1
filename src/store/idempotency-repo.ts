// Idempotency keys. A key is claimed by inserting its row (the primary key makes the claim atomic across
// processes), completed with the response, and replayed to every retry until it expires; the purge job deletes
// expired rows a bounded batch at a time.
import type { Db } from "./db.js";
import type { IdempotencyKeysTable } from "./schema.js";

export type IdempotencyRecord = IdempotencyKeysTable;

export function createIdempotencyRepo(db: Db) {
  return {
    /** True when this call claimed the key; false when a row (live or expired) already holds it. */
    async claim(row: IdempotencyRecord, tx: Db = db): Promise<boolean> {
      const result = await tx
        .insertInto("idempotency_keys")
        .values(row)
        .onConflict((oc) => oc.columns(["tenant_id", "key"]).doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },
    find(tenantId: string, key: string, tx: Db = db): Promise<IdempotencyRecord | undefined> {
      return tx
        .selectFrom("idempotency_keys")
        .selectAll()
        .where("tenant_id", "=", tenantId)
        .where("key", "=", key)
        .executeTakeFirst();
    },
    async complete(
      tenantId: string,
      key: string,
      response: { status: number; body: string; expiresAt: string },
      tx: Db = db,
    ): Promise<void> {
      await tx
        .updateTable("idempotency_keys")
        .set({
          state: "done",
          response_status: response.status,
          response_body: response.body,
          expires_at: response.expiresAt,
        })
        .where("tenant_id", "=", tenantId)
        .where("key", "=", key)
        .execute();
    },
    async release(tenantId: string, key: string, tx: Db = db): Promise<void> {
      await tx
        .deleteFrom("idempotency_keys")
        .where("tenant_id", "=", tenantId)
        .where("key", "=", key)
        .execute();
    },
    /** Deletes the row only if it is still the expired one we saw, so two processes cannot both re-claim it. */
    async deleteExpired(tenantId: string, key: string, now: string, tx: Db = db): Promise<void> {
      await tx
        .deleteFrom("idempotency_keys")
        .where("tenant_id", "=", tenantId)
        .where("key", "=", key)
        .where("expires_at", "<=", now)
        .execute();
    },
    /**
     * Deletes at most `limit` keys that expired at or before `now`, oldest first (the expiry index finds them;
     * the primary key deletes them); how many went. Concurrent calls may pick the same rows: each row goes once.
     */
    async purgeExpired(now: string, limit: number, tx: Db = db): Promise<number> {
      const result = await tx
        .deleteFrom("idempotency_keys")
        .where(({ eb, refTuple, selectFrom }) =>
          eb(
            refTuple("tenant_id", "key"),
            "in",
            selectFrom("idempotency_keys")
              .select(["tenant_id", "key"])
              .where("expires_at", "<=", now)
              .orderBy("expires_at")
              .limit(limit)
              .$asTuple("tenant_id", "key"),
          ),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type IdempotencyRepo = ReturnType<typeof createIdempotencyRepo>;
