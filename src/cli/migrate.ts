// `cardvault migrate`: apply the store's migrations.
import { migrateToLatest, openSqliteStore } from "../store/db.js";
import type { CliIo } from "./io.js";
import { configFrom, dataDirOption, parse } from "./options.js";

export async function migrateCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parse(args, dataDirOption);
  const config = configFrom(values);
  const store = openSqliteStore(config.databaseFile);
  try {
    const applied = await migrateToLatest(store.db);
    io.stdout(applied.length ? `applied: ${applied.join(", ")}` : "schema is up to date");
    return 0;
  } finally {
    await store.close();
  }
}
