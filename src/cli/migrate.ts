// `cardvault migrate`: apply the store's migrations (required before serving on PostgreSQL).
import { connectStore } from "../runtime.js";
import { ensureSchema } from "../store/db.js";
import type { CliIo } from "./io.js";
import { type ConfigFlags, configFrom } from "./options.js";

export async function migrateCommand(values: ConfigFlags, io: CliIo): Promise<number> {
  const store = connectStore(configFrom(values));
  try {
    const applied = await ensureSchema(store.db, { migrate: true });
    io.stdout(applied.length ? `applied: ${applied.join(", ")}` : "schema is up to date");
    return 0;
  } finally {
    await store.close();
  }
}
