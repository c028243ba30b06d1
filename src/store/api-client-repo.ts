// API clients (OAuth2 client credentials). Changes are guarded by the row's version: a rotation or revocation
// that lost a race to another one changes nothing and says so, instead of overwriting it.
import type { Db } from "./db.js";
import { prepared } from "./prepared.js";
import type { ApiClientRow } from "./schema.js";

export type NewApiClient = Omit<ApiClientRow, "version">;

export function createApiClientRepo(db: Db) {
  // Every token request reads its client: compiled once (prepared.ts).
  const byId = prepared((p: { id: string }) =>
    db.selectFrom("api_clients").selectAll().where("id", "=", p.id),
  );

  return {
    async insert(row: NewApiClient, tx: Db = db): Promise<void> {
      await tx.insertInto("api_clients").values(row).execute();
    },
    async find(id: string, tx: Db = db): Promise<ApiClientRow | undefined> {
      return (await byId(tx, { id })).rows[0];
    },
    /** A tenant's clients, or every client with no tenant given, by tenant and id. */
    list(tenantId: string | undefined, tx: Db = db): Promise<ApiClientRow[]> {
      let query = tx.selectFrom("api_clients").selectAll();
      if (tenantId !== undefined) query = query.where("tenant_id", "=", tenantId);
      return query.orderBy("tenant_id").orderBy("id").execute();
    },
    /** Applies `change` if the row is still at `version`; false when another change came first. */
    async update(
      id: string,
      version: number,
      change: Partial<
        Pick<
          ApiClientRow,
          "secret_hash" | "previous_secret_hash" | "previous_valid_until" | "rotated_at" | "revoked_at"
        >
      >,
      tx: Db = db,
    ): Promise<boolean> {
      const result = await tx
        .updateTable("api_clients")
        .set((eb) => ({ ...change, version: eb("version", "+", 1) }))
        .where("id", "=", id)
        .where("version", "=", version)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}

export type ApiClientRepo = ReturnType<typeof createApiClientRepo>;
