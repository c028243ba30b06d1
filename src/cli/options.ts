// Shared command-line pieces: the options every store-reading command takes, and config built from env + flags.
import { userInfo } from "node:os";
import { type Config, loadConfig } from "../config.js";
import type { OptionSpecs } from "./command.js";
import { UsageError } from "./io.js";

/** The data directory: every command that reads the keystore or development secrets takes it. */
export const dataDirOption = {
  "data-dir": {
    type: "string",
    value: "DIR",
    help: "SQLite database, keystore and development secrets (default: $CARDVAULT_DATA_DIR, else ./data)",
  },
} as const satisfies OptionSpecs;

/** Every command that reads the store takes these. */
export const storeOptions = {
  ...dataDirOption,
  "database-url": {
    type: "string",
    value: "URL",
    help: "a postgres:// URL selects PostgreSQL (default: $CARDVAULT_DATABASE_URL, else SQLite in the data directory)",
  },
} as const satisfies OptionSpecs;

export interface ConfigFlags {
  "data-dir"?: string;
  "database-url"?: string;
  host?: string;
  port?: string;
}

/** The configuration: the environment (docs/configuration.md), with the flags given taking precedence. */
export function configFrom(values: ConfigFlags): Config {
  return loadConfig(process.env, {
    dataDir: values["data-dir"],
    databaseUrl: values["database-url"],
    host: values.host,
    port: values.port,
  });
}

/** "90s", "15m", "1h", "7d" → seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text);
  if (!match) throw new UsageError(`Invalid duration "${text}": use a number with s, m, h or d (e.g. 1h).`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[match[2] as "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}

export function integerOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a whole number.`);
  return Number(value);
}

/** The name ceremonies and key changes are recorded under: --operator, else the OS user running the command. */
export function operatorName(given: string | undefined): string {
  const name = given ?? userInfo().username;
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name))
    throw new UsageError("--operator must be 1–64 letters, digits, . _ @ or -");
  return name;
}
