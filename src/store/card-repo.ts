// Cards and their try counters. Every counter step is one relative UPDATE (count - 1, or back to the
// maximum), never a value computed in JavaScript and written back: N concurrent wrong tries on any number of
// processes count exactly N. A wrong try's step also records its time for the rolling wrong-try budget, in the
// same statement. An operation holds its card from its read (lockByToken: FOR UPDATE on PostgreSQL; on SQLite
// the transaction holds the only writer) to its commit, so what a step leaves is known from the card as read,
// and the step need not answer: on PostgreSQL it waits and travels with the transaction's last statement
// (write-behind.ts).
// Every other change a service decides from what it read is written only if the card's row version is still
// the one read (and moves it on); a write that finds it moved changes nothing and says so, and the service
// reads again and decides again (services/card-transaction.ts).
import { sql } from "kysely";
import { PVV_ONLY_PIN, type Secret } from "../domain/card.js";
import { chunksOf } from "./chunks.js";
import type { Db, StoreKind } from "./db.js";
import { everyColumn, prepared } from "./prepared.js";
import type { CardRow, NewCardRow } from "./schema.js";

export type { Secret };

/** Each secret's columns: its try counter, its last wrong tries (for the budget), its compromise. */
const columnsOf = {
  cvv: { counter: "cvv_tries_remaining", wrongTries: "cvv_wrong_tries", compromisedAt: "cvv_compromised_at" },
  pin: { counter: "pin_tries_remaining", wrongTries: "pin_wrong_tries", compromisedAt: "pin_compromised_at" },
} as const;
type SecretColumns = (typeof columnsOf)[Secret];

/** One of a thing for each secret's columns. */
function perSecret<T>(make: (columns: SecretColumns) => T): Record<Secret, T> {
  return { cvv: make(columnsOf.cvv), pin: make(columnsOf.pin) };
}

/**
 * A wrong try's time as the budget records it: toISOString's 24 characters, so the record is the times one
 * after the other, and keeping the last N tries is keeping its last 24 × N characters.
 */
const WRONG_TRY_WIDTH = 24;

/** The wrong tries a card's record holds, oldest first. */
export function wrongTryTimes(record: string): string[] {
  return Array.from({ length: Math.floor(record.length / WRONG_TRY_WIDTH) }, (_, i) =>
    record.slice(i * WRONG_TRY_WIDTH, (i + 1) * WRONG_TRY_WIDTH),
  );
}

/** A card with the limits of its tenant, as most operations need both. */
export type CardWithLimits = CardRow & {
  max_cvv_tries: number;
  max_pin_tries: number;
  /** The tenant delivers PINs through Get Card Data and reveal sessions (1) or not (0). */
  secure_data_pin: number;
};

/** What a status read needs: whether the card is open, and its counters with their limits. */
export type CounterState = Pick<
  CardWithLimits,
  "status" | "cvv_tries_remaining" | "pin_tries_remaining" | "max_cvv_tries" | "max_pin_tries"
>;

/** The schedule columns a rotation or an interval change writes. */
export type ScheduleColumns = Pick<
  CardRow,
  "rotation_interval_hours" | "next_rotation_at" | "last_scheduled_at"
>;

/** One automatic rotation of a batch: the values the caller claimed the card with, and what to write. */
export interface DueRotation {
  id: string;
  expected: { version: number; dueAt: string };
  changes: RotationColumns;
}

/** What a rotation writes: the new service code, the codes before it, and the schedule. */
export type RotationColumns = ScheduleColumns & {
  cvv_service_code: string;
  cvv_history: string;
  last_rotated_at: string;
};

const COLUMNS: Record<keyof NewCardRow, true> = {
  id: true,
  tenant_id: true,
  public_token: true,
  type: true,
  status: true,
  pan_sealed: true,
  pan_fingerprint: true,
  pan_first6: true,
  pan_last4: true,
  expiry: true,
  cardholder_name: true,
  customer_reference: true,
  cvk_id: true,
  cvv_service_code: true,
  cvv_tries_remaining: true,
  pin_sealed: true,
  pvk_id: true,
  pvki: true,
  pvv: true,
  pin_tries_remaining: true,
  created_at: true,
  updated_at: true,
  rotation_interval_hours: true,
  next_rotation_at: true,
  last_scheduled_at: true,
  last_rotated_at: true,
  test_clock_id: true,
  version: true,
  cvv_history: true,
  cvv_wrong_tries: true,
  pin_wrong_tries: true,
  cvv_compromised_at: true,
  pin_compromised_at: true,
  pismo_id: true,
};

