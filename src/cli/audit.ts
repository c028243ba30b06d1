// `cardvault audit list`: the operator reads audit records, oldest first, one JSON object a line — a tenant's
// trail (--tenant ID, as GET /v1/audit-events shows it to the tenant), or the operator's own records
// (--operator): refused requests that no registered tenant owns (tokens that did not verify, tokens naming an
// unregistered tenant), which no API token can read.
import { createAuditService } from "../services/audit.js";
import { createAuditRepo } from "../store/audit-repo.js";
import { type CliIo, UsageError } from "./io.js";
import { type ConfigFlags, integerOption } from "./options.js";
import { withStore } from "./store.js";

/** What `audit list` takes. */
export interface AuditFlags extends ConfigFlags {
  operator?: boolean;
  tenant?: string;
  after?: string;
  limit?: string;
}

export async function auditCommand(values: AuditFlags, io: CliIo): Promise<number> {
  if (Boolean(values.operator) === (values.tenant !== undefined)) {
    throw new UsageError("give either --operator or --tenant ID; see `cardvault audit list --help`");
  }
  const limit = integerOption(values.limit, "limit") ?? 100;
  if (limit < 1 || limit > 1000) throw new UsageError("--limit must be from 1 to 1000.");
  return withStore(values, async (store) => {
    const audit = createAuditService({ audit: createAuditRepo(store.db) });
    const page = await audit.list(values.tenant ?? null, { cursor: values.after, limit });
    for (const item of page.items) io.stdout(JSON.stringify(item));
    if (page.nextCursor) io.stderr(`more: --after ${page.nextCursor}`);
    return 0;
  });
}
