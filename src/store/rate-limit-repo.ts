// Rate-limit counters. Each attempt is counted by one INSERT … ON CONFLICT DO UPDATE … RETURNING (SQLite ≥ 3.35
// and PostgreSQL alike): the increment and the read are one atomic statement, so concurrent attempts on any
// number of processes are all counted and none is lost.
import type { Db } from "./db.js";
import { prepared } from "./prepared.js";

export function createRateLimitRepo(db: Db) {
  // One prepared statement per number of buckets (a tenant's, plus a card's when there is one).
  const increments = new Map<number, ReturnType<typeof incrementOf>>();
  const incrementOf = (count: number) =>
    prepared((p: Record<string, string>) =>
      db
        .insertInto("rate_limits")
        .values(
          Array.from({ length: count }, (_, i) => ({
            bucket: p[`bucket${i}`]!,
            window_start: p.window!,
            count: 1,
          })),
        )
        .onConflict((oc) =>
          oc
            .columns(["bucket", "window_start"])
            .doUpdateSet((eb) => ({ count: eb("rate_limits.count", "+", 1) })),
        )
        .returning(["bucket", "count"]),
    );
  const valuesOf = (buckets: readonly string[], windowStart: string) => {
    const values: Record<string, string> = { window: windowStart };
    buckets.forEach((bucket, i) => {
      values[`bucket${i}`] = bucket;
    });
    return values;
  };

  return {
    /** Adds one to each bucket's count in this window and returns the counts after the increment. */
    async increment(
      buckets: readonly string[],
      windowStart: string,
      tx: Db = db,
    ): Promise<Map<string, number>> {
      let increment = increments.get(buckets.length);
      if (!increment) {
        increment = incrementOf(buckets.length);
        increments.set(buckets.length, increment);
      }
      const { rows } = await increment(tx, valuesOf(buckets, windowStart));
      return new Map(rows.map((r) => [r.bucket, Number(r.count)]));
    },

    /** Drops windows that ended before `before`; they can no longer block anything. */
    async prune(before: string, tx: Db = db): Promise<void> {
      await tx.deleteFrom("rate_limits").where("window_start", "<", before).execute();
    },
  };
}

export type RateLimitRepo = ReturnType<typeof createRateLimitRepo>;
