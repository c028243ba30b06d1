// Card secrets for process-based tests, computed in the test process from the shared store and keystore
// (the same derivation the server uses), so a test can send a certainly-wrong CVV without asking the server.
import type { Runtime } from "../../src/runtime.js";

export async function wrongCvvFor(runtime: Runtime, publicToken: string): Promise<string> {
  const row = await runtime.store.db
    .selectFrom("cards")
    .selectAll()
    .where("public_token", "=", publicToken)
    .executeTakeFirstOrThrow();
  const pan = await runtime.keys.openPan(row.pan_sealed, { tenantId: row.tenant_id, cardId: row.id });
  const cvv = await runtime.keys.deriveCvv({
    cvkId: row.cvk_id,
    pan,
    expiry: row.expiry,
    serviceCode: row.cvv_service_code,
  });
  return String((Number(cvv) + 1) % 1000).padStart(3, "0");
}
