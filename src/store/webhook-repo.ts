// Webhook endpoints and their deliveries. A delivery is claimed by writing a lease (locked_until + a random
// lock token) in one guarded UPDATE, and its outcome is written only by the holder of that token while it is
// still pending: several senders never send the same attempt at once, and a late sender cannot overwrite.
// Claims are fair between tenants and skip endpoints whose circuit breaker is open; the breaker's state lives
// on the endpoint row, so every sender process sees the same circuit. A tenant's count of live endpoints is
// kept on its row, so the cap on endpoints is one guarded UPDATE.
import { type ClaimCandidate, fairPick } from "../domain/webhooks.js";
import { chunksOf } from "./chunks.js";
import type { Db } from "./db.js";
import { prepared } from "./prepared.js";
import type { WebhookDeliveriesTable, WebhookDeliveryRow, WebhookEndpointRow } from "./schema.js";

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

export interface ClaimOptions {
  now: string;
  leaseUntil: string;
  token: string;
  /** Deliveries to lease at most: the sender's free slots. */
  limit: number;
  /** Attempts one tenant may have in flight over every sender. */
  tenantShare: number;
  /** Failures in a row that open an endpoint's circuit. */
  breakerFailures: number;
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
      .select(["id", "tenant_id", "event_types", "format"])
      .where("deleted_at", "is", null);
  // Looked up with every event a service publishes: compiled once.
  const liveEndpointsOfTenant = prepared((p: { tenantId: string }) =>
    liveEndpoints(db).where("tenant_id", "=", p.tenantId).orderBy("id"),
  );

  /** Attempts in flight per tenant: leased by any sender, the lease still running (a partial index of them). */
  async function inFlightByTenant(now: string, tx: Db): Promise<Map<string, number>> {
    const rows = await tx
      .selectFrom("webhook_deliveries")
      .select((eb) => ["tenant_id", eb.fn.countAll().as("n")])
      .where("lock_token", "is not", null)
      .where("locked_until", ">", now)
      .groupBy("tenant_id")
      .execute();
    return new Map(rows.map((row) => [row.tenant_id, Number(row.n)]));
  }

  /** Each tenant's earliest pending delivery time (one index lookup per tenant; null: nothing pending). */
  function waitingSince(tx: Db) {
    return tx
      .selectFrom("tenants as t")
      .select((eb) => [
        "t.id",
        eb
          .selectFrom("webhook_deliveries as d")
          .select((e) => e.fn.min("d.next_attempt_at").as("first"))
          .whereRef("d.tenant_id", "=", "t.id")
          .where("d.status", "=", "pending")
          .as("since"),
      ])
      .execute();
  }

  /**
   * A tenant's next `count` due, free deliveries, of endpoints whose circuit is closed or whose cool-down is
   * over: one range of the (tenant, status, due time, id) index, wrapped to be one part of a UNION ALL.
   */
  function nextDue(tenantId: string, count: number, options: ClaimOptions, tx: Db) {
    const { now, breakerFailures } = options;
    const due = tx
      .selectFrom("webhook_deliveries as d")
      .innerJoin("webhook_endpoints as e", "e.id", "d.endpoint_id")
      .select(["d.id", "d.tenant_id", "d.endpoint_id", "d.next_attempt_at", "e.consecutive_failures"])
      .where("d.tenant_id", "=", tenantId)
      .where("d.status", "=", "pending")
      .where("d.next_attempt_at", "<=", now)
      .where((eb) => eb.or([eb("d.locked_until", "is", null), eb("d.locked_until", "<=", now)]))
      .where((eb) =>
        eb.or([
          eb("e.consecutive_failures", "<", breakerFailures),
          eb("e.circuit_open_until", "is", null),
          eb("e.circuit_open_until", "<=", now),
        ]),
      )
      .orderBy("d.next_attempt_at")
      .orderBy("d.id")
      .limit(count);
    return tx.selectFrom(due.as("due")).selectAll();
  }

  /**
   * A probe holds its endpoint until its lease ends (its outcome closes or reopens the circuit before that), so
   * no other sender probes it meanwhile; of two senders probing one endpoint at once, the one that holds it
   * first keeps its probe and the other lets its delivery go.
   */
  async function holdProbedEndpoints(probes: ClaimCandidate[], options: ClaimOptions, tx: Db): Promise<void> {
    if (probes.length === 0) return;
    const { now, leaseUntil, token, breakerFailures } = options;
    const held = await tx
      .updateTable("webhook_endpoints")
      .set({ circuit_open_until: leaseUntil })
      .where(
        "id",
        "in",
        probes.map((c) => c.endpointId),
      )
      .where("consecutive_failures", ">=", breakerFailures)
      .where((eb) => eb.or([eb("circuit_open_until", "is", null), eb("circuit_open_until", "<=", now)]))
      .returning("id")
      .execute();
    const lost = probes.filter((c) => !held.some((row) => row.id === c.endpointId)).map((c) => c.id);
    if (lost.length === 0) return;
    await tx
      .updateTable("webhook_deliveries")
      .set({ locked_until: null, lock_token: null })
      .where("id", "in", lost)
      .where("lock_token", "=", token)
      .execute();
  }

