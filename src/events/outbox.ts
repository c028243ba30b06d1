// Domain events, written to the outbox inside the transaction of the change they announce. Payloads name
// the card by public token and last four digits at most; never a PAN, CVV or PIN.
import type { Clock } from "../lib/clock.js";
import { uuidv7 } from "../lib/ids.js";
import type { Db } from "../store/db.js";
import type { OutboxRepo } from "../store/outbox-repo.js";

export type EventType =
  | "card.created"
  | "card.cvv.changed"
  | "card.status.changed"
  | "cvv.blocked"
  | "cvv.unblocked"
  | "pin.changed"
  | "pin.blocked"
  | "pin.unblocked";

export type EventPublisher = (
  tx: Db,
  event: { tenantId: string; cardId: string; type: EventType; data: Record<string, unknown> },
) => Promise<void>;

export function createEventPublisher(deps: { outbox: OutboxRepo; clock: Clock }): EventPublisher {
  return async (tx, event) => {
    const id = uuidv7(deps.clock);
    const occurredAt = deps.clock.now().toISOString();
    await deps.outbox.insert(
      {
        id,
        tenant_id: event.tenantId,
        card_id: event.cardId,
        type: event.type,
        payload: JSON.stringify({ id, type: event.type, occurredAt, data: event.data }),
        created_at: occurredAt,
      },
      tx,
    );
  };
}
