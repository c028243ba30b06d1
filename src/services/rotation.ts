// Dynamic CVVs for virtual cards: forced rotations, automatic ones on a schedule, and the interval.
// A rotation changes the card's CVV service code (the CVV is derived, never stored) to one that yields a
// different CVV, applies the pure scheduling rules of domain/rotation-schedule.ts, and announces itself with
// a card.cvv.changed event — never carrying the CVV — in the same transaction. The scheduler's path works a
// whole batch at once (one conditional UPDATE, one audit insert, one outbox insert): its cost per card is
// the cryptography, not round trips.
import { randomInt } from "node:crypto";
import { assertCardOpen, type CardStatus } from "../domain/card.js";
import { AppError, validationFailed } from "../domain/errors.js";
import {
  applyRotation,
  clearInterval,
  isValidInterval,
  type RotationSchedule,
  type RotationType,
  setInterval,
} from "../domain/rotation-schedule.js";
import type { BatchEventPublisher, NewEvent } from "../events/outbox.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { CardRepo, DueRotation, ScheduleColumns } from "../store/card-repo.js";
import type { Db, Store } from "../store/db.js";
import type { CardRow } from "../store/schema.js";
import type { Actor, AuditBatchRecorder, AuditEntry } from "./audit.js";
import type { CardClock } from "./card-clock.js";
import { findCard } from "./card-lookup.js";

export type OperationType = "ROTATE_CVV" | "CHANGE_CVV_ROTATION" | "DELETE_CVV_ROTATION";

export interface RotationView {
  intervalHours: number | null;
  nextRotationAt: string | null;
  lastRotatedAt: string | null;
}

export interface RotationResult {
  rotatedAt: string;
  rotationType: RotationType;
  nextRotationAt: string | null;
}

/** What a rotation or a schedule change announces, in its audit row and its event alike. */
interface Change {
  operationType: OperationType;
  rotationType: RotationType;
  nextRotationAt: string | null;
  intervalHours: number | null;
}

export interface RotationServiceDeps {
  store: Pick<Store, "transaction">;
  cards: CardRepo;
  keys: KeyProvider;
  recordMany: AuditBatchRecorder;
  publishMany: BatchEventPublisher;
  cardClock: CardClock;
}

/** Who automatic rotations are recorded as. */
export const SCHEDULER_SUBJECT = "system:rotation-scheduler";
const MAX_DRAWS = 50;
const MAX_RACES = 5;

export function scheduleOf(
  card: Pick<CardRow, "rotation_interval_hours" | "next_rotation_at" | "last_scheduled_at">,
): RotationSchedule {
  return {
    intervalHours: card.rotation_interval_hours,
    nextRotationAt: card.next_rotation_at ? new Date(card.next_rotation_at) : null,
    lastScheduledAt: card.last_scheduled_at ? new Date(card.last_scheduled_at) : null,
  };
}

export function scheduleColumns(schedule: RotationSchedule): ScheduleColumns {
  return {
    rotation_interval_hours: schedule.intervalHours,
    next_rotation_at: schedule.nextRotationAt?.toISOString() ?? null,
    last_scheduled_at: schedule.lastScheduledAt?.toISOString() ?? null,
  };
}

function drawServiceCode(current: string): string {
  let code = current;
  while (code === current) code = String(randomInt(0, 1000)).padStart(3, "0");
  return code;
}

function assertRotatable(card: CardRow): void {
  assertCardOpen(card.status as CardStatus);
  if (card.type !== "virtual") {
    throw new AppError("card_not_virtual", "Only virtual cards have a dynamic CVV; this card is physical.");
  }
}

