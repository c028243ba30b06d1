// The audit trail: who did what to which card, with what outcome. record() runs inside the caller's
// transaction, so an audit row exists exactly when its change does. Details carry reasons and states, never
// a PAN, CVV, PIN, PIN block or key.

import type { Clock } from "../lib/clock.js";
import { uuidv7 } from "../lib/ids.js";
import type { AuditRepo } from "../store/audit-repo.js";
import type { Db } from "../store/db.js";
import type { AuditRow } from "../store/schema.js";
import { assertCursor, type Page, pageOf } from "./pagination.js";

/** Who is calling: taken from the verified token, plus the request id for correlation. */
export interface Actor {
  tenantId: string;
  subject: string;
  requestId?: string;
}

export interface AuditEntry {
  action: string;
  outcome: string;
  card?: { id: string; public_token: string };
  details?: Record<string, string | number | boolean | null | undefined>;
}

export type AuditRecorder = (tx: Db, actor: Actor, entry: AuditEntry) => Promise<void>;

export function createAuditRecorder(deps: { audit: AuditRepo; clock: Clock }): AuditRecorder {
  return async (tx, actor, entry) => {
    const details = entry.details
      ? Object.fromEntries(Object.entries(entry.details).filter(([, v]) => v !== undefined))
      : undefined;
    await deps.audit.insert(
      {
        id: uuidv7(deps.clock),
        tenant_id: actor.tenantId,
        card_id: entry.card?.id ?? null,
        public_token: entry.card?.public_token ?? null,
        actor: actor.subject,
        action: entry.action,
        outcome: entry.outcome,
        request_id: actor.requestId ?? null,
        details: details && Object.keys(details).length > 0 ? JSON.stringify(details) : null,
        created_at: deps.clock.now().toISOString(),
      },
      tx,
    );
  };
}

export interface AuditEventView {
  id: string;
  action: string;
  outcome: string;
  actor: string;
  publicToken: string | null;
  requestId: string | null;
  details: Record<string, unknown> | null;
  createdAt: string;
}

export function createAuditService(deps: { audit: AuditRepo }) {
  return {
    async list(actor: Actor, options: { cursor?: string; limit: number }): Promise<Page<AuditEventView>> {
      assertCursor(options.cursor);
      const rows = await deps.audit.list(actor.tenantId, { after: options.cursor, limit: options.limit + 1 });
      return pageOf(rows, options.limit, toView);
    },
  };
}

function toView(row: AuditRow): AuditEventView {
  return {
    id: row.id,
    action: row.action,
    outcome: row.outcome,
    actor: row.actor,
    publicToken: row.public_token,
    requestId: row.request_id,
    details: row.details ? (JSON.parse(row.details) as Record<string, unknown>) : null,
    createdAt: row.created_at,
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
