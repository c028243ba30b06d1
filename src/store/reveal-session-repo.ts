// Card reveal sessions. consume() is one UPDATE … RETURNING guarded by "unused and unexpired" in SQL, so of
// any number of concurrent presentations of one token, on any number of processes, exactly one gets the row.
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
  };
}

export type RevealSessionRepo = ReturnType<typeof createRevealSessionRepo>;
