// Online re-encryption after `keys rotate`: every sealed PAN and PIN block moves to the active pan-data and
// pin-storage key versions in small batches while the API keeps serving. Each batch is one transaction whose
// updates are conditional on the envelopes read, with one audit record per tenant touched; keys stay in keys/.
import type { KeyProvider } from "../keys/key-provider.js";
import type { CardRepo } from "../store/card-repo.js";
import type { Store } from "../store/db.js";
import type { AuditRecorder } from "./audit.js";

export interface KeyRotationServiceDeps {
  store: Pick<Store, "transaction">;
  cards: CardRepo;
  keys: KeyProvider;
  record: AuditRecorder;
}

export interface BatchResult {
  /** Cards found still sealed under an older key version. */
  found: number;
  /** Cards re-encrypted (a card changed meanwhile is skipped and found again by the next batch). */
  reencrypted: number;
}

export function createKeyRotationService(deps: KeyRotationServiceDeps) {
  const prefixes = () => ({
    pan: `v1:${deps.keys.activeKeyId("pan-data")}:`,
    pin: `v1:${deps.keys.activeKeyId("pin-storage")}:`,
  });

  return {
    /** Re-encrypts up to `limit` cards still sealed under an older key version. */
    async reencryptBatch(limit: number): Promise<BatchResult> {
      const { pan, pin } = prefixes();
      const rows = await deps.cards.listNotSealedUnder(pan, pin, limit);
      if (rows.length === 0) return { found: 0, reencrypted: 0 };
      // Crypto outside the transaction, so the write lock is held only for the conditional updates.
      const next = await Promise.all(
        rows.map(async (row) => {
          const binding = { tenantId: row.tenant_id, cardId: row.id };
          const clearPan = await deps.keys.openPan(row.pan_sealed, binding);
          return {
            pan_sealed: await deps.keys.resealPan(row.pan_sealed, binding),
            pin_sealed: await deps.keys.resealPin(clearPan, {
              pvkId: row.pvk_id,
              pvki: row.pvki,
              pvv: row.pvv,
              pinSealed: row.pin_sealed,
            }),
          };
        }),
      );
      const reencrypted = await deps.store.transaction(async (tx) => {
        const perTenant = new Map<string, number>();
        for (const [i, row] of rows.entries()) {
          if (await deps.cards.replaceSealed(row.id, row, next[i]!, tx)) {
            perTenant.set(row.tenant_id, (perTenant.get(row.tenant_id) ?? 0) + 1);
          }
        }
        for (const [tenantId, cards] of perTenant) {
          await deps.record(
            tx,
            { tenantId, subject: "cardvault:key-rotation" },
            {
              action: "keys.reencrypt",
              outcome: "success",
              details: { cards, panKeyId: pan.slice(3, -1), pinKeyId: pin.slice(3, -1) },
            },
          );
        }
        return [...perTenant.values()].reduce((a, b) => a + b, 0);
      });
      return { found: rows.length, reencrypted };
    },

    /** Cards still sealed under an older key version (0 when the rotation is complete). */
    async remaining(): Promise<number> {
      const { pan, pin } = prefixes();
      return deps.cards.countNotSealedUnder(pan, pin);
    },
  };
}

export type KeyRotationService = ReturnType<typeof createKeyRotationService>;
