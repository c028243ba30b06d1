// The store for one command: opened from env + flags, closed whatever happens, and a service's refusal (an
// AppError: bad input, unknown id) told to the operator as a usage error (exit 2) rather than a stack trace.
// Kept apart from options.ts so `--help` never loads the store.
import { AppError } from "../domain/errors.js";
import { openStore } from "../runtime.js";
import type { Store } from "../store/db.js";
import { UsageError } from "./io.js";
import { type ConfigFlags, configFrom } from "./options.js";

export async function withStore<T>(values: ConfigFlags, work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(configFrom(values));
  try {
    return await work(store);
  } catch (error) {
    if (error instanceof AppError) throw new UsageError(error.message);
    throw error;
  } finally {
    await store.close();
  }
}
