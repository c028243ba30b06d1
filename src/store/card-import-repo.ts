// What API card imports did (card_imports, migration 0018): written once when an import finishes, read by
// GET /v1/card-imports/{id} within the tenant. Holds counts and rejected lines' numbers and reasons, never a
// line's content.
import type { Db } from "./db.js";
import type { CardImportsTable } from "./schema.js";

export function createCardImportRepo(db: Db) {
  return {
    async insert(row: CardImportsTable, tx: Db = db): Promise<void> {
      await tx.insertInto("card_imports").values(row).execute();
    },
    find(tenantId: string, id: string, tx: Db = db): Promise<CardImportsTable | undefined> {
      return tx
        .selectFrom("card_imports")
        .selectAll()
        .where("tenant_id", "=", tenantId)
        .where("id", "=", id)
        .executeTakeFirst();
    },
  };
}

export type CardImportRepo = ReturnType<typeof createCardImportRepo>;
