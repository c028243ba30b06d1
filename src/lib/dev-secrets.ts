// Development secrets: created under the data directory on first use so `npm start` works on a fresh clone.
// They are never used in production (config.ts refuses to start without real ones) and every use warns.
// Invariant: one value per data directory. Processes starting together each offer a random secret and exactly
// one is published (link(2), see private-files.ts); every process, winner or not, then uses the file's. The
// master key is resolved before the keystore is opened, so the keystore is always sealed by the published one.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createFileOnce } from "./private-files.js";

export function devSecret(
  dataDir: string,
  name: string,
  bytes: number,
  warn: (message: string) => void,
): string {
  const file = join(dataDir, name);
  if (!existsSync(file)) createFileOnce(file, `${randomBytes(bytes).toString("hex")}\n`);
  warn(`DEVELOPMENT KEY IN USE: ${file} — never use it for real cards; set the production variable instead.`);
  return readFileSync(file, "utf8").trim();
}
