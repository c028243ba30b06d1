// Domain events, written to the outbox inside the transaction of the change they announce. Payloads name
// the card by public token and last four digits at most; never a PAN, CVV or PIN. Each event also queues one
// webhook delivery per live endpoint of its tenant that wants its type, in the same transaction: a
// cardvault-format endpoint gets the event's payload; a Pismo-format one gets the event's Pismo rendering,
// rendered here, and no delivery for an event that has none. An event happens at its card's time (a test
// clock's, for a sandbox card on one: services/card-clock.ts), which every caller must pass. Each type's data
// is the one catalog.ts declares (NewEvent is typed from it).
import { endpointWants, type PismoEvent, pismoEnvelope } from "../domain/webhooks.js";
import type { Clock } from "../lib/clock.js";
import { uuidv7 } from "../lib/ids.js";
import type { Db } from "../store/db.js";
import type { OutboxRepo } from "../store/outbox-repo.js";
import type { WebhookRepo } from "../store/webhook-repo.js";
import type { EventData, EventType } from "./catalog.js";

export { EVENT_TYPES, type EventType } from "./catalog.js";

/** An event to publish: its data is the one its type declares in catalog.ts. */
export type NewEvent = { [T in EventType]: NewEventOf<T> }[EventType];

interface NewEventOf<T extends EventType> {
  tenantId: string;
  cardId: string;
  type: T;
  data: EventData<T>;
  /**
   * When it happened on the card's clock (services/card-clock.ts): a test clock's time for a card on one.
   * Required, so no event type can fall back to the system's time for a sandbox card.
   */
  occurredAt: Date;
  /** The event in Pismo's schema, for Pismo-format endpoints; without it they do not receive the event. */
  pismo?: PismoEvent;
}

export type EventPublisher = (tx: Db, event: NewEvent) => Promise<void>;
export type BatchEventPublisher = (tx: Db, events: readonly NewEvent[]) => Promise<void>;

export interface PublisherDeps {
  outbox: Pick<OutboxRepo, "insertMany">;
  webhooks: Pick<WebhookRepo, "liveEndpointsOf" | "insertDeliveries">;
  clock: Clock;
}

/**
 * Publishes many events in the caller's transaction with a handful of statements: the events, one lookup of
 * the endpoints of the tenants involved, and a pending delivery per (event, endpoint that wants it).
 */
export function createBatchPublisher(deps: PublisherDeps): BatchEventPublisher {
  return async (tx, events) => {
    if (events.length === 0) return;
    // Queued and due at the system's time: a test clock's time says when the event happened, not when to send.
    const now = deps.clock.now().toISOString();
    const rows = events.map((event) => {
      const id = uuidv7(deps.clock);
      const occurredAt = event.occurredAt.toISOString();
      return {
        id,
        tenant_id: event.tenantId,
        card_id: event.cardId,
        type: event.type,
        payload: JSON.stringify({ id, type: event.type, occurredAt, data: event.data }),
        created_at: now,
        pismo: event.pismo && pismoEnvelope(event.pismo, { id, tenantId: event.tenantId, occurredAt }),
      };
    });
    await deps.outbox.insertMany(
      rows.map(({ pismo: _pismo, ...row }) => row),
      tx,
    );

    const endpoints = await deps.webhooks.liveEndpointsOf([...new Set(rows.map((r) => r.tenant_id))], tx);
    if (endpoints.length === 0) return;
    const deliveries = rows.flatMap((event) =>
      endpoints
        .filter(
          (e) =>
            e.tenant_id === event.tenant_id &&
            endpointWants(e.event_types, event.type) &&
            (e.format !== "pismo" || event.pismo !== undefined),
        )
        .map((e) => ({
          id: uuidv7(deps.clock),
          tenant_id: event.tenant_id,
          endpoint_id: e.id,
          event_id: event.id,
          event_type: event.type,
          payload: e.format === "pismo" ? event.pismo! : null,
          status: "pending",
          attempts: 0,
          next_attempt_at: now,
          locked_until: null,
          lock_token: null,
          last_attempt_at: null,
          last_status_code: null,
          last_error: null,
          created_at: now,
          updated_at: now,
        })),
    );
    await deps.webhooks.insertDeliveries(deliveries, tx);
  };
}

/** One event at a time: the call every service makes inside its transaction. */
export function createEventPublisher(deps: PublisherDeps): EventPublisher {
  const publishMany = createBatchPublisher(deps);
  return (tx, event) => publishMany(tx, [event]);
}
