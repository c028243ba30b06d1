// Tenants: the card programs this service holds cards for, with their BIN and try limits.
import type { Db } from "./db.js";
import { prepared } from "./prepared.js";
import type { TenantRow } from "./schema.js";

export function createTenantRepo(db: Db) {
  // Every card creation reads its tenant: compiled once (prepared.ts).
  const byId = prepared((p: { id: string }) => db.selectFrom("tenants").selectAll().where("id", "=", p.id));

  return {
    async insert(row: TenantRow, tx: Db = db): Promise<boolean> {
      const result = await tx
        .insertInto("tenants")
        .values(row)
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },
    async find(id: string, tx: Db = db): Promise<TenantRow | undefined> {
      return (await byId(tx, { id })).rows[0];
    },
    /**
     * Names the tenant's CVK and PVK, guarded by the ones it was read with: false when the tenant is gone or
     * its keys changed since (the caller reads again).
     */
    async updateKeys(
      id: string,
      expected: { cvk_id: string | null; pvk_id: string | null },
      next: { cvk_id: string | null; pvk_id: string | null },
      tx: Db = db,
    ): Promise<boolean> {
      const result = await tx
        .updateTable("tenants")
        .set(next)
        .where("id", "=", id)
        .where("cvk_id", expected.cvk_id === null ? "is" : "=", expected.cvk_id)
        .where("pvk_id", expected.pvk_id === null ? "is" : "=", expected.pvk_id)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    list(tx: Db = db): Promise<TenantRow[]> {
      return tx.selectFrom("tenants").selectAll().orderBy("id").execute();
    },
  };
}

export type TenantRepo = ReturnType<typeof createTenantRepo>;
