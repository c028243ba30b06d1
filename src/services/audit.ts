// The audit trail: who did what to which card, with what outcome. A recorder (one row, or a batch's rows in
// one statement per chunk) runs inside the caller's transaction, so an audit row exists exactly when its
// change does. Details carry reasons and states, never a PAN, CVV, PIN, PIN block, key or token.
// Refused requests (401/403 on authentication or authorisation) change nothing, so they are not written one by
// one: the refusal recorder counts them per caller and minute in memory, a bounded number of callers, and
// writes one row per caller and minute with the count — a flood of refused requests never becomes a flood of
// writes. A row goes in the tenant's trail when the token verified in a registered tenant, otherwise in the
// operator's (no tenant).

import type { LimitedAttempt } from "../domain/rate-limit.js";
import type { Clock } from "../lib/clock.js";
import { uuidv7 } from "../lib/ids.js";
import type { AuditRepo } from "../store/audit-repo.js";
import type { Db } from "../store/db.js";
import type { AuditRow } from "../store/schema.js";
import type { AuditAction, AuditDetails } from "./audit-catalog.js";
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

/** One record to write: its details are the ones its action declares in audit-catalog.ts. */
export type AuditEntry = { [A in AuditAction]: AuditEntryOf<A> }[AuditAction];

interface AuditEntryOf<A extends AuditAction> {
  action: A;
  outcome: string;
  card?: { id: string; public_token: string };
  details?: AuditDetails<A>;
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

/**
 * Told of every record written (the metrics, which count it once its transaction commits): it sees the action,
 * outcome and details — the same fixed words the row holds, never a secret.
 */
export type AuditObserver = (tx: Db, actor: Actor, entry: AuditEntry) => void;

/** The recorders, each also telling `observe` of what it wrote. */
export function observedRecorders(
  record: AuditRecorder,
  recordMany: AuditBatchRecorder,
  observe: AuditObserver,
): { record: AuditRecorder; recordMany: AuditBatchRecorder } {
  return {
    record: async (tx, actor, entry) => {
      await record(tx, actor, entry);
      observe(tx, actor, entry);
    },
    recordMany: async (tx, records) => {
      await recordMany(tx, records);
      for (const { actor, entry } of records) observe(tx, actor, entry);
    },
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

/** An operator's action outside any tenant (a key ceremony): who did it (`operator:<name>`) and what. */
export type OperatorAuditEntry = { actor: string } & AuditEntry;

/** Writes one operator record (tenant null, read with `cardvault audit list --operator`). */
export function createOperatorRecorder(deps: { audit: Pick<AuditRepo, "insert">; clock: Clock }) {
  return async (entry: OperatorAuditEntry): Promise<void> => {
    const row = auditRow(
      deps.clock,
      { tenantId: "", subject: entry.actor },
      entry,
      deps.clock.now().toISOString(),
    );
    await deps.audit.insert({ ...row, tenant_id: null });
  };
}

export type OperatorRecorder = ReturnType<typeof createOperatorRecorder>;

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
    /** A tenant's trail (the caller's), or with null the operator's records, oldest first. */
    async list(
      tenantId: string | null,
      options: { cursor?: string; limit: number },
    ): Promise<Page<AuditEventView>> {
      assertCursor(options.cursor);
      const rows = await deps.audit.list(tenantId, { after: options.cursor, limit: options.limit + 1 });
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

/** A refused request as the audit counts it: who, where, what answer; never the token or any part of it. */
export interface Refusal {
  /** The registered tenant the caller was refused in (a verified token lacking a scope); null: the operator's. */
  tenantId: string | null;
  /** The verified token's subject; `client:<address>` when no token verified. */
  caller: string;
  /** The answer's code (unauthorized, forbidden, unknown_tenant, reveal_session_invalid). */
  outcome: string;
  /** What else tells refusals of one caller apart: the scope it lacked, the tenant it named, why it was refused. */
  details: Omit<AuditDetails<"auth.refused">, "count" | "minute">;
  requestId: string;
}

/**
 * Distinct callers counted per minute in one process; the refusals of any further caller that minute are counted
 * together, under OTHER_CALLERS (by tenant and outcome), so memory and rows stay bounded whatever the flood.
 */
export const REFUSED_CALLERS_PER_MINUTE = 1000;
export const OTHER_CALLERS = "(other callers)";

interface Tally {
  refusal: Refusal;
  minute: string;
  count: number;
}

export function createRefusalRecorder(deps: { audit: Pick<AuditRepo, "insertMany">; clock: Clock }) {
  /** The minute being counted, and its tallies by caller (and what else tells refusals apart). */
  let minute = "";
  let counting = new Map<string, Tally>();
  /** Tallies of minutes that are over, waiting to be written. */
  let ended: Tally[] = [];

  const minuteOf = (at: Date) => new Date(Math.floor(at.getTime() / 60_000) * 60_000).toISOString();
  const keyOf = (r: Refusal) => JSON.stringify([r.tenantId, r.caller, r.outcome, r.details]);

  function endMinute() {
    ended.push(...counting.values());
    counting = new Map();
  }

  function rowOf(tally: Tally): AuditRow {
    const { refusal } = tally;
    return {
      id: uuidv7(deps.clock),
      tenant_id: refusal.tenantId,
      card_id: null,
      public_token: null,
      actor: refusal.caller,
      action: "auth.refused",
      outcome: refusal.outcome,
      // The minute's first refused request of this caller: the way into the request log for the rest.
      request_id: refusal.requestId,
      details: JSON.stringify({
        count: tally.count,
        minute: tally.minute,
        ...refusal.details,
      } satisfies AuditDetails<"auth.refused">),
      created_at: deps.clock.now().toISOString(),
    };
  }

  /** Writes the ended tallies, one row each; how many. Tallies that fail to be written are dropped. */
  async function write(): Promise<number> {
    const tallies = ended;
    ended = [];
    if (tallies.length > 0) await deps.audit.insertMany(tallies.map(rowOf));
    return tallies.length;
  }

  return {
    /** Counts one refused request in its minute; no I/O. */
    note(refusal: Refusal): void {
      const now = minuteOf(deps.clock.now());
      if (now !== minute) {
        endMinute();
        minute = now;
      }
      let key = keyOf(refusal);
      let tally = counting.get(key);
      if (!tally && counting.size >= REFUSED_CALLERS_PER_MINUTE) {
        refusal = { ...refusal, caller: OTHER_CALLERS, details: {} };
        key = keyOf(refusal);
        tally = counting.get(key);
      }
      if (!tally) {
        tally = { refusal, minute, count: 0 };
        counting.set(key, tally);
      }
      tally.count++;
    },

    /** Writes the counts of the minutes that are over (run every few seconds); how many rows. */
    async flushEnded(): Promise<number> {
      if (minuteOf(deps.clock.now()) !== minute) endMinute();
      return write();
    },

    /** Writes every count, the current minute's too (the process stops); how many rows. */
    async flush(): Promise<number> {
      endMinute();
      return write();
    },
  };
}

export type RefusalRecorder = ReturnType<typeof createRefusalRecorder>;
