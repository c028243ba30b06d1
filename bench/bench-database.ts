// A fresh PostgreSQL database for one bench run: created on the local server, migrated, and dropped after the
// run. Invariant: the bench only ever talks to 127.0.0.1 (main.ts checks the URL) and never reuses a database.
import pg from "pg";
import { loadConfig } from "../src/config.js";
import { connectStore } from "../src/runtime.js";
import { ensureSchema } from "../src/store/db.js";
import { createFreshDatabase, type FreshDatabase } from "../test/helpers/test-database.js";

export type BenchDatabase = FreshDatabase;

export async function createBenchDatabase(baseUrl: string): Promise<BenchDatabase> {
  const database = await createFreshDatabase(baseUrl, "cardvault_bench");
  const migrating = connectStore(loadConfig({ CARDVAULT_DATABASE_URL: database.url }));
  try {
    await ensureSchema(migrating.db, { migrate: true });
  } finally {
    await migrating.close();
  }
  return database;
}

/**
 * Samples `pg_stat_activity` every `everyMs` while a run goes on: how many of the database's active backends
 * waited on what (`wait_event_type: wait_event`, or "CPU" when not waiting). stop() returns the tallies.
 */
export function sampleWaitEvents(baseUrl: string, database: string, everyMs = 50) {
  const client = new pg.Client({ connectionString: baseUrl });
  const tally = new Map<string, number>();
  let samples = 0;
  let running = true;
  const done = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ wait: string; n: string }>(
        `select coalesce(wait_event_type || ': ' || wait_event, 'CPU') as wait, count(*) as n
           from pg_stat_activity where datname = $1 and state = 'active' and pid <> pg_backend_pid()
          group by 1`,
        [database],
      );
      samples++;
      for (const r of rows) tally.set(r.wait, (tally.get(r.wait) ?? 0) + Number(r.n));
      await new Promise((r) => setTimeout(r, everyMs));
    }
    await client.end();
  })();
  return {
    async stop(): Promise<{ samples: number; waits: [string, number][] }> {
      running = false;
      await done;
      return { samples, waits: [...tally].sort((a, b) => b[1] - a[1]) };
    },
  };
}
