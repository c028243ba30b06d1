// The tenant's event log, read back from the outbox: what webhooks deliver, available to poll as well.
import type { EventEnvelope } from "../events/catalog.js";
import type { OutboxRepo } from "../store/outbox-repo.js";
import type { Actor } from "./audit.js";
import { assertCursor, type Page, pageOf } from "./pagination.js";

/** An event as stored in the outbox (its payload was written from a NewEvent, so its data fits its type). */
export type EventView = EventEnvelope;

export function createEventService(deps: { outbox: OutboxRepo }) {
  return {
    async list(
      actor: Actor,
      options: { cursor?: string; type?: string; limit: number },
    ): Promise<Page<EventView>> {
      assertCursor(options.cursor);
      const rows = await deps.outbox.page(actor.tenantId, {
        after: options.cursor,
        type: options.type,
        limit: options.limit + 1,
      });
      // The payload is the envelope as published: {id, type, occurredAt, data}.
      return pageOf(rows, options.limit, (row) => JSON.parse(row.payload) as EventView);
    },
  };
}

export type EventService = ReturnType<typeof createEventService>;
