// Rate-limit counters. Each attempt is counted by one INSERT … ON CONFLICT DO UPDATE … RETURNING (SQLite ≥ 3.35
// and PostgreSQL alike): the increment and the read are one atomic statement, so concurrent attempts on any
// number of processes are all counted and none is lost. A row is one bucket's count in one window, and says
// when the window ends; past that it can no longer block anything and the purge removes it.
//
// A bucket every request of a tenant counts in (`tenant:<id>`) is, on PostgreSQL, spread over SHARDS rows
// (`tenant:<id>#0` … `#15`), one drawn at random per attempt: with one row, every attempt of the tenant queued
// behind that row's lock until the previous attempt's commit was flushed (issue 17: ≈ 400 verifies/s, most
// backends waiting on `Lock: transactionid`). The same statement adds the other shards' committed counts, so
// the count is the tenant's total; it misses only the attempts of transactions still in flight on other
// shards, at most one per open transaction (docs/security.md, "How exact each limit is"). SQLite has one
// writer at a time, so a row has no lock to queue on: its buckets stay one row each.
import { randomInt } from "node:crypto";
import { CompiledQuery } from "kysely";
import { memo } from "../lib/memo.js";
import type { Db, StoreKind } from "./db.js";
import { namedStatement, prepared } from "./prepared.js";

/** How many rows a sharded bucket is spread over on PostgreSQL. */
export const SHARDS = 16;

/** One bucket's count in one window. */
export interface WindowCount {
  bucket: string;
  windowStart: string;
  windowEnd: string;
  /** Counted by every attempt of a tenant: spread over SHARDS rows on PostgreSQL. */
  sharded?: boolean;
}

/** The row keys of a sharded bucket (one array per bucket, made once: every attempt of the tenant sends it). */
export const shardKeys = memo((bucket: string): readonly string[] =>
  Array.from({ length: SHARDS }, (_, i) => `${bucket}#${i}`),
);

/**
 * PostgreSQL: the increment of every row (a sharded bucket's drawn shard) and, in the same statement, the other
 * shards' counts as committed when it started. Returns each bucket's total under its own name. The last
 * statement of a limited operation's transaction: it carries the operation's waiting writes (the counter step,
 * the audit row) to the server with it (write-behind.ts).
 */
const postgresIncrement = memo((count: number) => namedStatement(postgresIncrementText(count), "carrier"));

function postgresIncrementText(count: number): string {
  const rows = Array.from({ length: count }, (_, i) => {
    const p = i * 5;
    return `($${p + 1}::text, $${p + 2}::text, $${p + 3}::text, $${p + 4}::text, $${p + 5}::text[])`;
  });
  return `with input (row_key, window_start, expires_at, bucket, shards) as (values ${rows.join(", ")}),
counted as (
  insert into rate_limits (bucket, window_start, expires_at, count)
  select row_key, window_start, expires_at, 1 from input
  on conflict (bucket, window_start) do update set count = rate_limits.count + 1
  returning bucket, count
)
select input.bucket, counted.count + coalesce((
  select sum(other.count) from rate_limits other
  where other.bucket = any(input.shards) and other.bucket <> input.row_key
    and other.window_start = input.window_start), 0) as count
from counted join input on input.row_key = counted.bucket`;
}

export function createRateLimitRepo(db: Db, kind: StoreKind = "sqlite") {
  // SQLite: one prepared statement per number of buckets an attempt counts in.
  const incrementOf = memo((count: number) =>
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
    ),
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
      if (kind === "postgres") {
        const parameters = windows.flatMap((w) => {
          const shards = w.sharded ? shardKeys(w.bucket) : [];
          const row = w.sharded ? shards[randomInt(SHARDS)]! : w.bucket;
          return [row, w.windowStart, w.windowEnd, w.bucket, shards];
        });
        const { rows } = await tx.executeQuery(
          CompiledQuery.raw(postgresIncrement(windows.length), parameters) as CompiledQuery<{
            bucket: string;
            count: string | number;
          }>,
        );
        return new Map(rows.map((r) => [r.bucket, Number(r.count)]));
      }
      const { rows } = await incrementOf(windows.length)(tx, valuesOf(windows));
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
