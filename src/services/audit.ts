// The audit trail: who did what to which card, with what outcome. A recorder (one row, or a batch's rows in
// one statement per chunk) runs inside the caller's transaction, so an audit row exists exactly when its
// change does. Details carry reasons and states, never a PAN, CVV, PIN, PIN block or key.

import type { LimitedAttempt } from "../domain/rate-limit.js";
import type { Clock } from "../lib/clock.js";
import { uuidv7 } from "../lib/ids.js";
import type { AuditRepo } from "../store/audit-repo.js";
import type { Db } from "../store/db.js";
import type { AuditRow } from "../store/schema.js";
import { assertCursor, type Page, pageOf } from "./pagination.js";

/**
 * Who is calling: taken from the verified token, plus the request id for correlation, and the limited
 * attempt the call makes when its route is rate limited (counted in the operation's transaction).
 */
export interface Actor {
  tenantId: string;
  subject: string;
  requestId?: string;
  attempt?: LimitedAttempt;
}

export interface AuditEntry {
  action: string;
  outcome: string;
  card?: { id: string; public_token: string };
  details?: Record<string, string | number | boolean | null | undefined>;
}

export type AuditRecorder = (tx: Db, actor: Actor, entry: AuditEntry) => Promise<void>;

/** Many records in one go, for batches (the rotation scheduler): each row as the single recorder writes it. */
export type AuditBatchRecorder = (
  tx: Db,
  records: readonly { actor: Actor; entry: AuditEntry }[],
) => Promise<void>;

function auditRow(clock: Clock, actor: Actor, entry: AuditEntry, createdAt: string): AuditRow {
  const details = entry.details
    ? Object.fromEntries(Object.entries(entry.details).filter(([, v]) => v !== undefined))
    : undefined;
  return {
    id: uuidv7(clock),
    tenant_id: actor.tenantId,
    card_id: entry.card?.id ?? null,
    public_token: entry.card?.public_token ?? null,
    actor: actor.subject,
    action: entry.action,
    outcome: entry.outcome,
    request_id: actor.requestId ?? null,
    details: details && Object.keys(details).length > 0 ? JSON.stringify(details) : null,
    created_at: createdAt,
  };
}

export function createAuditRecorder(deps: { audit: Pick<AuditRepo, "insert">; clock: Clock }): AuditRecorder {
  return async (tx, actor, entry) => {
    await deps.audit.insert(auditRow(deps.clock, actor, entry, deps.clock.now().toISOString()), tx);
  };
}

export function createAuditBatchRecorder(deps: {
  audit: Pick<AuditRepo, "insertMany">;
  clock: Clock;
}): AuditBatchRecorder {
  return async (tx, records) => {
    if (records.length === 0) return;
    const createdAt = deps.clock.now().toISOString();
    await deps.audit.insertMany(
      records.map((r) => auditRow(deps.clock, r.actor, r.entry, createdAt)),
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