/** What a guarded write compares: the row version the caller read. */
export interface Expected {
  version: number;
}

export function createCardRepo(db: Db, kind: StoreKind = "sqlite") {
  // The queries every CVV and PIN call and every card creation run, compiled once (prepared.ts).
  const insertOne = prepared((p: NewCardRow) => db.insertInto("cards").values(everyColumn(p, COLUMNS)));
  const withLimitsByToken = (p: { tenantId: string; publicToken: string }) =>
    db
      .selectFrom("cards")
      .innerJoin("tenants", "tenants.id", "cards.tenant_id")
      .select(["tenants.max_cvv_tries", "tenants.max_pin_tries"])
      .where("cards.tenant_id", "=", p.tenantId)
      .where("cards.public_token", "=", p.publicToken);
  const withEverything = (p: { tenantId: string; publicToken: string }) =>
    withLimitsByToken(p).selectAll("cards").select("tenants.secure_data_pin");
  const byToken = prepared(withEverything);
  // FOR UPDATE OF cards: the card's row only, never its tenant's (every request of the tenant reads that one).
  const lockedByToken =
    kind === "postgres"
      ? prepared((p: { tenantId: string; publicToken: string }) => withEverything(p).forUpdate("cards"))
      : byToken;
  // A status read is the most frequent call of all: reading the card's 29 columns into an object costs
  // three times what these five do (BENCHMARKS.md).
  const countersByToken = prepared((p: { tenantId: string; publicToken: string }) =>
    withLimitsByToken(p).select(["cards.status", "cards.cvv_tries_remaining", "cards.pin_tries_remaining"]),
  );
  // A wrong try appends its time to the record and keeps the last `keep` characters (the budget's tries);
  // SQLite's substr counts a negative start from the end, PostgreSQL has right() for it.
  const recordWrongTry = (column: SecretColumns["wrongTries"], at: string, keep: number) =>
    kind === "postgres"
      ? sql<string>`right(${sql.ref(column)} || ${at}, ${keep})`
      : sql<string>`substr(${sql.ref(column)} || ${at}, -${keep})`;
  const counterStep = ({ counter, wrongTries }: SecretColumns, step: "reset" | "decrement") =>
    prepared(
      (p: { cardId: string; max: number; at: string; keep: number }) =>
        db
          .updateTable("cards")
          .set((eb) =>
            step === "reset"
              ? { [counter]: p.max }
              : { [counter]: eb(counter, "-", 1), [wrongTries]: recordWrongTry(wrongTries, p.at, p.keep) },
          )
          .where("id", "=", p.cardId)
          .where(counter, ">", 0),
      "deferred",
    );
  const counterSteps = perSecret((columns) => ({
    reset: counterStep(columns, "reset"),
    decrement: counterStep(columns, "decrement"),
  }));
  const counterSet = ({ counter }: SecretColumns) =>
    prepared((p: { cardId: string; value: number; updatedAt: string; version: number; remaining: number }) =>
      db
        .updateTable("cards")
        .set({ [counter]: p.value, updated_at: p.updatedAt })
        .where("id", "=", p.cardId)
        .where("version", "=", p.version)
        .where(counter, "=", p.remaining),
    );
  /** A decided change: only onto the version read, and the version moves on. */
  const guardedUpdate = (tx: Db, cardId: string, expected: Expected, changes: Record<string, unknown>) =>
    tx
      .updateTable("cards")
      .set((eb) => ({ ...changes, version: eb("version", "+", 1) }))
      .where("id", "=", cardId)
      .where("version", "=", expected.version)
      .executeTakeFirst()
      .then((result) => Number(result.numUpdatedRows) === 1);
  const counterSets = perSecret(counterSet);

  return {
    async insert(row: NewCardRow, tx: Db = db): Promise<void> {
      await insertOne(tx, {
        ...row,
        version: row.version ?? 0,
        cvv_history: row.cvv_history ?? "[]",
        cvv_wrong_tries: row.cvv_wrong_tries ?? "",
        pin_wrong_tries: row.pin_wrong_tries ?? "",
        pismo_id: row.pismo_id ?? null,
      });
    },

    /** Many new cards (an import's batch): one statement per chunk, every column named like insert(). */
    async insertMany(rows: readonly NewCardRow[], tx: Db = db): Promise<void> {
      const full = rows.map((row) =>
        everyColumn(
          {
            ...row,
            version: row.version ?? 0,
            cvv_history: row.cvv_history ?? "[]",
            cvv_wrong_tries: row.cvv_wrong_tries ?? "",
            pin_wrong_tries: row.pin_wrong_tries ?? "",
            pismo_id: row.pismo_id ?? null,
          },
          COLUMNS,
        ),
      );
      // 33 columns a row: 400 rows stay under SQLite's 32 766 bound parameters.
      for (const chunk of chunksOf(full, 400)) await tx.insertInto("cards").values(chunk).execute();
    },

    /** Which of these PAN fingerprints are taken, and by which tenant's card (an import's duplicate check). */
    async fingerprintOwners(fingerprints: readonly string[], tx: Db = db): Promise<Map<string, string>> {
      const owners = new Map<string, string>();
      for (const chunk of chunksOf(fingerprints, 1000)) {
        const rows = await tx
          .selectFrom("cards")
          .select(["pan_fingerprint", "tenant_id"])
          .where("pan_fingerprint", "in", chunk)
          .execute();
        for (const r of rows) owners.set(r.pan_fingerprint, r.tenant_id);
      }
      return owners;
    },

    /** Which of these public tokens are taken (by any tenant: a token names one card). */
    async takenTokens(tokens: readonly string[], tx: Db = db): Promise<Set<string>> {
      const taken = new Set<string>();
      for (const chunk of chunksOf(tokens, 1000)) {
        const rows = await tx
          .selectFrom("cards")
          .select("public_token")
          .where("public_token", "in", chunk)
          .execute();
        for (const r of rows) taken.add(r.public_token);
      }
      return taken;
    },

    /** Which of these Pismo card ids the tenant's cards already carry. */
    async takenPismoIds(tenantId: string, ids: readonly number[], tx: Db = db): Promise<Set<number>> {
      const taken = new Set<number>();
      for (const chunk of chunksOf(ids, 1000)) {
        const rows = await tx
          .selectFrom("cards")
          .select("pismo_id")
          .where("tenant_id", "=", tenantId)
          .where("pismo_id", "in", chunk)
          .execute();
        for (const r of rows) taken.add(Number(r.pismo_id));
      }
      return taken;
    },

    /** The public token of the tenant's card with this Pismo card id (the Pismo paths' alias). */
    async tokenByPismoId(tenantId: string, pismoId: number, tx: Db = db): Promise<string | undefined> {
      const row = await tx
        .selectFrom("cards")
        .select("public_token")
        .where("tenant_id", "=", tenantId)
        .where("pismo_id", "=", pismoId)
        .executeTakeFirst();
      return row?.public_token;
    },

    /** The caller's card as it is now, for an answer that changes nothing (a plain read, no lock). */
    async findByToken(tenantId: string, publicToken: string): Promise<CardWithLimits | undefined> {
      return (await byToken(db, { tenantId, publicToken })).rows[0];
    },

    /** The caller's card, held by the transaction until it ends: no other transaction changes it meanwhile. */
    async lockByToken(tenantId: string, publicToken: string, tx: Db): Promise<CardWithLimits | undefined> {
      return (await lockedByToken(tx, { tenantId, publicToken })).rows[0];
    },

    async findCountersByToken(tenantId: string, publicToken: string): Promise<CounterState | undefined> {
      return (await countersByToken(db, { tenantId, publicToken })).rows[0];
    },

    /** Changes the card if it is still at the version read; false (nothing written) when it moved. */
    update(
      cardId: string,
      expected: Expected,
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
          | "pin_wrong_tries"
          | "pin_compromised_at"
          | "next_rotation_at"
        >
      >,
      updatedAt: string,
      tx: Db = db,
    ): Promise<boolean> {
      return guardedUpdate(tx, cardId, expected, { ...changes, updated_at: updatedAt });
    },

    /**
     * One step of a secret's counter on a card the transaction holds (lockByToken), only while it is above zero;
     * a decrement (a wrong try) also records its time `at`, keeping the last `keep` times. The caller knows from
     * the card as read what it leaves (domain/tries.ts counterStep). It answers nothing: on PostgreSQL it is sent
     * with the transaction's next statement.
     */
    async stepCounter(
      cardId: string,
      secret: Secret,
      step: "reset" | "decrement",
      max: number,
      wrongTry: { at: string; keep: number },
      tx: Db,
    ): Promise<void> {
      await counterSteps[secret][step](tx, {
        cardId,
        max,
        at: wrongTry.at,
        keep: wrongTry.keep * WRONG_TRY_WIDTH,
      });
    },

    /**
     * The secret spent its wrong-try budget: Blocked (counter 0) and marked compromised at `at`, only onto the
     * version read; the version moves on, so an unblock decided on the card before it is decided again.
     */
    compromise(
      cardId: string,
      secret: Secret,
      expected: Expected,
      at: string,
      tx: Db = db,
    ): Promise<boolean> {
      const { counter, compromisedAt } = columnsOf[secret];
      return guardedUpdate(tx, cardId, expected, { [counter]: 0, [compromisedAt]: at, updated_at: at });
    },

    /**
     * Gives the card a new CVV service code, only if the card is still at the version read (two rotations
     * racing cannot both apply on top of the same CVV, nor one onto a card closed meanwhile). A new CVV owes
     * nothing to guesses at the old one: its compromise and its record of wrong tries are cleared.
     */
    rotate(cardId: string, expected: Expected, changes: RotationColumns, tx: Db = db): Promise<boolean> {
      return guardedUpdate(tx, cardId, expected, {
        ...changes,
        ...NEW_CVV,
        updated_at: changes.last_rotated_at,
      });
    },

    /**
     * Applies a batch of automatic rotations with one statement, each guarded like rotate() and by its due
     * time as well (an automatic rotation serves one due time): the row must still have the version and the
     * next_rotation_at it was claimed with; like rotate(), it clears the old CVV's compromise and wrong
     * tries. Returns the ids it changed; a card that moved meanwhile
     * is left as it is and its id is missing. The rows travel as one JSON
     * parameter (SQLite) or one array per column (PostgreSQL), so the SQL text is the same for any batch.
     */
    async rotateDue(rotations: readonly DueRotation[], tx: Db = db): Promise<Set<string>> {
      if (rotations.length === 0) return new Set();
      const rows = await (kind === "postgres" ? rotateDuePostgres : rotateDueSqlite)(rotations).execute(tx);
      return new Set(rows.rows.map((r) => r.id));
    },

    setSchedule(
      cardId: string,
      expected: Expected,
      schedule: ScheduleColumns,
      updatedAt: string,
      tx: Db = db,
    ): Promise<boolean> {
      return guardedUpdate(tx, cardId, expected, { ...schedule, updated_at: updatedAt });
    },

    /**
     * The due time of the oldest automatic rotation the scheduler has not done yet (on the system clock: cards on
     * a test clock are rotated when their clock moves), or undefined: the metrics' scheduler lag. Reads the
     * next_rotation_at index from its start.
     */
    async oldestDueRotation(now: string, tx: Db = db): Promise<string | undefined> {
      const row = await tx
        .selectFrom("cards")
        .select("next_rotation_at")
        .where("next_rotation_at", "<=", now)
        .where("test_clock_id", "is", null)
        .where("status", "!=", "closed")
        .where("type", "=", "virtual")
        .orderBy("next_rotation_at")
        .limit(1)
        .executeTakeFirst();
      return row?.next_rotation_at ?? undefined;
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
        .select([
          "id",
          "tenant_id",
          "public_token",
          "pan_sealed",
          "pin_sealed",
          "pvv",
          "pvk_id",
          "pvki",
          "expiry",
          "cvk_id",
          "cvv_service_code",
        ])
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

    /**
     * Sets a counter outright (the maximum to unblock, zero to block), only if the card is at the version read
     * and the counter still at the count read, so the count it replaces is the one recorded. The version does
     * not move: a try in flight may still count, after the change.
     */
    async setCounter(
      cardId: string,
      secret: Secret,
      value: number,
      expected: Expected & { remaining: number },
      updatedAt: string,
      tx: Db = db,
    ): Promise<boolean> {
      const result = await counterSets[secret](tx, { cardId, value, updatedAt, ...expected });
      return Number(result.numAffectedRows ?? 0) === 1;
    },
  };
}

/** What a rotation clears with the old CVV (rotateDue's SQL writes the same). */
const NEW_CVV = { cvv_compromised_at: null, cvv_wrong_tries: "" } as const;

function rotateDueSqlite(rotations: readonly DueRotation[]) {
  const rows = JSON.stringify(
    rotations.map((r) => [
      r.id,
      r.expected.version,
      r.expected.dueAt,
      r.changes.cvv_service_code,
      r.changes.rotation_interval_hours,
      r.changes.next_rotation_at,
      r.changes.last_scheduled_at,
      r.changes.last_rotated_at,
      r.changes.cvv_history,
    ]),
  );
  return sql<{ id: string }>`
    update cards set
      cvv_service_code = v.value ->> 3,
      rotation_interval_hours = v.value ->> 4,
      next_rotation_at = v.value ->> 5,
      last_scheduled_at = v.value ->> 6,
      last_rotated_at = v.value ->> 7,
      cvv_history = v.value ->> 8,
      cvv_compromised_at = null,
      cvv_wrong_tries = '',
      updated_at = v.value ->> 7,
      version = cards.version + 1
    from json_each(${rows}) as v
    where cards.id = v.value ->> 0
      and cards.version = v.value ->> 1
      and cards.next_rotation_at = v.value ->> 2
    returning cards.id`;
}

function rotateDuePostgres(rotations: readonly DueRotation[]) {
  const column = <T>(pick: (r: DueRotation) => T) => rotations.map(pick);
  return sql<{ id: string }>`
    update cards set
      cvv_service_code = v.service_code,
      rotation_interval_hours = v.interval_hours,
      next_rotation_at = v.next_rotation_at,
      last_scheduled_at = v.last_scheduled_at,
      last_rotated_at = v.rotated_at,
      cvv_history = v.cvv_history,
      cvv_compromised_at = null,
      cvv_wrong_tries = '',
      updated_at = v.rotated_at,
      version = cards.version + 1
    from unnest(
      ${column((r) => r.id)}::text[],
      ${column((r) => r.expected.version)}::integer[],
      ${column((r) => r.expected.dueAt)}::text[],
      ${column((r) => r.changes.cvv_service_code)}::text[],
      ${column((r) => r.changes.rotation_interval_hours)}::integer[],
      ${column((r) => r.changes.next_rotation_at)}::text[],
      ${column((r) => r.changes.last_scheduled_at)}::text[],
      ${column((r) => r.changes.last_rotated_at)}::text[],
      ${column((r) => r.changes.cvv_history)}::text[]
    ) as v(id, expected_version, due_at, service_code, interval_hours, next_rotation_at, last_scheduled_at, rotated_at, cvv_history)
    where cards.id = v.id
      and cards.version = v.expected_version
      and cards.next_rotation_at = v.due_at
    returning cards.id`;
}

/**
 * Cards with a sealed PAN or PIN block not under the given envelope prefixes (portable substr()). A PIN imported
 * as a PVV only has no block to move: only its PAN counts.
 */
function notSealedUnder(tx: Db, panPrefix: string, pinPrefix: string) {
  return tx
    .selectFrom("cards")
    .where((eb) =>
      eb.or([
        eb(sql`substr(pan_sealed, 1, ${panPrefix.length})`, "!=", panPrefix),
        eb.and([
          eb(sql`substr(pin_sealed, 1, ${pinPrefix.length})`, "!=", pinPrefix),
          eb("pin_sealed", "!=", PVV_ONLY_PIN),
        ]),
      ]),
    );
}

export type CardRepo = ReturnType<typeof createCardRepo>;
