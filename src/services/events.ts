// The tenant's event log, read back from the outbox: what webhooks deliver, available to poll as well.
import type { OutboxRepo } from "../store/outbox-repo.js";
import type { Actor } from "./audit.js";
import { assertCursor, type Page, pageOf } from "./pagination.js";

export interface EventView {
  id: string;
  type: string;
  occurredAt: string;
  data: Record<string, unknown>;
}

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
      return pageOf(rows, options.limit, (row) => {
        const payload = JSON.parse(row.payload) as EventView;
        return { id: row.id, type: row.type, occurredAt: payload.occurredAt, data: payload.data };
      });
    },
  };
}

export type EventService = ReturnType<typeof createEventService>;
