// Card life cycle: issue a card (PAN, CVV service code, random PIN, all drawn and sealed inside the key
// provider), read it, change its status along domain/card.ts's life cycle. A card's PAN is only ever written
// sealed and bound to its tenant and id; the view never shows more than the first six and last four digits.
// A status change is decided on the card as read in its own transaction, and written only onto that version.
import { CVV2_SERVICE_CODE } from "../crypto/cvv.js";
import {
  assertCardholderName,
  assertStatedExpiry,
  assertStatusTransition,
  type CardStatus,
  type CardType,
  defaultExpiry,
  expiryToDate,
  parseExpiry,
} from "../domain/card.js";
import { AppError, validationFailed } from "../domain/errors.js";
import { isValidInterval, type RotationSchedule, scheduleEvery } from "../domain/rotation-schedule.js";
import type { EventPublisher } from "../events/outbox.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import { newPublicToken, uuidv7 } from "../lib/ids.js";
import type { CardRepo } from "../store/card-repo.js";
import { isUniqueViolation, type Store } from "../store/db.js";
import type { TenantRow } from "../store/schema.js";
import type { TenantRepo } from "../store/tenant-repo.js";
import type { TestClockRepo } from "../store/test-clock-repo.js";
import type { Actor, AuditRecorder } from "./audit.js";
import type { CardClock } from "./card-clock.js";
import { type CardTransaction, findCard, written } from "./card-transaction.js";
import { NEW_PIN_LENGTH } from "./pin.js";
import { scheduleColumns } from "./rotation.js";

const NO_SCHEDULE: RotationSchedule = { intervalHours: null, nextRotationAt: null, lastScheduledAt: null };

