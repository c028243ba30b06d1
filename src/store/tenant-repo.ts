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
    list(tx: Db = db): Promise<TenantRow[]> {
      return tx.selectFrom("tenants").selectAll().orderBy("id").execute();
    },
  };
}

export type TenantRepo = ReturnType<typeof createTenantRepo>;
