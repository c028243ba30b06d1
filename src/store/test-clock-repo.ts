// Test clocks: a sandbox tenant's frozen time that its cards follow instead of the system clock.
import type { Db } from "./db.js";
import type { TestClockRow } from "./schema.js";

export function createTestClockRepo(db: Db) {
  return {
    async insert(row: TestClockRow, tx: Db = db): Promise<void> {
      await tx.insertInto("test_clocks").values(row).execute();
    },
    find(tenantId: string, id: string, tx: Db = db): Promise<TestClockRow | undefined> {
      return tx
        .selectFrom("test_clocks")
        .selectAll()
        .where("tenant_id", "=", tenantId)
        .where("id", "=", id)
        .executeTakeFirst();
    },
    /** Moves the clock forward only: a concurrent advance to an earlier time changes nothing. */
    async advance(id: string, to: string, tx: Db = db): Promise<void> {
      await tx
        .updateTable("test_clocks")
        .set({ frozen_time: to })
        .where("id", "=", id)
        .where("frozen_time", "<", to)
        .execute();
    },
  };
}

export type TestClockRepo = ReturnType<typeof createTestClockRepo>;
