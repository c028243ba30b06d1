// Development secrets: created under the data directory on first use so `npm start` works on a fresh clone.
// They are never used in production (config.ts refuses to start without real ones) and every use warns.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function devSecret(
  dataDir: string,
  name: string,
  bytes: number,
  warn: (message: string) => void,
): string {
  const file = join(dataDir, name);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, `${randomBytes(bytes).toString("hex")}\n`, { mode: 0o600 });
  }
  warn(`DEVELOPMENT KEY IN USE: ${file} — never use it for real cards; set the production variable instead.`);
  return readFileSync(file, "utf8").trim();
}