export function createRotationService(deps: RotationServiceDeps) {
  const panOf = (card: CardRow) =>
    deps.keys.openPan(card.pan_sealed, { tenantId: card.tenant_id, cardId: card.id });
  const cvvInput = (card: CardRow, pan: string, serviceCode: string) => ({
    cvkId: card.cvk_id,
    pan,
    expiry: card.expiry,
    serviceCode,
  });

  /** New service codes for the cards, each yielding a CVV different from the card's current one. */
  async function newServiceCodes(cards: CardRow[], pans: string[]): Promise<string[]> {
    const current = await deps.keys.deriveCvvBatch(
      cards.map((c, i) => cvvInput(c, pans[i]!, c.cvv_service_code)),
    );
    const codes = cards.map((c) => drawServiceCode(c.cvv_service_code));
    let pending = cards.map((_, i) => i);
    for (let draw = 0; pending.length > 0; draw++) {
      if (draw === MAX_DRAWS)
        throw new AppError("internal_error", "Could not draw a service code giving a new CVV.");
      const cvvs = await deps.keys.deriveCvvBatch(
        pending.map((i) => cvvInput(cards[i]!, pans[i]!, codes[i]!)),
      );
      pending = pending.filter((i, j) => cvvs[j] === current[i]);
      for (const i of pending) codes[i] = drawServiceCode(cards[i]!.cvv_service_code);
    }
    return codes;
  }

  const auditOf = (actor: Actor, card: CardRow, change: Change): { actor: Actor; entry: AuditEntry } => ({
    actor,
    entry: {
      action: change.operationType === "ROTATE_CVV" ? "cvv.rotate" : "cvv.rotation.update",
      outcome: "success",
      card,
      details: { ...change },
    },
  });

  const eventOf = (card: CardRow, change: Change): NewEvent => ({
    tenantId: card.tenant_id,
    cardId: card.id,
    type: "card.cvv.changed",
    data: {
      publicToken: card.public_token,
      last4: card.pan_last4,
      rotationType: change.rotationType,
      operationType: change.operationType,
      nextRotationAt: change.nextRotationAt,
      rotationIntervalHours: change.intervalHours,
    },
  });

  async function announce(tx: Db, changes: readonly { actor: Actor; card: CardRow; change: Change }[]) {
    await deps.recordMany(
      tx,
      changes.map((c) => auditOf(c.actor, c.card, c.change)),
    );
    await deps.publishMany(
      tx,
      changes.map((c) => eventOf(c.card, c.change)),
    );
  }

  /** A forced rotation's write; null when a concurrent change got there first (the caller re-reads). */
  async function applyManual(tx: Db, actor: Actor, card: CardRow, serviceCode: string, now: Date) {
    const { schedule } = applyRotation(scheduleOf(card), now, "MANUAL");
    const columns = scheduleColumns(schedule);
    const applied = await deps.cards.rotate(
      card.id,
      { serviceCode: card.cvv_service_code },
      { ...columns, cvv_service_code: serviceCode, last_rotated_at: now.toISOString() },
      tx,
    );
    if (!applied) return null;
    const change: Change = {
      operationType: "ROTATE_CVV",
      rotationType: "MANUAL",
      nextRotationAt: columns.next_rotation_at,
      intervalHours: schedule.intervalHours,
    };
    await announce(tx, [{ actor, card, change }]);
    return {
      rotatedAt: now.toISOString(),
      rotationType: change.rotationType,
      nextRotationAt: change.nextRotationAt,
    };
  }

  /**
   * The automatic rotation of each claimed card at its own time, written together. A card whose service
   * code or due time moved since the claim is skipped (no audit row, no event): it is not rotated twice.
   */
  async function applyDue(
    tx: Db,
    due: readonly (CardRow & { clock_time: string | null })[],
    codes: string[],
    now: Date,
  ) {
    const planned = due.map((card, i) => {
      const cardNow = card.clock_time ? new Date(card.clock_time) : now;
      const { schedule } = applyRotation(scheduleOf(card), cardNow, "AUTOMATIC");
      const columns = scheduleColumns(schedule);
      const write: DueRotation = {
        id: card.id,
        expected: { serviceCode: card.cvv_service_code, dueAt: card.next_rotation_at! },
        changes: { ...columns, cvv_service_code: codes[i]!, last_rotated_at: cardNow.toISOString() },
      };
      const change: Change = {
        operationType: "ROTATE_CVV",
        rotationType: "AUTOMATIC",
        nextRotationAt: columns.next_rotation_at,
        intervalHours: schedule.intervalHours,
      };
      return { write, card, change, actor: { tenantId: card.tenant_id, subject: SCHEDULER_SUBJECT } };
    });
    const applied = await deps.cards.rotateDue(
      planned.map((p) => p.write),
      tx,
    );
    const rotated = planned.filter((p) => applied.has(p.card.id));
    await announce(tx, rotated);
    return rotated.length;
  }

  async function findRotatable(actor: Actor, publicToken: string): Promise<CardRow> {
    const card = await findCard(deps.cards, actor, publicToken);
    assertRotatable(card);
    return card;
  }

  function view(
    card: Pick<CardRow, "rotation_interval_hours" | "next_rotation_at" | "last_rotated_at">,
  ): RotationView {
    return {
      intervalHours: card.rotation_interval_hours,
      nextRotationAt: card.next_rotation_at,
      lastRotatedAt: card.last_rotated_at,
    };
  }

  async function changeSchedule(
    actor: Actor,
    publicToken: string,
    hours: number | null,
  ): Promise<RotationView> {
    const card = await findRotatable(actor, publicToken);
    const now = await deps.cardClock(card);
    const schedule = hours === null ? clearInterval(scheduleOf(card)) : setInterval(now, hours);
    const columns = scheduleColumns(schedule);
    await deps.store.transaction(async (tx) => {
      await deps.cards.setSchedule(card.id, columns, now.toISOString(), tx);
      const change: Change = {
        operationType: hours === null ? "DELETE_CVV_ROTATION" : "CHANGE_CVV_ROTATION",
        rotationType: "MANUAL",
        nextRotationAt: columns.next_rotation_at,
        intervalHours: hours,
      };
      await announce(tx, [{ actor, card, change }]);
    });
    return view({ ...card, ...columns });
  }

  return {
    /** A forced rotation: always rotates; reschedules only outside the two-minute window. */
    async rotate(
      actor: Actor,
      publicToken: string,
      options: { serviceCode?: string } = {},
    ): Promise<RotationResult> {
      if (options.serviceCode !== undefined && !/^[0-9]{3}$/.test(options.serviceCode)) {
        throw validationFailed("serviceCode", "serviceCode must be exactly 3 digits.");
      }
      for (let race = 0; race < MAX_RACES; race++) {
        const card = await findRotatable(actor, publicToken);
        const now = await deps.cardClock(card);
        const code = options.serviceCode ?? (await newServiceCodes([card], [await panOf(card)]))[0]!;
        const result = await deps.store.transaction((tx) => applyManual(tx, actor, card, code, now));
        if (result) return result;
      }
      throw new AppError("concurrent_update", "The card's CVV is being rotated by another request; retry.");
    },

    async get(actor: Actor, publicToken: string): Promise<RotationView> {
      return view(await findRotatable(actor, publicToken));
    },

    async setInterval(actor: Actor, publicToken: string, intervalHours: number): Promise<RotationView> {
      if (!isValidInterval(intervalHours)) {
        throw validationFailed("intervalHours", "intervalHours must be a whole number of hours, at least 1.");
      }
      return changeSchedule(actor, publicToken, intervalHours);
    },

    async deleteInterval(actor: Actor, publicToken: string): Promise<void> {
      await changeSchedule(actor, publicToken, null);
    },

    /**
     * Rotates up to `limit` due cards, each once for its due time and at the time of its own clock (the
     * system's `now`, or its test clock's). `testClockId` restricts the pass to one test clock. One
     * transaction: the claim, every rotation, its audit row and its event commit together.
     */
    runDue(now: Date, options: { limit: number; testClockId?: string }): Promise<number> {
      return deps.store.transaction(async (tx) => {
        const due = await deps.cards.claimDue(now.toISOString(), options.limit, options.testClockId, tx);
        if (due.length === 0) return 0;
        const pans = await Promise.all(due.map(panOf));
        return applyDue(tx, due, await newServiceCodes(due, pans), now);
      });
    },
  };
}

export type RotationService = ReturnType<typeof createRotationService>;
