// Card import (issue 15): a card program moving from another processor brings its cards — PANs, expiries,
// keys, PINs (as PVVs or enciphered PIN blocks), counters and vendor identifiers — from a file (CLI) or a
// request body (API). Lines are taken in batches; each batch is checked (domain/card-import.ts), its PANs
// sealed and its PINs translated inside the key provider, and then written in one transaction that re-checks
// what it is about to insert, so that:
// - an import is idempotent by PAN fingerprint within the tenant: a card already there is "already present",
//   never written twice, so the same file run again imports nothing, and an import killed half-way (whose
//   open batch rolled back) run again finishes the job;
// - a refused line costs only itself: its number and a reason (fields, never values) are reported and the
//   rest goes on; nothing secret (PAN beyond first six/last four, PIN block, PVV) reaches a reason, an audit
//   row or a progress report.
// Each imported card gets one audit record in the batch's transaction (action card.import, with its line
// number). No card.created events: a migration must not replay a portfolio's creation to the program.
import { CVV2_SERVICE_CODE } from "../crypto/cvv.js";
import { type CardStatus, type CardType, PVV_ONLY_PIN } from "../domain/card.js";
import { type ImportLine, LineRejected, type LineRules, parseNdjsonLine } from "../domain/card-import.js";
import { AppError } from "../domain/errors.js";
import { type RotationSchedule, scheduleEvery } from "../domain/rotation-schedule.js";
import type { KeyProvider, KeyType, SealedCard, StoredPin } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import { newPublicToken, uuidv7 } from "../lib/ids.js";
import type { CardImportRepo } from "../store/card-import-repo.js";
import type { CardRepo } from "../store/card-repo.js";
import { isUniqueViolation, type Store } from "../store/db.js";
import type { CardImportsTable, NewCardRow, TenantRow } from "../store/schema.js";
import type { TenantRepo } from "../store/tenant-repo.js";
import type { Actor, AuditBatchRecorder } from "./audit.js";
import { NEW_PIN_LENGTH } from "./pin.js";
import { scheduleColumns } from "./rotation.js";

/** One line as read: its number in the file (1-based, the CSV header included) and its text. */
export interface SourceLine {
  number: number;
  text: string;
}

/** A line parsed into a card, or refused (domain/card-import.ts's parseNdjsonLine / parseCsvLine). */
export type LineParser = (text: string, rules: LineRules) => ImportLine;

export interface ImportRejection {
  line: number;
  reason: string;
}

export interface ImportCounts {
  /** Lines read (blank lines not counted). */
  lines: number;
  imported: number;
  alreadyPresent: number;
  rejected: number;
}

export interface ImportOptions {
  parse: LineParser;
  /** Check everything (keys, PIN blocks, duplicates), write nothing. */
  dryRun?: boolean;
  /** false accepts PANs with a wrong Luhn check digit (certification test cards). */
  luhn?: boolean;
  batchSize?: number;
  onRejected?: (rejection: ImportRejection) => void | Promise<void>;
  /** After each batch: the counts so far. */
  onProgress?: (counts: ImportCounts) => void;
}

export interface CardImportServiceDeps {
  store: Pick<Store, "transaction" | "kind">;
  tenants: Pick<TenantRepo, "find">;
  cards: Pick<CardRepo, "insertMany" | "fingerprintOwners" | "takenTokens" | "takenPismoIds">;
  keys: Pick<
    KeyProvider,
    "listKeys" | "activeKeyId" | "sealPan" | "panFingerprint" | "importPin" | "sealRandomPin"
  >;
  imports: Pick<CardImportRepo, "insert" | "find">;
  recordMany: AuditBatchRecorder;
  clock: Clock;
}

/** What GET /v1/card-imports/{id} shows: the counts and each rejected line's number and reason. */
export interface CardImportView extends ImportCounts {
  id: string;
  dryRun: boolean;
  rejections: ImportRejection[];
  createdAt: string;
  finishedAt: string;
}