  return {
    /** Deliveries waiting for an attempt, due or not (the metrics' queue depth). */
    async countPending(tx: Db = db): Promise<number> {
      const row = await tx
        .selectFrom("webhook_deliveries")
        .select((eb) => eb.fn.countAll<string | number>().as("n"))
        .where("status", "=", "pending")
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

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
    ): Promise<Pick<WebhookEndpointRow, "id" | "tenant_id" | "event_types" | "format">[]> {
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
     * needs. Fair between tenants (domain `fairPick`): the tenants with the fewest attempts in flight (leased by
     * any sender) come first, then the one waiting longest, and none gets more than `tenantShare` in flight, so
     * one tenant's backlog or slow receivers never fill the slots. Each tenant's next deliveries are read as one
     * indexed range, never the whole backlog. An endpoint whose circuit is open is skipped; one whose cool-down
     * is over gives one delivery (the probe). The lease UPDATE re-checks that each row is still due, pending and
     * free, so of two senders racing for a row only one gets it.
     */
    async claimDue(options: ClaimOptions, tx: Db = db): Promise<ClaimedDelivery[]> {
      const { now, leaseUntil, token, limit, tenantShare, breakerFailures } = options;
      const load = await inFlightByTenant(now, tx);
      const roomOf = (tenantId: string) => Math.min(tenantShare - (load.get(tenantId) ?? 0), limit);
      const waiting = (await waitingSince(tx))
        .filter((t) => t.since !== null && t.since <= now && roomOf(t.id) > 0)
        .sort((a, b) => (load.get(a.id) ?? 0) - (load.get(b.id) ?? 0) || a.since!.localeCompare(b.since!))
        .slice(0, limit);
      if (waiting.length === 0) return [];
      const [first, ...rest] = waiting.map((t) => nextDue(t.id, roomOf(t.id), options, tx));
      const rows = await rest.reduce((all, one) => all.unionAll(one), first!).execute();
      const picked = fairPick(
        waiting.map((t) => ({
          room: roomOf(t.id),
          candidates: rows
            .filter((row) => row.tenant_id === t.id)
            .sort((a, b) => a.next_attempt_at!.localeCompare(b.next_attempt_at!) || a.id.localeCompare(b.id))
            .map((row) => ({
              id: row.id,
              endpointId: row.endpoint_id,
              probe: row.consecutive_failures >= breakerFailures,
            })),
        })),
        limit,
      );
      if (picked.length === 0) return [];
      const leased = await tx
        .updateTable("webhook_deliveries")
        .set({ locked_until: leaseUntil, lock_token: token })
        .where(
          "id",
          "in",
          picked.map((c) => c.id),
        )
        .where("status", "=", "pending")
        .where("next_attempt_at", "<=", now)
        .where((eb) => eb.or([eb("locked_until", "is", null), eb("locked_until", "<=", now)]))
        .returning("id")
        .execute();
      await holdProbedEndpoints(
        picked.filter((c) => c.probe && leased.some((row) => row.id === c.id)),
        options,
        tx,
      );
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
          // The delivery's own body (a Pismo event), else the event's cardvault payload.
          (eb) => eb.fn.coalesce("d.payload", "o.payload").as("payload"),
          "t.webhooks_allow_private",
        ])
        .where("d.lock_token", "=", token)
        .where("d.status", "=", "pending")
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

    /** A delivered attempt closes the endpoint's circuit: no failures in a row, nothing to wait for. */
    async recordEndpointSuccess(endpointId: string, tx: Db = db): Promise<void> {
      await tx
        .updateTable("webhook_endpoints")
        .set({ consecutive_failures: 0, circuit_open_until: null })
        .where("id", "=", endpointId)
        .where((eb) => eb.or([eb("consecutive_failures", ">", 0), eb("circuit_open_until", "is not", null)]))
        .execute();
    },

    /**
     * Counts a failed attempt in the database (never read-modify-write: concurrent attempts all count). From the
     * `breakerFailures`-th in a row on, the circuit opens until `openUntil`, and the endpoint's waiting
     * deliveries are moved to then (none is lost; they fall due when a probe may be made). Returns the count.
     */
    async recordEndpointFailure(
      endpoint: { id: string; tenantId: string },
      options: { breakerFailures: number; now: string; openUntil: string },
      tx: Db = db,
    ): Promise<number> {
      const row = await tx
        .updateTable("webhook_endpoints")
        .set((eb) => ({
          consecutive_failures: eb("consecutive_failures", "+", 1),
          circuit_open_until: eb
            .case()
            .when("consecutive_failures", ">=", options.breakerFailures - 1)
            .then(options.openUntil)
            .else(eb.ref("circuit_open_until"))
            .end(),
        }))
        .where("id", "=", endpoint.id)
        .returning("consecutive_failures")
        .executeTakeFirst();
      const failures = row?.consecutive_failures ?? 0;
      if (failures >= options.breakerFailures) {
        // Leased ones are in flight: their own outcome sets when they are next due.
        await tx
          .updateTable("webhook_deliveries")
          .set({ next_attempt_at: options.openUntil, updated_at: options.now })
          .where("tenant_id", "=", endpoint.tenantId)
          .where("status", "=", "pending")
          .where("next_attempt_at", "<", options.openUntil)
          .where("endpoint_id", "=", endpoint.id)
          .where("lock_token", "is", null)
          .execute();
      }
      return failures;
    },
  };
}

export type WebhookRepo = ReturnType<typeof createWebhookRepo>;
