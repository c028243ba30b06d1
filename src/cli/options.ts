// Shared command-line parsing: strict flags, --data-dir everywhere, and config built from env + flags.
import { type ParseArgsConfig, parseArgs } from "node:util";
import { type Config, loadConfig } from "../config.js";
import { UsageError } from "./io.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Every command that reads the store or keys takes these. */
export const dataDirOption = {
  "data-dir": { type: "string" },
  "database-url": { type: "string" },
} as const satisfies Options;

export function parse<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

type Flag = string | boolean | undefined;

export function configFrom(values: {
  "data-dir"?: Flag;
  "database-url"?: Flag;
  host?: Flag;
  port?: Flag;
}): Config {
  const str = (v: Flag) => (typeof v === "string" ? v : undefined);
  return loadConfig(process.env, {
    dataDir: str(values["data-dir"]),
    databaseUrl: str(values["database-url"]),
    host: str(values.host),
    port: str(values.port),
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
