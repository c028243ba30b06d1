// Card reveal sessions. consume() is one UPDATE … RETURNING guarded by "unused and unexpired" in SQL, so of
// any number of concurrent presentations of one token, on any number of processes, exactly one gets the row.
// The purge job deletes sessions long over (domain/reveal.ts sessionsPurgeableBefore) a bounded batch at a time.
import type { Db } from "./db.js";
import type { RevealSessionRow } from "./schema.js";

export function createRevealSessionRepo(db: Db) {
  return {
    async insert(row: RevealSessionRow, tx: Db = db): Promise<void> {
      await tx.insertInto("reveal_sessions").values(row).execute();
    },

    findByTokenHash(tokenHash: string, tx: Db = db): Promise<RevealSessionRow | undefined> {
      return tx
        .selectFrom("reveal_sessions")
        .selectAll()
        .where("token_hash", "=", tokenHash)
        .executeTakeFirst();
    },

    findById(id: string, tx: Db = db): Promise<RevealSessionRow | undefined> {
      return tx.selectFrom("reveal_sessions").selectAll().where("id", "=", id).executeTakeFirst();
    },

    /** When the card's sessions created at or after `since` were created (the hourly cap counts them). */
    async createdSince(tenantId: string, cardId: string, since: string, tx: Db = db): Promise<string[]> {
      const rows = await tx
        .selectFrom("reveal_sessions")
        .select("created_at")
        .where("tenant_id", "=", tenantId)
        .where("card_id", "=", cardId)
        .where("created_at", ">", since)
        .execute();
      return rows.map((r) => r.created_at);
    },

    /** Marks the session used if it is still unused and unexpired; undefined when another call won or it expired. */
    consume(tokenHash: string, now: string, tx: Db = db): Promise<RevealSessionRow | undefined> {
      return tx
        .updateTable("reveal_sessions")
        .set({ used_at: now })
        .where("token_hash", "=", tokenHash)
        .where("used_at", "is", null)
        .where("expires_at", ">", now)
        .returningAll()
        .executeTakeFirst();
    },

    /**
     * Deletes at most `limit` sessions that expired before `before`, oldest first (the expiry index finds them);
     * how many went. Concurrent calls may pick the same rows: each row goes once.
     */
    async purgeExpiredBefore(before: string, limit: number, tx: Db = db): Promise<number> {
      const result = await tx
        .deleteFrom("reveal_sessions")
        .where("id", "in", (eb) =>
          eb
            .selectFrom("reveal_sessions")
            .select("id")
            .where("expires_at", "<", before)
            .orderBy("expires_at")
            .limit(limit),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type RevealSessionRepo = ReturnType<typeof createRevealSessionRepo>;
