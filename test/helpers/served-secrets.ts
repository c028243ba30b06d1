// Card secrets for process-based tests, computed in the test process from the shared store and keystore
// (the same derivation the server uses), so a test can send a certainly-wrong CVV without asking the server.
import type { Runtime } from "../../src/runtime.js";
import { sealedCardOf } from "../../src/services/card-transaction.js";

export async function wrongCvvFor(runtime: Runtime, publicToken: string): Promise<string> {
  const row = await runtime.store.db
    .selectFrom("cards")
    .selectAll()
    .where("public_token", "=", publicToken)
    .executeTakeFirstOrThrow();
  const cvv = await runtime.keys.deriveCvv(sealedCardOf(row));
  return String((Number(cvv) + 1) % 1000).padStart(3, "0");
}
