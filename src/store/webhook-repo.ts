// Webhook endpoints and their deliveries. A delivery is claimed by writing a lease (locked_until + a random
// lock token) in one guarded UPDATE, and its outcome is written only by the holder of that token while it is
// still pending: several senders never send the same attempt at once, and a late sender cannot overwrite.
// A tenant's count of live endpoints is kept on its row, so the cap on endpoints is one guarded UPDATE.
import type { ExpressionBuilder } from "kysely";
import { chunksOf } from "./chunks.js";
import type { Db } from "./db.js";
import { prepared } from "./prepared.js";
import type { Database, WebhookDeliveriesTable, WebhookDeliveryRow, WebhookEndpointRow } from "./schema.js";

/** What the sender needs for one claimed delivery. */
export interface ClaimedDelivery {
  id: string;
  tenant_id: string;
  endpoint_id: string;
  event_id: string;
  attempts: number;
  url: string;
  secret_sealed: string;
  payload: string;
  webhooks_allow_private: number;
}

export type AttemptOutcome = Pick<
  WebhookDeliveriesTable,
  | "status"
  | "attempts"
  | "next_attempt_at"
  | "last_attempt_at"
  | "last_status_code"
  | "last_error"
  | "updated_at"
>;

export function createWebhookRepo(db: Db) {
  const liveEndpoints = (tx: Db) =>
    tx
      .selectFrom("webhook_endpoints")
      .select(["id", "tenant_id", "event_types"])
      .where("deleted_at", "is", null);
  // Looked up with every event a service publishes: compiled once.
  const liveEndpointsOfTenant = prepared((p: { tenantId: string }) =>
    liveEndpoints(db).where("tenant_id", "=", p.tenantId).orderBy("id"),
  );

  return {
    /**
     * Adds the endpoint if its tenant has fewer than `cap` live endpoints; false (nothing written) otherwise.
     * The count is taken by one guarded UPDATE of the tenant's row, so concurrent creations cannot both pass it.
     */
    async insertEndpoint(row: WebhookEndpointRow, cap: number, tx: Db = db): Promise<boolean> {
      const counted = await tx
        .updateTable("tenants")
        .set((eb) => ({ webhook_endpoints: eb("webhook_endpoints", "+", 1) }))
        .where("id", "=", row.tenant_id)
        .where("webhook_endpoints", "<", cap)
        .executeTakeFirst();
      if (Number(counted.numUpdatedRows) !== 1) return false;
      await tx.insertInto("webhook_endpoints").values(row).execute();
      return true;
    },

    /** A live endpoint of this tenant; another tenant's or a deleted one is not found. */
    findEndpoint(tenantId: string, id: string, tx: Db = db): Promise<WebhookEndpointRow | undefined> {
      return tx
        .selectFrom("webhook_endpoints")
        .selectAll()
        .where("tenant_id", "=", tenantId)
        .where("id", "=", id)
        .where("deleted_at", "is", null)
        .executeTakeFirst();
    },

    listEndpoints(
      tenantId: string,
      options: { after?: string; limit: number },
      tx: Db = db,
    ): Promise<WebhookEndpointRow[]> {
      let query = tx
        .selectFrom("webhook_endpoints")
        .selectAll()
        .where("tenant_id", "=", tenantId)
        .where("deleted_at", "is", null);
      if (options.after) query = query.where("id", ">", options.after);
      return query.orderBy("id").limit(options.limit).execute();
    },

    /** Live endpoints of several tenants in one query: a batch of events looks its endpoints up once. */
    liveEndpointsOf(
      tenantIds: readonly string[],
      tx: Db = db,
    ): Promise<Pick<WebhookEndpointRow, "id" | "tenant_id" | "event_types">[]> {
      if (tenantIds.length === 0) return Promise.resolve([]);
      if (tenantIds.length === 1)
        return liveEndpointsOfTenant(tx, { tenantId: tenantIds[0]! }).then((result) => result.rows);
      return liveEndpoints(tx).where("tenant_id", "in", tenantIds).orderBy("id").execute();
    },

    /** Marks the endpoint deleted and cancels its pending deliveries. False when there was none to delete. */
    async deleteEndpoint(tenantId: string, id: string, now: string, tx: Db = db): Promise<boolean> {
      const result = await tx
        .updateTable("webhook_endpoints")
        .set({ deleted_at: now })
        .where("tenant_id", "=", tenantId)
        .where("id", "=", id)
        .where("deleted_at", "is", null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      await tx
        .updateTable("tenants")
        .set((eb) => ({ webhook_endpoints: eb("webhook_endpoints", "-", 1) }))
        .where("id", "=", tenantId)
        .execute();
      await tx
        .updateTable("webhook_deliveries")
        .set({ status: "canceled", next_attempt_at: null, last_error: "endpoint_deleted", updated_at: now })
        .where("endpoint_id", "=", id)
        .where("status", "=", "pending")
        .execute();
      return true;
    },

    async insertDeliveries(rows: readonly WebhookDeliveryRow[], tx: Db = db): Promise<void> {
      for (const chunk of chunksOf(rows)) await tx.insertInto("webhook_deliveries").values(chunk).execute();
    },

    listDeliveries(
      tenantId: string,
      endpointId: string,
      options: { after?: string; limit: number },
      tx: Db = db,
    ): Promise<WebhookDeliveryRow[]> {
      let query = tx
        .selectFrom("webhook_deliveries")
        .selectAll()
        .where("tenant_id", "=", tenantId)
        .where("endpoint_id", "=", endpointId);
      if (options.after) query = query.where("id", ">", options.after);
      return query.orderBy("id").limit(options.limit).execute();
    },

    /**
     * Leases up to `limit` due deliveries to `token` until `leaseUntil`, and returns them with what sending
     * needs. The UPDATE re-checks the lease condition, so of two senders racing for a row only one gets it
     * (on PostgreSQL the subquery can add FOR UPDATE SKIP LOCKED to stop them waiting on each other).
     */
    async claimDue(
      options: { now: string; leaseUntil: string; token: string; limit: number },
      tx: Db = db,
    ): Promise<ClaimedDelivery[]> {
      const { now, leaseUntil, token, limit } = options;
      const leaseFree = (eb: ExpressionBuilder<Database, "webhook_deliveries">) =>
        eb.or([eb("locked_until", "is", null), eb("locked_until", "<=", now)]);
      const due = tx
        .selectFrom("webhook_deliveries")
        .select("id")
        .where("status", "=", "pending")
        .where("next_attempt_at", "<=", now)
        .where(leaseFree)
        .orderBy("next_attempt_at")
        .limit(limit);
      await tx
        .updateTable("webhook_deliveries")
        .set({ locked_until: leaseUntil, lock_token: token })
        .where("id", "in", due)
        .where("status", "=", "pending")
        .where(leaseFree)
        .execute();
      return tx
        .selectFrom("webhook_deliveries as d")
        .innerJoin("webhook_endpoints as e", "e.id", "d.endpoint_id")
        .innerJoin("outbox_events as o", "o.id", "d.event_id")
        .innerJoin("tenants as t", "t.id", "d.tenant_id")
        .select([
          "d.id",
          "d.tenant_id",
          "d.endpoint_id",
          "d.event_id",
          "d.attempts",
          "e.url",
          "e.secret_sealed",
          "o.payload",
          "t.webhooks_allow_private",
        ])
        .where("d.lock_token", "=", token)
        .where("d.status", "=", "pending")
        .orderBy("d.next_attempt_at")
        .execute();
    },

    /** Records an attempt and releases the lease; only the lease holder can, and only while pending. */
    async finishAttempt(id: string, token: string, outcome: AttemptOutcome, tx: Db = db): Promise<boolean> {
      const result = await tx
        .updateTable("webhook_deliveries")
        .set({ ...outcome, locked_until: null, lock_token: null })
        .where("id", "=", id)
        .where("lock_token", "=", token)
        .where("status", "=", "pending")
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}

export type WebhookRepo = ReturnType<typeof createWebhookRepo>;
