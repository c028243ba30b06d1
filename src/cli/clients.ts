// `cardvault clients add | list | revoke | rotate-secret`: a tenant's OAuth2 client-credentials clients. A new
// or rotated secret is printed once, on stdout, and never again: only its slow hash is stored.
import { scopes } from "../http/auth.js";
import { systemClock } from "../lib/clock.js";
import { createApiClientService } from "../services/api-clients.js";
import { createAuditRecorder } from "../services/audit.js";
import { createApiClientRepo } from "../store/api-client-repo.js";
import { createAuditRepo } from "../store/audit-repo.js";
import { createTenantRepo } from "../store/tenant-repo.js";
import { type CliIo, UsageError } from "./io.js";
import { type ConfigFlags, parseDuration } from "./options.js";
import { withStore } from "./store.js";

export interface ClientFlags extends ConfigFlags {
  tenant?: string;
  scope?: string;
  name?: string;
  overlap?: string;
}

export async function clientsCommand(
  action: "add" | "list" | "revoke" | "rotate-secret",
  values: ClientFlags,
  clientId: string | undefined,
  io: CliIo,
): Promise<number> {
  return withStore(values, async (store) => {
    const clients = createApiClientService({
      store,
      clients: createApiClientRepo(store.db),
      tenants: createTenantRepo(store.db),
      record: createAuditRecorder({ audit: createAuditRepo(store.db), clock: systemClock }),
      clock: systemClock,
      knownScopes: scopes,
    });
    if (action === "list") {
      for (const c of await clients.list(values.tenant)) {
        const state = c.revokedAt
          ? `\trevoked=${c.revokedAt}`
          : c.previousSecretValidUntil && c.previousSecretValidUntil > new Date().toISOString()
            ? `\tpreviousSecretValidUntil=${c.previousSecretValidUntil}`
            : "";
        io.stdout(
          `${c.clientId}\ttenant=${c.tenantId}\tscope="${c.scopes.join(" ")}"${c.name ? `\tname=${c.name}` : ""}${state}`,
        );
      }
      return 0;
    }
    if (action === "add") {
      if (!values.tenant || !values.scope) throw new UsageError('give --tenant ID and --scope "…"');
      const issued = await clients.add({
        tenantId: values.tenant,
        scopes: values.scope.split(/\s+/).filter(Boolean),
        name: values.name,
      });
      io.stdout(`client_id=${issued.client.clientId}`);
      io.stdout(`client_secret=${issued.clientSecret}`);
      io.stderr("The secret is shown once; store it now.");
      return 0;
    }
    if (!clientId) throw new UsageError("missing CLIENT_ID");
    if (action === "revoke") {
      const client = await clients.revoke(clientId);
      io.stdout(`revoked ${client.clientId} at ${client.revokedAt}`);
      return 0;
    }
    const issued = await clients.rotateSecret(clientId, parseDuration(values.overlap ?? "24h"));
    io.stdout(`client_id=${issued.client.clientId}`);
    io.stdout(`client_secret=${issued.clientSecret}`);
    io.stderr(
      issued.client.previousSecretValidUntil
        ? `The previous secret is accepted until ${issued.client.previousSecretValidUntil}. The new one is shown once.`
        : "The previous secret is refused from now on. The new one is shown once.",
    );
    return 0;
  });
}
