// API clients (OAuth2 client credentials, RFC 6749 §4.4): an operator registers a tenant's client with the
// scopes it may be granted; the secret is shown once and stored only as a slow hash (lib/secret-hash.ts).
// rotateSecret issues a new secret and keeps the previous one valid for an overlap window, so a fleet can move
// over without refusals; revoke refuses the client from then on (tokens already issued run out with their
// short lifetime). Every change is one transaction: read, write guarded by the row's version, audit record.
import { randomBytes } from "node:crypto";
import { AppError } from "../domain/errors.js";
import type { Clock } from "../lib/clock.js";
import { hashSecret } from "../lib/secret-hash.js";
import type { ApiClientRepo } from "../store/api-client-repo.js";
import type { Store } from "../store/db.js";
import type { ApiClientRow } from "../store/schema.js";
import type { TenantRepo } from "../store/tenant-repo.js";
import type { AuditRecorder } from "./audit.js";

/** Who changes clients: the operator, through the CLI. */
const OPERATOR = { subject: "operator:cli" };

export interface ApiClientView {
  clientId: string;
  tenantId: string;
  name: string | null;
  scopes: string[];
  createdAt: string;
  rotatedAt: string | null;
  /** After a rotation: until when the previous secret is still accepted. */
  previousSecretValidUntil: string | null;
  revokedAt: string | null;
}

export interface IssuedSecret {
  client: ApiClientView;
  /** Shown once; only its hash is kept. */
  clientSecret: string;
}

/** The longest overlap a rotation may keep the previous secret for. */
export const MAX_SECRET_OVERLAP_SECONDS = 30 * 86_400;

export function createApiClientService(deps: {
  store: Pick<Store, "transaction">;
  clients: ApiClientRepo;
  tenants: Pick<TenantRepo, "find">;
  record: AuditRecorder;
  clock: Clock;
  /** The scopes a client may hold (http/auth.ts's list). */
  knownScopes: readonly string[];
}) {
  async function current(clientId: string) {
    const row = await deps.clients.find(clientId);
    if (!row) throw new AppError("not_found", `No API client ${clientId}.`);
    return row;
  }

  return {
    async add(input: { tenantId: string; scopes: readonly string[]; name?: string }): Promise<IssuedSecret> {
      const scopes = [...new Set(input.scopes)];
      const unknown = scopes.filter((s) => !deps.knownScopes.includes(s));
      if (scopes.length === 0 || unknown.length > 0) {
        throw new AppError(
          "validation_failed",
          unknown.length > 0
            ? `Unknown scope ${unknown.join(", ")}; known: ${deps.knownScopes.join(" ")}`
            : "A client needs at least one scope.",
        );
      }
      if (!(await deps.tenants.find(input.tenantId))) {
        throw new AppError("not_found", `No tenant ${input.tenantId}; add it first (tenants add).`);
      }
      const clientSecret = newSecret();
      const row: ApiClientRow = {
        id: `cvc_${randomBytes(16).toString("base64url")}`,
        tenant_id: input.tenantId,
        name: input.name ?? null,
        scope: scopes.join(" "),
        secret_hash: await hashSecret(clientSecret),
        previous_secret_hash: null,
        previous_valid_until: null,
        created_at: deps.clock.now().toISOString(),
        rotated_at: null,
        revoked_at: null,
        version: 0,
      };
      await deps.store.transaction(async (tx) => {
        await deps.clients.insert(row, tx);
        await deps.record(
          tx,
          { tenantId: row.tenant_id, ...OPERATOR },
          {
            action: "api_client.created",
            outcome: "success",
            details: { clientId: row.id, scope: row.scope },
          },
        );
      });
      return { client: viewOf(row), clientSecret };
    },

    async list(tenantId?: string): Promise<ApiClientView[]> {
      return (await deps.clients.list(tenantId)).map(viewOf);
    },

    /** Refuses the client from now on; revoking a revoked client changes nothing. */
    async revoke(clientId: string): Promise<ApiClientView> {
      const row = await current(clientId);
      if (row.revoked_at) return viewOf(row);
      const now = deps.clock.now().toISOString();
      await deps.store.transaction(async (tx) => {
        if (!(await deps.clients.update(row.id, row.version, { revoked_at: now }, tx))) {
          throw new AppError("concurrent_update", "The client changed meanwhile; run the command again.");
        }
        await deps.record(
          tx,
          { tenantId: row.tenant_id, ...OPERATOR },
          {
            action: "api_client.revoked",
            outcome: "success",
            details: { clientId: row.id },
          },
        );
      });
      return viewOf({ ...row, revoked_at: now });
    },

    /**
     * A new secret; the current one stays accepted for `overlapSeconds` (0: refused at once). A secret kept
     * from an earlier rotation is dropped: at most two secrets are ever valid.
     */
    async rotateSecret(clientId: string, overlapSeconds: number): Promise<IssuedSecret> {
      if (
        !Number.isInteger(overlapSeconds) ||
        overlapSeconds < 0 ||
        overlapSeconds > MAX_SECRET_OVERLAP_SECONDS
      ) {
        throw new AppError(
          "validation_failed",
          `The overlap must be a whole number of seconds from 0 to ${MAX_SECRET_OVERLAP_SECONDS}.`,
        );
      }
      const row = await current(clientId);
      if (row.revoked_at) throw new AppError("validation_failed", `Client ${clientId} is revoked.`);
      const clientSecret = newSecret();
      const now = deps.clock.now();
      const change = {
        secret_hash: await hashSecret(clientSecret),
        previous_secret_hash: overlapSeconds > 0 ? row.secret_hash : null,
        previous_valid_until:
          overlapSeconds > 0 ? new Date(now.getTime() + overlapSeconds * 1000).toISOString() : null,
        rotated_at: now.toISOString(),
      };
      await deps.store.transaction(async (tx) => {
        if (!(await deps.clients.update(row.id, row.version, change, tx))) {
          throw new AppError("concurrent_update", "The client changed meanwhile; run the command again.");
        }
        await deps.record(
          tx,
          { tenantId: row.tenant_id, ...OPERATOR },
          {
            action: "api_client.secret_rotated",
            outcome: "success",
            details: { clientId: row.id, previousValidUntil: change.previous_valid_until },
          },
        );
      });
      return { client: viewOf({ ...row, ...change }), clientSecret };
    },
  };
}

export type ApiClientService = ReturnType<typeof createApiClientService>;

/** 256 random bits, prefixed so secret scanners can recognise a leaked one. */
function newSecret(): string {
  return `cvs_${randomBytes(32).toString("base64url")}`;
}

function viewOf(row: ApiClientRow): ApiClientView {
  return {
    clientId: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    scopes: row.scope.split(" ").filter(Boolean),
    createdAt: row.created_at,
    rotatedAt: row.rotated_at,
    previousSecretValidUntil: row.previous_valid_until,
    revokedAt: row.revoked_at,
  };
}
