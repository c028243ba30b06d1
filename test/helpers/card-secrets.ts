// Test-side access to what a card really holds, computed independently of the service and its key provider:
// the PAN opened from the database row with the keystore's own key material, the CVV re-derived with the
// crypto module under the keystore's CVK.
import { createDecipheriv } from "node:crypto";
import { join } from "node:path";
import { computeCvv } from "../../src/crypto/cvv.js";
import type { KeyType } from "../../src/keys/key-provider.js";
import { type ClearKey, loadKeystore } from "../../src/keys/keystore-file.js";
import type { Harness } from "./harness.js";
import { TEST_MASTER_KEY } from "./harness.js";

export async function cardRow(h: Harness, publicToken: string) {
  return h.runtime.store.db
    .selectFrom("cards")
    .selectAll()
    .where("public_token", "=", publicToken)
    .executeTakeFirstOrThrow();
}

/** Opens a sealed PAN ("v1:<key id>:<nonce>:<ct‖tag>", AAD "cardvault:pan:<tenant>:<card>") by hand. */
export function openSealedPan(
  keys: readonly ClearKey[],
  row: { pan_sealed: string; tenant_id: string; id: string },
): string {
  const [, kid, nonce, ct] = row.pan_sealed.split(":");
  const key = keys.find((k) => k.id === kid);
  if (!key || !nonce || !ct) throw new Error(`no key for ${row.pan_sealed.slice(0, 24)}`);
  const raw = Buffer.from(ct, "base64url");
  const decipher = createDecipheriv("aes-256-gcm", key.material, Buffer.from(nonce, "base64url"));
  decipher.setAAD(Buffer.from(`cardvault:pan:${row.tenant_id}:${row.id}`));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(0, raw.length - 16)), decipher.final()]).toString(
    "utf8",
  );
}

export function keystoreOf(dataDir: string, masterKeyHex = TEST_MASTER_KEY): ClearKey[] {
  return loadKeystore(join(dataDir, "keystore.json"), Buffer.from(masterKeyHex, "hex"));
}

export async function panOf(h: Harness, publicToken: string): Promise<string> {
  return openSealedPan(keystoreOf(h.dataDir), await cardRow(h, publicToken));
}

export function keyMaterial(h: Harness, id: string): Buffer;
export function keyMaterial(h: Harness, type: KeyType, active: true): Buffer;
export function keyMaterial(h: Harness, idOrType: string, active?: true): Buffer {
  const keys = keystoreOf(h.dataDir);
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
