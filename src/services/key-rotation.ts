// Online re-encryption after `keys rotate`: every sealed PAN and PIN block moves to the active pan-data and
// pin-storage key versions in small batches while the API keeps serving. The key provider reseals each card
// as it is stored (the clear PAN and PIN stay inside it). A batch is one transaction: the cards read, their
// envelopes replaced each only if still the ones read (on PostgreSQL a PIN set meanwhile wins and the card is
// found again by the next batch), and one audit record per tenant touched.
import type { KeyProvider } from "../keys/key-provider.js";
import type { CardRepo } from "../store/card-repo.js";
import type { Store } from "../store/db.js";
import type { AuditRecorder } from "./audit.js";
import { sealedCardOf } from "./card-transaction.js";

export interface KeyRotationServiceDeps {
  store: Pick<Store, "transaction">;
  cards: Pick<CardRepo, "listNotSealedUnder" | "countNotSealedUnder" | "replaceSealed">;
  keys: Pick<KeyProvider, "activeKeyId" | "reseal">;
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
    reencryptBatch(limit: number): Promise<BatchResult> {
      const { pan, pin } = prefixes();
      return deps.store.transaction(async (tx) => {
        const rows = await deps.cards.listNotSealedUnder(pan, pin, limit, tx);
        if (rows.length === 0) return { found: 0, reencrypted: 0 };
        const next = await Promise.all(
          rows.map(async (row) => {
            const sealed = await deps.keys.reseal(sealedCardOf(row));
            return { pan_sealed: sealed.panSealed, pin_sealed: sealed.pinSealed };
          }),
        );
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
        return { found: rows.length, reencrypted: [...perTenant.values()].reduce((a, b) => a + b, 0) };
      });
    },

    /** Cards still sealed under an older key version (0 when the rotation is complete). */
    async remaining(): Promise<number> {
      const { pan, pin } = prefixes();
      return deps.cards.countNotSealedUnder(pan, pin);
    },
  };
}

export type KeyRotationService = ReturnType<typeof createKeyRotationService>;
