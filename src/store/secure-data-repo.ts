// Used Get Card Data session keys. claim() is one INSERT guarded by the primary key, so of any number of
// concurrent requests carrying the same key, on any number of processes, exactly one is let through.
import type { Db } from "./db.js";
import type { SecureDataSessionKeyRow } from "./schema.js";

export function createSecureDataRepo(db: Db) {
  return {
    /** True when this call is the first to use the key; false when it was used before. */
    async claim(row: SecureDataSessionKeyRow, tx: Db = db): Promise<boolean> {
      const result = await tx
        .insertInto("secure_data_session_keys")
        .values(row)
        .onConflict((oc) => oc.column("replay_id").doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },
  };
}

export type SecureDataRepo = ReturnType<typeof createSecureDataRepo>;
