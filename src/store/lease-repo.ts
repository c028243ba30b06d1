// Job leases: a named lease held by one process until it expires, so periodic work that must not run twice
// at once (the rotation scheduler on SQLite) has a single owner, and a crashed owner is replaced.
import type { Db } from "./db.js";

export function createLeaseRepo(db: Db) {
  return {
    /** Takes or renews the lease; true when `holder` owns it until `expiresAt`. */
    async acquire(
      name: string,
      holder: string,
      now: string,
      expiresAt: string,
      tx: Db = db,
    ): Promise<boolean> {
      await tx
        .insertInto("job_leases")
        .values({ name, holder, expires_at: expiresAt })
        .onConflict((oc) => oc.column("name").doNothing())
        .execute();
      const result = await tx
        .updateTable("job_leases")
        .set({ holder, expires_at: expiresAt })
        .where("name", "=", name)
        .where((eb) => eb.or([eb("holder", "=", holder), eb("expires_at", "<", now)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async release(name: string, holder: string, tx: Db = db): Promise<void> {
      await tx.deleteFrom("job_leases").where("name", "=", name).where("holder", "=", holder).execute();
    },
  };
}

export type LeaseRepo = ReturnType<typeof createLeaseRepo>;
