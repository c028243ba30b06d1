// Ordered list of migrations. Listed statically (not read from disk) so the same list serves tsx and dist/.
// Never edit a released migration: add the next file.
import type { Migration, MigrationProvider } from "kysely";
import * as m0001 from "./0001-initial.js";
import * as m0002 from "./0002-cvv-rotation.js";
import * as m0003 from "./0003-secure-data.js";
import * as m0004 from "./0004-webhooks.js";
import * as m0005 from "./0005-rate-limits.js";
import * as m0006 from "./0006-reveal-sessions.js";
import * as m0007 from "./0007-card-version.js";
import * as m0008 from "./0008-pin-block-format-1.js";
import * as m0009 from "./0009-cvv-history.js";
import * as m0010 from "./0010-reveal-sessions-by-card.js";
import * as m0011 from "./0011-rate-limit-expiry.js";
import * as m0012 from "./0012-wrong-try-budget.js";
import * as m0013 from "./0013-webhook-fairness.js";
import * as m0014 from "./0014-audit-operator-records.js";
import * as m0015 from "./0015-webhook-format.js";
import * as m0016 from "./0016-api-clients.js";
import * as m0017 from "./0017-tenant-keys.js";
import * as m0018 from "./0018-card-imports.js";

const migrations: Record<string, Migration> = {
  "0001-initial": m0001,
  "0002-cvv-rotation": m0002,
  "0003-secure-data": m0003,
  "0004-webhooks": m0004,
  "0005-rate-limits": m0005,
  "0006-reveal-sessions": m0006,
  "0007-card-version": m0007,
  "0008-pin-block-format-1": m0008,
  "0009-cvv-history": m0009,
  "0010-reveal-sessions-by-card": m0010,
  "0011-rate-limit-expiry": m0011,
  "0012-wrong-try-budget": m0012,
  "0013-webhook-fairness": m0013,
  "0014-audit-operator-records": m0014,
  "0015-webhook-format": m0015,
  "0016-api-clients": m0016,
  "0017-tenant-keys": m0017,
  "0018-card-imports": m0018,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};

export const latestMigration = Object.keys(migrations).sort().at(-1)!;
