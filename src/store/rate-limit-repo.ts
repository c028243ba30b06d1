// Rate-limit counters. Each attempt is counted by one INSERT … ON CONFLICT DO UPDATE … RETURNING (SQLite ≥ 3.35
// and PostgreSQL alike): the increment and the read are one atomic statement, so concurrent attempts on any
// number of processes are all counted and none is lost. A row is one bucket's count in one window, and says
// when the window ends; past that it can no longer block anything and the purge removes it.
import type { Db } from "./db.js";
import { prepared } from "./prepared.js";

/** One bucket's count in one window. */
export interface WindowCount {
  bucket: string;
  windowStart: string;
  windowEnd: string;
}

export function createRateLimitRepo(db: Db) {
  // One prepared statement per number of buckets an attempt counts in.
  const increments = new Map<number, ReturnType<typeof incrementOf>>();
  const incrementOf = (count: number) =>
    prepared((p: Record<string, string>) =>
      db
        .insertInto("rate_limits")
        .values(
          Array.from({ length: count }, (_, i) => ({
            bucket: p[`bucket${i}`]!,
            window_start: p[`start${i}`]!,
            expires_at: p[`end${i}`]!,
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
  const valuesOf = (windows: readonly WindowCount[]) => {
    const values: Record<string, string> = {};
    windows.forEach((w, i) => {
      values[`bucket${i}`] = w.bucket;
      values[`start${i}`] = w.windowStart;
      values[`end${i}`] = w.windowEnd;
    });
    return values;
  };

  return {
    /** Adds one to each bucket's count in its window and returns the counts after the increment, by bucket. */
    async increment(windows: readonly WindowCount[], tx: Db = db): Promise<Map<string, number>> {
      let increment = increments.get(windows.length);
      if (!increment) {
        increment = incrementOf(windows.length);
        increments.set(windows.length, increment);
      }
      const { rows } = await increment(tx, valuesOf(windows));
      return new Map(rows.map((r) => [r.bucket, Number(r.count)]));
    },

    /** The counts of the given windows, by bucket (a window never counted is absent): a read, no increment. */
    async counts(windows: readonly WindowCount[], tx: Db = db): Promise<Map<string, number>> {
      if (windows.length === 0) return new Map();
      const rows = await tx
        .selectFrom("rate_limits")
        .select(["bucket", "count"])
        .where((eb) =>
          eb.or(
            windows.map((w) => eb.and([eb("bucket", "=", w.bucket), eb("window_start", "=", w.windowStart)])),
          ),
        )
        .execute();
      return new Map(rows.map((r) => [r.bucket, Number(r.count)]));
    },

    /** Deletes at most `limit` windows that ended before `now` (ISO); returns how many went. */
    async purgeExpired(now: string, limit: number, tx: Db = db): Promise<number> {
      const result = await tx
        .deleteFrom("rate_limits")
        .where(({ eb, refTuple, selectFrom }) =>
          eb(
            refTuple("bucket", "window_start"),
            "in",
            selectFrom("rate_limits as expired")
              .select(["expired.bucket", "expired.window_start"])
              .where("expired.expires_at", "<", now)
              .limit(limit)
              .$asTuple("bucket", "window_start"),
          ),
        )
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type RateLimitRepo = ReturnType<typeof createRateLimitRepo>;