function importView(row: CardImportsTable): CardImportView {
  return {
    id: row.id,
    dryRun: row.dry_run === 1,
    lines: row.lines,
    imported: row.imported,
    alreadyPresent: row.already_present,
    rejected: row.rejected,
    rejections: JSON.parse(row.rejects) as ImportRejection[],
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

/** An NDJSON body's lines, numbered from 1. */
async function* linesOf(body: string): AsyncIterable<SourceLine> {
  const lines = body.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) yield { number: i + 1, text: lines[i]! };
}

export const DEFAULT_IMPORT_BATCH = 500;

/** A card ready to insert, with what decides whether it still may be. */
interface Prepared {
  line: number;
  row: NewCardRow;
  tokenGiven: boolean;
}

export function createCardImportService(deps: CardImportServiceDeps) {
  /** The key ids a line may name, by id: checked once per import against the provider's list. */
  function keyTypesById(): Map<string, KeyType> {
    return new Map(deps.keys.listKeys().map((k) => [k.id, k.type]));
  }

  function keyOf(types: Map<string, KeyType>, field: string, id: string, type: KeyType): string {
    const actual = types.get(id);
    if (actual === undefined) throw new LineRejected(`${field}: no key ${id} in the key provider`);
    if (actual !== type) throw new LineRejected(`${field}: key ${id} is a ${actual} key, not a ${type} key`);
    return id;
  }

  /** What a line becomes: a sealed card row, its PIN translated inside the key provider. */
  async function prepare(
    tenant: TenantRow,
    line: ImportLine,
    fingerprint: string,
    keyTypes: Map<string, KeyType>,
    now: Date,
  ): Promise<NewCardRow> {
    // Unnamed keys are the card program's own (tenants update --cvk/--pvk), else the provider's active ones.
    const cvkId = line.cvkId
      ? keyOf(keyTypes, "cvkId", line.cvkId, "cvk")
      : (tenant.cvk_id ?? deps.keys.activeKeyId("cvk"));
    const pvkId = line.pvkId
      ? keyOf(keyTypes, "pvkId", line.pvkId, "pvk")
      : (tenant.pvk_id ?? deps.keys.activeKeyId("pvk"));
    if ((line.cvvTriesRemaining ?? 0) > tenant.max_cvv_tries) {
      throw new LineRejected(`cvvTriesRemaining: above the tenant's maximum of ${tenant.max_cvv_tries}`);
    }
    if ((line.pinTriesRemaining ?? 0) > tenant.max_pin_tries) {
      throw new LineRejected(`pinTriesRemaining: above the tenant's maximum of ${tenant.max_pin_tries}`);
    }
    const id = uuidv7(deps.clock);
    const binding = { tenantId: tenant.id, cardId: id };
    const panSealed = await deps.keys.sealPan(line.pan, binding);
    const serviceCode = line.serviceCode ?? CVV2_SERVICE_CODE;
    const card: SealedCard = { ...binding, panSealed, expiry: line.expiry, cvkId, serviceCode };
    const pin = await pinOf(card, line, pvkId);
    const interval =
      line.cvvRotationIntervalHours ??
      (line.type === "virtual" ? tenant.default_rotation_interval_hours : null);
    const schedule: RotationSchedule =
      interval === null || line.status === "closed"
        ? { intervalHours: interval, nextRotationAt: null, lastScheduledAt: null }
        : scheduleEvery(now, interval);
    const stamp = now.toISOString();
    return {
      id,
      tenant_id: tenant.id,
      public_token: line.publicToken ?? newPublicToken(),
      type: line.type,
      status: line.status,
      pan_sealed: panSealed,
      pan_fingerprint: fingerprint,
      pan_first6: line.pan.slice(0, 6),
      pan_last4: line.pan.slice(-4),
      expiry: line.expiry,
      cardholder_name: line.cardholderName ?? null,
      customer_reference: line.customerReference ?? null,
      cvk_id: cvkId,
      cvv_service_code: serviceCode,
      cvv_tries_remaining: line.cvvTriesRemaining ?? tenant.max_cvv_tries,
      pin_sealed: pin.pinSealed,
      pvk_id: pin.pvkId,
      pvki: pin.pvki,
      pvv: pin.pvv,
      pin_tries_remaining: line.pinTriesRemaining ?? tenant.max_pin_tries,
      created_at: stamp,
      updated_at: stamp,
      ...scheduleColumns(schedule),
      last_rotated_at: null,
      test_clock_id: null,
      pismo_id: line.pismoId ?? null,
    };
  }

  async function pinOf(card: SealedCard, line: ImportLine, pvkId: string): Promise<StoredPin> {
    const pin = line.pin;
    if (pin === undefined) {
      // No PIN in the file: the card gets a random one, as a new card does (seen by no one).
      return deps.keys.sealRandomPin(card, NEW_PIN_LENGTH);
    }
    if (pin.kind === "pvv") return { pvkId, pvki: pin.pvki, pvv: pin.pvv, pinSealed: PVV_ONLY_PIN };
    try {
      return await deps.keys.importPin(
        card,
        { format: pin.format, pinBlock: pin.pinBlock, keyId: pin.zpkId },
        { pvkId, pvki: pin.pvki ?? 1, ...(pin.pvv === undefined ? {} : { pvv: pin.pvv }) },
      );
    } catch (error) {
      if (error instanceof AppError && error.code === "validation_failed") {
        throw new LineRejected(`pin: ${error.message}`);
      }
      throw error;
    }
  }

  const service = {
    /**
     * Imports the lines for the actor's tenant, batch by batch. Returns the counts; each rejected line goes to
     * onRejected as it is found. Throws only for what stops the whole import (unknown tenant, store failure).
     */
    async run(actor: Actor, lines: AsyncIterable<SourceLine>, options: ImportOptions): Promise<ImportCounts> {
      const tenant = await deps.tenants.find(actor.tenantId);
      if (!tenant) throw new AppError("forbidden", "The tenant is not registered with this service.");
      const keyTypes = keyTypesById();
      const rules: LineRules = { now: deps.clock.now(), luhn: options.luhn ?? true };
      const size = options.batchSize ?? DEFAULT_IMPORT_BATCH;
      const counts: ImportCounts = { lines: 0, imported: 0, alreadyPresent: 0, rejected: 0 };
      // Within one run: a PAN, token or Pismo id met on an earlier line (a later line with it is decided here).
      const seen = {
        fingerprints: new Set<string>(),
        tokens: new Set<string>(),
        pismoIds: new Set<number>(),
      };

      const rejectLine = async (line: number, reason: string) => {
        counts.rejected++;
        await options.onRejected?.({ line, reason });
      };

      async function runBatch(batch: SourceLine[]): Promise<void> {
        const now = deps.clock.now();
        const parsed: { line: number; card: ImportLine; fingerprint: string }[] = [];
        for (const source of batch) {
          try {
            const card = options.parse(source.text, rules);
            parsed.push({ line: source.number, card, fingerprint: await deps.keys.panFingerprint(card.pan) });
          } catch (error) {
            if (!(error instanceof LineRejected)) throw error;
            await rejectLine(source.number, error.message);
          }
        }
        const owners = await deps.cards.fingerprintOwners(parsed.map((p) => p.fingerprint));
        const tokens = await deps.cards.takenTokens(parsed.flatMap((p) => p.card.publicToken ?? []));
        const pismoIds = await deps.cards.takenPismoIds(
          tenant!.id,
          parsed.flatMap((p) => p.card.pismoId ?? []),
        );
        const ready: Prepared[] = [];
        for (const { line, card, fingerprint } of parsed) {
          const owner = owners.get(fingerprint);
          if (seen.fingerprints.has(fingerprint) || owner === tenant!.id) {
            counts.alreadyPresent++;
            continue;
          }
          try {
            if (owner !== undefined) throw new LineRejected("pan: the card is registered to another tenant");
            if (card.publicToken && (tokens.has(card.publicToken) || seen.tokens.has(card.publicToken))) {
              throw new LineRejected("publicToken: already in use by another card");
            }
            if (card.pismoId && (pismoIds.has(card.pismoId) || seen.pismoIds.has(card.pismoId))) {
              throw new LineRejected("aliases.pismo: already in use by another card of the tenant");
            }
            const row = await prepare(tenant!, card, fingerprint, keyTypes, now);
            ready.push({ line, row, tokenGiven: card.publicToken !== undefined });
            seen.fingerprints.add(fingerprint);
            if (card.publicToken) seen.tokens.add(card.publicToken);
            if (card.pismoId) seen.pismoIds.add(card.pismoId);
          } catch (error) {
            if (!(error instanceof LineRejected)) throw error;
            await rejectLine(line, error.message);
          }
        }
        if (options.dryRun) counts.imported += ready.length;
        else await write(ready);
      }

      /**
       * One transaction per batch. Another import of the same cards running at once may have written some of
       * them since they were checked: the transaction checks again and leaves those out (already present), and
       * a race it could not see (a unique index refusing the insert) runs the check again.
       */
      async function write(ready: Prepared[]): Promise<void> {
        for (let attempt = 1; ; attempt++) {
          try {
            const late = await deps.store.transaction(async (tx) => {
              const present = await deps.cards.fingerprintOwners(
                ready.map((p) => p.row.pan_fingerprint),
                tx,
              );
              const taken = await deps.cards.takenTokens(
                ready.map((p) => p.row.public_token),
                tx,
              );
              const decided = { alreadyPresent: 0, rejected: [] as ImportRejection[] };
              const rows = ready.filter(({ line, row, tokenGiven }) => {
                if (present.has(row.pan_fingerprint)) {
                  decided.alreadyPresent++;
                  return false;
                }
                if (!taken.has(row.public_token)) return true;
                if (!tokenGiven) {
                  row.public_token = newPublicToken();
                  return true;
                }
                decided.rejected.push({ line, reason: "publicToken: already in use by another card" });
                return false;
              });
              await deps.cards.insertMany(
                rows.map((p) => p.row),
                tx,
              );
              await deps.recordMany(
                tx,
                rows.map(({ line, row }) => ({
                  actor,
                  entry: {
                    action: "card.import" as const,
                    outcome: "success",
                    card: { id: row.id, public_token: row.public_token },
                    details: { line, type: row.type as CardType, status: row.status as CardStatus },
                  },
                })),
              );
              return { ...decided, imported: rows.length };
            });
            counts.imported += late.imported;
            counts.alreadyPresent += late.alreadyPresent;
            for (const r of late.rejected) await rejectLine(r.line, r.reason);
            return;
          } catch (error) {
            if (!isUniqueViolation(error) || attempt >= 3) throw error;
          }
        }
      }

      let batch: SourceLine[] = [];
      for await (const line of lines) {
        if (line.text.trim() === "") continue;
        counts.lines++;
        batch.push(line);
        if (batch.length >= size) {
          await runBatch(batch);
          batch = [];
          options.onProgress?.({ ...counts });
        }
      }
      if (batch.length > 0) {
        await runBatch(batch);
        options.onProgress?.({ ...counts });
      }
      return counts;
    },

    /**
     * The API's import: an NDJSON body (bounded by the route), processed in the request, and its outcome kept
     * under an id for GET /v1/card-imports/{id}.
     */
    async importBody(actor: Actor, body: string, options: { dryRun: boolean }): Promise<CardImportView> {
      const createdAt = deps.clock.now().toISOString();
      const rejections: ImportRejection[] = [];
      const counts = await service.run(actor, linesOf(body), {
        parse: parseNdjsonLine,
        dryRun: options.dryRun,
        onRejected: (r) => {
          rejections.push(r);
        },
      });
      // A body with no card in it (every line refused) is bad input: a 400 naming the lines, and no record.
      if (counts.imported + counts.alreadyPresent === 0) {
        throw new AppError("validation_failed", "No line of the body is a card that can be imported.", {
          fields: Object.fromEntries(rejections.slice(0, 100).map((r) => [`line ${r.line}`, [r.reason]])),
        });
      }
      const row: CardImportsTable = {
        id: uuidv7(deps.clock),
        tenant_id: actor.tenantId,
        actor: actor.subject,
        dry_run: options.dryRun ? 1 : 0,
        lines: counts.lines,
        imported: counts.imported,
        already_present: counts.alreadyPresent,
        rejected: counts.rejected,
        rejects: JSON.stringify(rejections),
        created_at: createdAt,
        finished_at: deps.clock.now().toISOString(),
      };
      await deps.imports.insert(row);
      return importView(row);
    },

    async get(actor: Actor, id: string): Promise<CardImportView> {
      const row = await deps.imports.find(actor.tenantId, id);
      if (!row) throw new AppError("not_found", "No card import with this id.");
      return importView(row);
    },
  };
  return service;
}

export type CardImportService = ReturnType<typeof createCardImportService>;
