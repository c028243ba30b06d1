// Dynamic CVVs for virtual cards: forced rotations, automatic ones on a schedule, and the interval.
// A rotation changes the card's CVV service code (the CVV is derived, never stored) to one that yields a
// different CVV, applies the pure scheduling rules of domain/rotation-schedule.ts, and announces itself with
// a card.cvv.changed event — never carrying the CVV — in the same transaction. The scheduler's path works a
// whole batch at once (one conditional UPDATE, one audit insert, one outbox insert): its cost per card is
// the cryptography, not round trips. A forced rotation or a schedule change is one transaction on the card
// as read, written only onto that version: a card closed meanwhile is never rotated or rescheduled.
import { randomInt } from "node:crypto";
import { assertCardAllows, type CardStatus } from "../domain/card.js";
import { AppError, validationFailed } from "../domain/errors.js";
import {
  applyRotation,
  isValidInterval,
  type RotationSchedule,
  type RotationType,
  scheduleEvery,
  unschedule,
} from "../domain/rotation-schedule.js";
import { pismoCvvChanged } from "../domain/webhooks.js";
import type { BatchEventPublisher, NewEvent } from "../events/outbox.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { CardRepo, DueRotation, ScheduleColumns } from "../store/card-repo.js";
import type { Db, Store } from "../store/db.js";
import type { CardRow } from "../store/schema.js";
import type { Actor, AuditBatchRecorder, AuditEntry } from "./audit.js";
import type { CardClock } from "./card-clock.js";
import { type CardTransaction, findCard, sealedCardOf, written } from "./card-transaction.js";

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
  withCard: CardTransaction;
  cards: Pick<CardRepo, "findByToken" | "rotate" | "rotateDue" | "setSchedule" | "claimDue">;
  keys: Pick<KeyProvider, "deriveCvvBatch">;
  recordMany: AuditBatchRecorder;
  publishMany: BatchEventPublisher;
  cardClock: CardClock;
}

/** Who automatic rotations are recorded as. */
export const SCHEDULER_SUBJECT = "system:rotation-scheduler";
const MAX_DRAWS = 50;
/** How many previous service codes a card keeps: a rotation never brings back a CVV of its last 10. */
const HISTORY = 10;

/** The card's current service code and the previous ones it keeps, most recent first. */
function recentCodes(card: Pick<CardRow, "cvv_service_code" | "cvv_history">): string[] {
  return [card.cvv_service_code, ...(JSON.parse(card.cvv_history) as string[])];
}

/** The previous codes to keep after a rotation away from the current one. */
function historyAfterRotation(card: Pick<CardRow, "cvv_service_code" | "cvv_history">): string {
  return JSON.stringify(recentCodes(card).slice(0, HISTORY));
}

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
  assertCardAllows(card.status as CardStatus, "rotate");
  if (card.type !== "virtual") {
    throw new AppError("card_not_virtual", "Only virtual cards have a dynamic CVV; this card is physical.");
  }
}

