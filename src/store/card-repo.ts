// Cards and their try counters. Every counter change is one UPDATE … RETURNING guarded in SQL, never a
// read-modify-write in JavaScript: N concurrent wrong tries on any number of processes count exactly N.
import { sql } from "kysely";
import type { Db, StoreKind } from "./db.js";
import type { CardRow, NewCardRow } from "./schema.js";

export type Secret = "cvv" | "pin";

const counterColumn = { cvv: "cvv_tries_remaining", pin: "pin_tries_remaining" } as const;

/** A card with the limits of its tenant, as most operations need both. */
export type CardWithLimits = CardRow & { max_cvv_tries: number; max_pin_tries: number };

/** The schedule columns a rotation or an interval change writes. */
export type ScheduleColumns = Pick<
  CardRow,
  "rotation_interval_hours" | "next_rotation_at" | "last_scheduled_at"
>;

export function createCardRepo(db: Db, kind: StoreKind = "sqlite") {
  return {
    async insert(row: NewCardRow, tx: Db = db): Promise<void> {
      await tx.insertInto("cards").values(row).execute();
    },

    findByToken(tenantId: string, publicToken: string, tx: Db = db): Promise<CardWithLimits | undefined> {
      return tx
        .selectFrom("cards")
        .innerJoin("tenants", "tenants.id", "cards.tenant_id")
        .selectAll("cards")
        .select(["tenants.max_cvv_tries", "tenants.max_pin_tries"])
        .where("cards.tenant_id", "=", tenantId)
        .where("cards.public_token", "=", publicToken)
        .executeTakeFirst();
    },

    async tokenExists(publicToken: string, tx: Db = db): Promise<boolean> {
      const row = await tx
        .selectFrom("cards")
        .select("id")
        .where("public_token", "=", publicToken)
        .executeTakeFirst();
      return row !== undefined;
    },

    async fingerprintExists(fingerprint: string, tx: Db = db): Promise<boolean> {
      const row = await tx
        .selectFrom("cards")
        .select("id")
        .where("pan_fingerprint", "=", fingerprint)
        .executeTakeFirst();
      return row !== undefined;
    },

    async update(
      cardId: string,
      changes: Partial<
        Pick<
          CardRow,
          | "status"
          | "cardholder_name"
          | "customer_reference"
          | "pin_sealed"
          | "pvv"
          | "pvk_id"
          | "pvki"
          | "pin_tries_remaining"
          | "next_rotation_at"
        >
      >,
      updatedAt: string,
      tx: Db = db,
    ): Promise<void> {
      await tx
        .updateTable("cards")
        .set({ ...changes, updated_at: updatedAt })
        .where("id", "=", cardId)
        .execute();
    },

    /**
     * Moves a counter one step, only while it is above zero. Returns the count after the step, or null when
     * the counter was already at zero (the secret is blocked and the step did nothing).
     */
    async stepCounter(
      cardId: string,
      secret: Secret,
      step: "reset" | "decrement",
      max: number,
      tx: Db = db,
    ): Promise<number | null> {
      const column = counterColumn[secret];
      const row = await tx
        .updateTable("cards")
        .set((eb) => ({ [column]: step === "reset" ? max : eb(column, "-", 1) }))
        .where("id", "=", cardId)
        .where(column, ">", 0)
        .returning(column)
        .executeTakeFirst();
      return row === undefined ? null : Number((row as Record<string, unknown>)[column]);
    },

    /**
     * Gives the card a new CVV service code, only if the code is still the one the caller derived from
     * (optimistic concurrency: two rotations racing cannot both apply on top of the same CVV).
     */
    async rotate(
      cardId: string,
      expected: { serviceCode: string; dueAt?: string },
      changes: ScheduleColumns & { cvv_service_code: string; last_rotated_at: string },
      tx: Db = db,
    ): Promise<boolean> {
      let query = tx
        .updateTable("cards")
        .set({ ...changes, updated_at: changes.last_rotated_at })
        .where("id", "=", cardId)
        .where("cvv_service_code", "=", expected.serviceCode);
      // An automatic rotation serves one due time: if anything moved the schedule meanwhile, it does nothing.
      if (expected.dueAt !== undefined) query = query.where("next_rotation_at", "=", expected.dueAt);
      const result = await query.executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async setSchedule(
      cardId: string,
      schedule: ScheduleColumns,
      updatedAt: string,
      tx: Db = db,
    ): Promise<void> {
      await tx
        .updateTable("cards")
        .set({ ...schedule, updated_at: updatedAt })
        .where("id", "=", cardId)
        .execute();
    },

    /**
     * Open virtual cards whose automatic rotation is due, oldest due first, each with the time it lives in
     * (`clock_time`: its test clock's time, or null for the system clock). With `testClockId` only that
     * clock's cards. On PostgreSQL the rows are locked and rows other workers hold are skipped, so any number
     * of workers share the work; call it inside the transaction that rotates them.
     */
    claimDue(now: string, limit: number, testClockId: string | undefined, tx: Db = db) {
      let query = tx
        .selectFrom("cards")
        .leftJoin("test_clocks", "test_clocks.id", "cards.test_clock_id")
        .selectAll("cards")
        .select("test_clocks.frozen_time as clock_time")
        .where("cards.status", "!=", "closed")
        .where("cards.type", "=", "virtual");
      query =
        testClockId !== undefined
          ? query.where("cards.test_clock_id", "=", testClockId).where("cards.next_rotation_at", "<=", now)
          : query.where((eb) =>
              eb.or([
                eb.and([eb("cards.test_clock_id", "is", null), eb("cards.next_rotation_at", "<=", now)]),
                eb("cards.next_rotation_at", "<=", eb.ref("test_clocks.frozen_time")),
              ]),
            );
      query = query.orderBy("cards.next_rotation_at").limit(limit);
      return (kind === "postgres" ? query.forUpdate("cards").skipLocked() : query).execute();
    },

    /**
     * Key rotation: cards whose sealed PAN or PIN block does not start with the given envelope prefixes
     * ("v1:<active key id>:"), i.e. still sealed under an older key version. Portable substr() comparison.
     */
    listNotSealedUnder(panPrefix: string, pinPrefix: string, limit: number, tx: Db = db) {
      return notSealedUnder(tx, panPrefix, pinPrefix)
        .select(["id", "tenant_id", "public_token", "pan_sealed", "pin_sealed", "pvv", "pvk_id", "pvki"])
        .orderBy("id")
        .limit(limit)
        .execute();
    },

    async countNotSealedUnder(panPrefix: string, pinPrefix: string, tx: Db = db): Promise<number> {
      const row = await notSealedUnder(tx, panPrefix, pinPrefix)
        .select((eb) => eb.fn.countAll().as("n"))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /**
     * Replaces a card's envelopes only if they are still the ones re-encrypted (optimistic: a PIN set meanwhile
     * wins, and the next pass picks the card up again). updated_at is untouched: the card did not change.
     */
    async replaceSealed(
      cardId: string,
      expected: { pan_sealed: string; pin_sealed: string },
      next: { pan_sealed: string; pin_sealed: string },
      tx: Db = db,
    ): Promise<boolean> {
      const result = await tx
        .updateTable("cards")
        .set(next)
        .where("id", "=", cardId)
        .where("pan_sealed", "=", expected.pan_sealed)
        .where("pin_sealed", "=", expected.pin_sealed)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** Sets a counter outright: the maximum to unblock, zero to block. */
    async setCounter(
      cardId: string,
      secret: Secret,
      value: number,
      updatedAt: string,
      tx: Db = db,
    ): Promise<void> {
      await tx
        .updateTable("cards")
        .set({ [counterColumn[secret]]: value, updated_at: updatedAt })
        .where("id", "=", cardId)
        .execute();
    },
  };
}

/** Cards with a sealed PAN or PIN block not under the given envelope prefixes (portable substr()). */
function notSealedUnder(tx: Db, panPrefix: string, pinPrefix: string) {
  return tx
    .selectFrom("cards")
    .where((eb) =>
      eb.or([
        eb(sql`substr(pan_sealed, 1, ${panPrefix.length})`, "!=", panPrefix),
        eb(sql`substr(pin_sealed, 1, ${pinPrefix.length})`, "!=", pinPrefix),
      ]),
    );
}

export type CardRepo = ReturnType<typeof createCardRepo>;