export interface CardView {
  publicToken: string;
  type: CardType;
  status: CardStatus;
  maskedPan: string;
  last4: string;
  expiry: string;
  expiryDate: string;
  cardholderName: string | null;
  customerReference: string | null;
  cvvRotationIntervalHours: number | null;
  cvvNextRotationAt: string | null;
  testClockId: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface NewCard {
  type: CardType;
  expiry?: string;
  cardholderName?: string;
  customerReference?: string;
  status?: CardStatus;
  /** Dynamic CVV: rotate automatically every so many hours (virtual cards; tenant default otherwise). */
  cvvRotationIntervalHours?: number;
  /** Sandbox only: the card follows this test clock instead of the system clock. */
  testClockId?: string;
}

export interface CardChanges {
  status?: CardStatus;
  /** The card's expiry (YYMM) as the caller states it: honoured when it is the card's own, else refused. */
  statedExpiry?: string;
  cardholderName?: string;
  description?: string;
  updatedBy?: string;
}

export interface CardServiceDeps {
  store: Pick<Store, "transaction">;
  withCard: CardTransaction;
  tenants: Pick<TenantRepo, "find">;
  cards: Pick<CardRepo, "insert" | "findByToken" | "update">;
  testClocks: Pick<TestClockRepo, "find">;
  keys: Pick<KeyProvider, "issuePan" | "sealRandomPin" | "activeKeyId">;
  record: AuditRecorder;
  publish: EventPublisher;
  /** When an event happens: the card's time (a test clock's for a card on one). */
  cardClock: CardClock;
  clock: Clock;
}

const MAX_DRAWS = 10;

function viewOf(card: {
  public_token: string;
  type: string;
  status: string;
  pan_first6: string;
  pan_last4: string;
  expiry: string;
  cardholder_name: string | null;
  customer_reference: string | null;
  rotation_interval_hours: number | null;
  next_rotation_at: string | null;
  test_clock_id: string | null;
  created_at: string;
  updated_at: string;
}): CardView {
  return {
    publicToken: card.public_token,
    type: card.type as CardType,
    status: card.status as CardStatus,
    maskedPan: `${card.pan_first6}******${card.pan_last4}`,
    last4: card.pan_last4,
    expiry: card.expiry,
    expiryDate: expiryToDate(card.expiry),
    cardholderName: card.cardholder_name,
    customerReference: card.customer_reference,
    cvvRotationIntervalHours: card.rotation_interval_hours,
    cvvNextRotationAt: card.next_rotation_at,
    testClockId: card.test_clock_id,
    createdAt: card.created_at,
    updatedAt: card.updated_at,
  };
}

export function createCardService(deps: CardServiceDeps) {
  /** Cards on a test clock are born at the clock's time; only sandbox tenants may use one. */
  async function creationTime(tenant: TenantRow, testClockId: string | undefined): Promise<Date> {
    if (testClockId === undefined) return deps.clock.now();
    if (!tenant.sandbox) throw new AppError("sandbox_only", "Test clocks are for sandbox tenants only.");
    const testClock = await deps.testClocks.find(tenant.id, testClockId);
    if (!testClock) throw validationFailed("testClockId", "No test clock with this id.");
    return new Date(testClock.frozen_time);
  }

  return {
    async create(actor: Actor, input: NewCard): Promise<CardView> {
      if (input.cardholderName !== undefined) assertCardholderName(input.cardholderName);
      const tenant = await deps.tenants.find(actor.tenantId);
      if (!tenant) throw new AppError("forbidden", "The token's tenant is not registered with this service.");
      const now = await creationTime(tenant, input.testClockId);
      const interval =
        input.cvvRotationIntervalHours ??
        (input.type === "virtual" ? tenant.default_rotation_interval_hours : null);
      if (input.cvvRotationIntervalHours !== undefined && input.type !== "virtual") {
        throw new AppError(
          "card_not_virtual",
          "Only virtual cards have a dynamic CVV; drop cvvRotationIntervalHours.",
        );
      }
      if (interval !== null && !isValidInterval(interval)) {
        throw validationFailed(
          "cvvRotationIntervalHours",
          "cvvRotationIntervalHours must be a whole number ≥ 1.",
        );
      }
      const expiry = input.expiry === undefined ? defaultExpiry(now) : parseExpiry(input.expiry, now);

      const id = uuidv7(deps.clock);
      const binding = { tenantId: tenant.id, cardId: id };
      // The card program's own keys when it names them (tenants update --cvk/--pvk), else the active ones;
      // the card records them, so a later change of the program's keys never moves it.
      const cvkId = tenant.cvk_id ?? deps.keys.activeKeyId("cvk");
      const stamp = now.toISOString();
      // The PAN and the public token are drawn at random and the unique indexes refuse one already taken: the
      // draw (PAN, token and PIN) runs again. Asking the store first cost two round trips a card on
      // PostgreSQL for a collision that almost never happens (9 random digits, 9+ random account digits).
      for (let draw = 1; ; draw++) {
        const pan = await deps.keys.issuePan({ bin: tenant.bin, length: tenant.pan_length, binding });
        const publicToken = newPublicToken();
        const sealedPin = await deps.keys.sealRandomPin(
          { ...binding, panSealed: pan.panSealed, expiry, cvkId, serviceCode: CVV2_SERVICE_CODE },
          NEW_PIN_LENGTH,
          tenant.pvk_id ?? undefined,
        );
        const row = {
          id,
          tenant_id: tenant.id,
          public_token: publicToken,
          type: input.type,
          status: input.status ?? "active",
          pan_sealed: pan.panSealed,
          pan_fingerprint: pan.fingerprint,
          pan_first6: pan.first6,
          pan_last4: pan.last4,
          expiry,
          cardholder_name: input.cardholderName ?? null,
          customer_reference: input.customerReference ?? null,
          cvk_id: cvkId,
          cvv_service_code: CVV2_SERVICE_CODE,
          cvv_tries_remaining: tenant.max_cvv_tries,
          pin_sealed: sealedPin.pinSealed,
          pvk_id: sealedPin.pvkId,
          pvki: sealedPin.pvki,
          pvv: sealedPin.pvv,
          pin_tries_remaining: tenant.max_pin_tries,
          created_at: stamp,
          updated_at: stamp,
          ...scheduleColumns(interval === null ? NO_SCHEDULE : scheduleEvery(now, interval)),
          last_rotated_at: null,
          test_clock_id: input.testClockId ?? null,
        };
        try {
          await deps.store.transaction(async (tx) => {
            await deps.cards.insert(row, tx);
            const card = { id, public_token: publicToken };
            await deps.record(tx, actor, {
              action: "card.create",
              outcome: "success",
              card,
              details: { type: input.type },
            });
            await deps.publish(tx, {
              tenantId: tenant.id,
              cardId: id,
              type: "card.created",
              occurredAt: now,
              data: { publicToken, type: input.type, last4: row.pan_last4, status: row.status },
            });
          });
          return viewOf(row);
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
          if (draw === MAX_DRAWS) {
            throw new AppError(
              "service_unavailable",
              "Could not allocate a unique PAN and public token; the BIN's range may be exhausted.",
            );
          }
        }
      }
    },

    async get(actor: Actor, publicToken: string): Promise<CardView> {
      return viewOf(await findCard(deps.cards, actor, publicToken));
    },

    async update(actor: Actor, publicToken: string, changes: CardChanges): Promise<CardView> {
      if (changes.cardholderName !== undefined) assertCardholderName(changes.cardholderName);
      return deps.withCard(actor, publicToken, async (tx, card) => {
        if (changes.statedExpiry !== undefined) assertStatedExpiry(card.expiry, changes.statedExpiry);
        if (changes.status) assertStatusTransition(card.status as CardStatus, changes.status);
        const stamp = deps.clock.now().toISOString();
        const patch = {
          ...(changes.status ? { status: changes.status } : {}),
          // A closed card is never rotated again.
          ...(changes.status === "closed" ? { next_rotation_at: null } : {}),
          ...(changes.cardholderName !== undefined ? { cardholder_name: changes.cardholderName } : {}),
        };
        written(await deps.cards.update(card.id, card, patch, stamp, tx));
        await deps.record(tx, actor, {
          action: "card.update",
          outcome: "success",
          card,
          details: {
            fromStatus: card.status as CardStatus,
            toStatus: changes.status,
            description: changes.description,
            updatedBy: changes.updatedBy,
          },
        });
        if (changes.status && changes.status !== card.status) {
          await deps.publish(tx, {
            tenantId: actor.tenantId,
            cardId: card.id,
            type: "card.status.changed",
            occurredAt: await deps.cardClock(card, tx),
            data: { publicToken, status: changes.status, previousStatus: card.status as CardStatus },
          });
        }
        return viewOf({ ...card, ...patch, updated_at: stamp });
      });
    },
  };
}

export type CardService = ReturnType<typeof createCardService>;
