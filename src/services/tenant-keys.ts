// Keys per card program: an operator names the CVK and PVK a tenant's new cards use (`cardvault tenants update
// ID --cvk KEY_ID --pvk KEY_ID`), typically keys imported by a ceremony that already back the program's cards
// elsewhere. Invariants: a key id must name a key of that type the provider holds (an unknown id or one of
// another type is refused, and nothing changes); the change is one transaction — the tenant read, a write
// guarded by the keys it was read with, and an audit row in the tenant's trail with the operator's name and
// the key ids and check values (never material); cards already created keep the keys recorded on them.
import { AppError } from "../domain/errors.js";
import type { KeyInfo, KeyProvider, KeyType } from "../keys/key-provider.js";
import type { Store } from "../store/db.js";
import type { TenantRow } from "../store/schema.js";
import type { TenantRepo } from "../store/tenant-repo.js";
import type { AuditRecorder } from "./audit.js";

export interface TenantKeysDeps {
  store: Pick<Store, "transaction">;
  tenants: Pick<TenantRepo, "find" | "updateKeys">;
  keys: Pick<KeyProvider, "listKeys">;
  record: AuditRecorder;
}

/** What to change: a key id, or null to go back to the provider's active version; absent: unchanged. */
export interface TenantKeysChange {
  cvkId?: string | null;
  pvkId?: string | null;
}

const MAX_ROUNDS = 5;

export function createTenantKeysService(deps: TenantKeysDeps) {
  function keyOf(id: string, type: KeyType, field: string): KeyInfo {
    const key = deps.keys.listKeys().find((k) => k.id === id);
    if (!key || key.type !== type || key.retired) {
      const why = !key ? "names no key" : key.retired ? "names a retired key" : `names a ${key.type} key`;
      throw new AppError(
        "validation_failed",
        `${field} ${id} ${why}; it must name a ${type} key (see \`keys list\`).`,
        {
          fields: { [field]: [`must name a ${type} key`] },
        },
      );
    }
    return key;
  }

  return {
    async update(operator: string, tenantId: string, change: TenantKeysChange): Promise<TenantRow> {
      if (change.cvkId === undefined && change.pvkId === undefined) {
        throw new AppError("validation_failed", "Nothing to change: give a CVK or a PVK.");
      }
      const cvk = change.cvkId ? keyOf(change.cvkId, "cvk", "cvk") : undefined;
      const pvk = change.pvkId ? keyOf(change.pvkId, "pvk", "pvk") : undefined;
      for (let round = 1; ; round++) {
        const updated = await deps.store.transaction(async (tx) => {
          const tenant = await deps.tenants.find(tenantId, tx);
          if (!tenant) throw new AppError("not_found", `No tenant ${tenantId}.`);
          const next = {
            cvk_id: change.cvkId === undefined ? tenant.cvk_id : change.cvkId,
            pvk_id: change.pvkId === undefined ? tenant.pvk_id : change.pvkId,
          };
          if (!(await deps.tenants.updateKeys(tenantId, tenant, next, tx))) return undefined;
          await deps.record(
            tx,
            { tenantId, subject: `operator:${operator}` },
            {
              action: "tenant.keys_changed",
              outcome: "success",
              details: {
                cvkId: next.cvk_id,
                cvkKcv: cvk?.kcv,
                previousCvkId: tenant.cvk_id,
                pvkId: next.pvk_id,
                pvkKcv: pvk?.kcv,
                previousPvkId: tenant.pvk_id,
              },
            },
          );
          return { ...tenant, ...next };
        });
        if (updated) return updated;
        if (round >= MAX_ROUNDS)
          throw new AppError("concurrent_update", `Tenant ${tenantId} kept changing; try again.`);
      }
    },
  };
}

export type TenantKeysService = ReturnType<typeof createTenantKeysService>;
