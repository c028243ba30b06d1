// The purge job: deletes rows that are past their life (expired idempotency keys, reveal sessions long over),
// which nothing else ever removes. Bounded per run: each purger deletes at most `batchSize` rows in one
// statement of its own, so a run never holds a long transaction or lock, and a backlog goes over the next runs.
// Deletes are idempotent (a row already gone is simply not counted), so any number of processes may run the job
// at once. Another table that grows without bound gets its purger by one line in the list (runtime.ts).
import type { Clock } from "../lib/clock.js";
import type { Job } from "./runner.js";

export interface Purger {
  /** The table (or kind of row) it purges, for the operator's log. */
  name: string;
  /** Deletes at most `limit` rows past their life at `now`; how many it deleted. */
  purge(now: Date, limit: number): Promise<number>;
}

export interface PurgeJobDeps {
  purgers: readonly Purger[];
  clock: Clock;
  /** Rows each purger deletes at most per run (config.purgeBatchSize). */
  batchSize: number;
}

export function createPurgeJob(deps: PurgeJobDeps): Job {
  return {
    name: "purge",
    /** One bounded delete per purger; how many rows went in all. */
    async runOnce(): Promise<number> {
      const now = deps.clock.now();
      let total = 0;
      for (const purger of deps.purgers) total += await purger.purge(now, deps.batchSize);
      return total;
    },
  };
}
