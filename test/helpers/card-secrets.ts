// Test-side access to what a card really holds, computed independently of the HTTP layer: the PAN opened
// from the database row, the CVV re-derived with the crypto module under the keystore's CVK.
import { join } from "node:path";
import { computeCvv } from "../../src/crypto/cvv.js";
import type { KeyType } from "../../src/keys/key-provider.js";
import { loadKeystore } from "../../src/keys/keystore-file.js";
import type { Harness } from "./harness.js";
import { TEST_MASTER_KEY } from "./harness.js";

export async function cardRow(h: Harness, publicToken: string) {
  return h.runtime.store.db
    .selectFrom("cards")
    .selectAll()
    .where("public_token", "=", publicToken)
    .executeTakeFirstOrThrow();
}

export async function panOf(h: Harness, publicToken: string): Promise<string> {
  const row = await cardRow(h, publicToken);
  return h.runtime.keys.openPan(row.pan_sealed, { tenantId: row.tenant_id, cardId: row.id });
}

export function keyMaterial(h: Harness, id: string): Buffer;
export function keyMaterial(h: Harness, type: KeyType, active: true): Buffer;
export function keyMaterial(h: Harness, idOrType: string, active?: true): Buffer {
  const keys = loadKeystore(join(h.dataDir, "keystore.json"), Buffer.from(TEST_MASTER_KEY, "hex"));
  const key = active
    ? keys.find((k) => k.type === idOrType && k.active)
    : keys.find((k) => k.id === idOrType);
  if (!key) throw new Error(`no key ${idOrType}`);
  return key.material;
}

export async function expectedCvv(h: Harness, publicToken: string): Promise<string> {
  const row = await cardRow(h, publicToken);
  return computeCvv({
    cvk: keyMaterial(h, row.cvk_id),
    pan: await panOf(h, publicToken),
    expiry: row.expiry,
    serviceCode: row.cvv_service_code,
  });
}

/** A CVV that is certainly wrong for this card. */
export async function wrongCvv(h: Harness, publicToken: string): Promise<string> {
  const right = await expectedCvv(h, publicToken);
  return String((Number(right) + 1) % 1000).padStart(3, "0");
}

export async function auditActions(h: Harness, publicToken: string): Promise<string[]> {
  const rows = await h.runtime.store.db
    .selectFrom("audit_events")
    .select(["action", "outcome"])
    .where("public_token", "=", publicToken)
    .orderBy("id")
    .execute();
  return rows.map((r) => `${r.action}:${r.outcome}`);
}