export function createRotationService(deps: RotationServiceDeps) {
  /** The CVVs each card may not get again: its current one and those of its last codes, derived again. */
  async function recentCvvs(cards: readonly CardRow[]): Promise<Set<string>[]> {
    const codes = cards.map(recentCodes);
    const sealed = cards.flatMap((card, i) =>
      codes[i]!.map((serviceCode) => ({ ...sealedCardOf(card), serviceCode })),
    );
    const cvvs = await deps.keys.deriveCvvBatch(sealed);
    let next = 0;
    return codes.map((own) => new Set(own.map(() => cvvs[next++]!)));
  }

  /** New service codes for the cards, each yielding a CVV the card has not had in its last rotations. */
  async function newServiceCodes(cards: CardRow[], recent: Set<string>[]): Promise<string[]> {
    const sealed = cards.map(sealedCardOf);
    const codes = cards.map((c) => drawServiceCode(c.cvv_service_code));
    let pending = cards.map((_, i) => i);
    for (let draw = 0; pending.length > 0; draw++) {
      if (draw === MAX_DRAWS)
        throw new AppError("internal_error", "Could not draw a service code giving a new CVV.");
      const cvvs = await deps.keys.deriveCvvBatch(
        pending.map((i) => ({ ...sealed[i]!, serviceCode: codes[i]! })),
      );
      pending = pending.filter((i, j) => recent[i]!.has(cvvs[j]!));
      for (const i of pending) codes[i] = drawServiceCode(cards[i]!.cvv_service_code);
    }
    return codes;
  }

  /** A code the caller chose: refused when its CVV is one of the card's recent ones (it would come back). */
  async function chosenServiceCode(card: CardRow, serviceCode: string): Promise<string> {
    const [recent] = await recentCvvs([card]);
    const [cvv] = await deps.keys.deriveCvvBatch([{ ...sealedCardOf(card), serviceCode }]);
    if (recent!.has(cvv!)) {
      throw new AppError(
        "cvv_would_repeat",
        `This service code gives a CVV the card had in its last ${HISTORY} rotations; choose another or let cardvault draw one.`,
      );
    }
    return serviceCode;
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

  /** The event of a change made at `at`, the card's own time (its test clock's, if it has one). */
  const eventOf = (card: CardRow, change: Change, at: Date): NewEvent => ({
    tenantId: card.tenant_id,
    cardId: card.id,
    type: "card.cvv.changed",
    occurredAt: at,
    data: {
      publicToken: card.public_token,
      last4: card.pan_last4,
      rotationType: change.rotationType,
      operationType: change.operationType,
      nextRotationAt: change.nextRotationAt,
      rotationIntervalHours: change.intervalHours,
    },
    pismo: pismoCvvChanged({
      card: {
        id: card.id,
        publicToken: card.public_token,
        last4: card.pan_last4,
        expiry: card.expiry,
        status: card.status as CardStatus,
        cardholderName: card.cardholder_name,
        customerReference: card.customer_reference,
      },
      rotationType: change.rotationType,
      operationType: change.operationType,
      nextRotationAt: change.nextRotationAt,
    }),
  });

  async function announce(
    tx: Db,
    changes: readonly { actor: Actor; card: CardRow; change: Change; at: Date }[],
  ) {
    await deps.recordMany(
      tx,
      changes.map((c) => auditOf(c.actor, c.card, c.change)),
    );
    await deps.publishMany(
      tx,
      changes.map((c) => eventOf(c.card, c.change, c.at)),
    );
  }

  /** A forced rotation's write, onto the version read. */
  async function applyManual(tx: Db, actor: Actor, card: CardRow, serviceCode: string, now: Date) {
    const { schedule } = applyRotation(scheduleOf(card), now, "MANUAL");
    const columns = scheduleColumns(schedule);
    written(
      await deps.cards.rotate(
        card.id,
        card,
        {
          ...columns,
          cvv_service_code: serviceCode,
          cvv_history: historyAfterRotation(card),
          last_rotated_at: now.toISOString(),
        },
        tx,
      ),
    );
    const change: Change = {
      operationType: "ROTATE_CVV",
      rotationType: "MANUAL",
      nextRotationAt: columns.next_rotation_at,
      intervalHours: schedule.intervalHours,
    };
    await announce(tx, [{ actor, card, change, at: now }]);
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
        expected: { version: card.version, dueAt: card.next_rotation_at! },
        changes: {
          ...columns,
          cvv_service_code: codes[i]!,
          cvv_history: historyAfterRotation(card),
          last_rotated_at: cardNow.toISOString(),
        },
      };
      const change: Change = {
        operationType: "ROTATE_CVV",
        rotationType: "AUTOMATIC",
        nextRotationAt: columns.next_rotation_at,
        intervalHours: schedule.intervalHours,
      };
      const actor = { tenantId: card.tenant_id, subject: SCHEDULER_SUBJECT };
      return { write, card, change, at: cardNow, actor };
    });
    const applied = await deps.cards.rotateDue(
      planned.map((p) => p.write),
      tx,
    );
    const rotated = planned.filter((p) => applied.has(p.card.id));
    await announce(tx, rotated);
    return rotated.length;
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

  function changeSchedule(actor: Actor, publicToken: string, hours: number | null): Promise<RotationView> {
    return deps.withCard(actor, publicToken, async (tx, card) => {
      assertRotatable(card);
      const now = await deps.cardClock(card, tx);
      const schedule = hours === null ? unschedule(scheduleOf(card)) : scheduleEvery(now, hours);
      const columns = scheduleColumns(schedule);
      written(await deps.cards.setSchedule(card.id, card, columns, now.toISOString(), tx));
      const change: Change = {
        operationType: hours === null ? "DELETE_CVV_ROTATION" : "CHANGE_CVV_ROTATION",
        rotationType: "MANUAL",
        nextRotationAt: columns.next_rotation_at,
        intervalHours: hours,
      };
      await announce(tx, [{ actor, card, change, at: now }]);
      return view({ ...card, ...columns });
    });
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
      return deps.withCard(actor, publicToken, async (tx, card) => {
        assertRotatable(card);
        const now = await deps.cardClock(card, tx);
        const code =
          options.serviceCode === undefined
            ? (await newServiceCodes([card], await recentCvvs([card])))[0]!
            : await chosenServiceCode(card, options.serviceCode);
        return applyManual(tx, actor, card, code, now);
      });
    },

    async get(actor: Actor, publicToken: string): Promise<RotationView> {
      const card = await findCard(deps.cards, actor, publicToken);
      assertRotatable(card);
      return view(card);
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
        return applyDue(tx, due, await newServiceCodes(due, await recentCvvs(due)), now);
      });
    },
  };
}

export type RotationService = ReturnType<typeof createRotationService>;
