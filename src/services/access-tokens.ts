// The token endpoint's work (OAuth2 client credentials, RFC 6749 §4.4): authenticate the client against its
// slow-hashed secret(s), grant its scopes or the subset asked for, and have the key provider sign an access
// token (RFC 9068 claims; the same tenant and scope claims as any other token the service accepts). Failed
// attempts count per client id and per source address (domain/rate-limit.ts); past a limit the next attempt
// is refused before any secret is hashed. Refusals go to the audit's refusal counts (auth.refused rows), each
// issued token to the tenant's trail; neither ever holds a secret or a token.
import { randomUUID } from "node:crypto";
import {
  acceptedSecretHashes,
  claimedClientId,
  grantedScopes,
  OAuthError,
  parseTokenRequest,
} from "../domain/oauth.js";
import { type TokenFailureLimits, tokenFailureBuckets, verdict, windowOf } from "../domain/rate-limit.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import { decoyHash, verifySecret } from "../lib/secret-hash.js";
import type { ApiClientRepo } from "../store/api-client-repo.js";
import type { Store } from "../store/db.js";
import type { RateLimitRepo } from "../store/rate-limit-repo.js";
import type { AuditRecorder, RefusalRecorder } from "./audit.js";

export interface AccessTokenSettings {
  /** The iss and aud of every token (config.publicUrl). */
  issuer: string;
  /** The claim that names the tenant (config.auth.tenantClaim), as in every token the service accepts. */
  tenantClaim: string;
  ttlSeconds: number;
  failures: TokenFailureLimits;
}

export interface TokenAnswer {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope: string;
}

/** A token request as the HTTP layer hands it over: the parameters, the Authorization header, who sent it. */
export interface TokenCall {
  body: unknown;
  authorization: string | undefined;
  source: string;
  requestId: string;
}

/** Claimed client ids are kept to this length in the audit. */
const CLAIMED_ID_MAX = 64;

export function createAccessTokenService(
  deps: {
    store: Pick<Store, "transaction">;
    clients: Pick<ApiClientRepo, "find">;
    rateLimits: Pick<RateLimitRepo, "counts" | "increment">;
    keys: Pick<KeyProvider, "signAccessToken">;
    record: AuditRecorder;
    refusals: Pick<RefusalRecorder, "note">;
    clock: Clock;
  } & AccessTokenSettings,
) {
  const windowsOf = (source: string, clientId: string | undefined, now: Date) =>
    tokenFailureBuckets(deps.failures, source, clientId).map((bucket) => ({
      bucket,
      window: windowOf(now, bucket.windowSeconds),
    }));

  /** A refused attempt: counted in its buckets, then noted for the audit; the refusal is rethrown. */
  async function refuse(
    call: TokenCall,
    clientId: string | undefined,
    refusal: OAuthError,
    tenantId: string | null,
  ) {
    const now = deps.clock.now();
    await deps.rateLimits.increment(
      windowsOf(call.source, clientId, now).map(({ bucket, window }) => ({
        bucket: bucket.key,
        windowStart: window.start,
        windowEnd: window.end,
      })),
    );
    note(call, clientId, refusal, tenantId);
    return refusal;
  }

  function note(call: TokenCall, clientId: string | undefined, refusal: OAuthError, tenantId: string | null) {
    deps.refusals.note({
      tenantId,
      // Only a client that proved its secret is named as the caller; anyone else is their address.
      caller: tenantId !== null && clientId ? `oauth-client:${clientId}` : `client:${call.source}`,
      outcome: refusal.code,
      details: {
        endpoint: "token",
        ...(clientId ? { clientId: clientId.slice(0, CLAIMED_ID_MAX) } : {}),
      },
      requestId: call.requestId,
    });
  }

  return {
    /** Issues an access token, or throws OAuthError (RFC 6749 §5.2, or slow_down past a failure limit). */
    async issue(call: TokenCall): Promise<TokenAnswer> {
      const claimed = claimedClientId(call.body, call.authorization);
      const now = deps.clock.now();
      const windows = windowsOf(call.source, claimed, now);
      const counts = await deps.rateLimits.counts(
        windows.map(({ bucket, window }) => ({
          bucket: bucket.key,
          windowStart: window.start,
          windowEnd: window.end,
        })),
      );
      // The counts are of failures so far: this attempt, were it to fail too, is the next one.
      const next = new Map(windows.map(({ bucket }) => [bucket.key, (counts.get(bucket.key) ?? 0) + 1]));
      const limited = verdict(
        windows.map((w) => w.bucket),
        next,
        now,
      );
      if (!limited.allowed) {
        const refusal = new OAuthError(
          "slow_down",
          `Too many failed attempts for this ${limited.scope === "client" ? "client" : "address"}; retry after ${limited.retryAfterSeconds} s.`,
          limited.retryAfterSeconds,
        );
        note(call, claimed, refusal, null);
        throw refusal;
      }

      let tenantId: string | null = null;
      try {
        const request = parseTokenRequest(call.body, call.authorization);
        const client = await deps.clients.find(request.clientId);
        const hashes = client ? acceptedSecretHashes(client, now) : [await decoyHash()];
        const matches = await Promise.all(hashes.map((hash) => verifySecret(request.clientSecret, hash)));
        if (!client || !matches.some(Boolean)) {
          const refusal = new OAuthError("invalid_client", "The client credentials are not valid.");
          refusal.basic = request.basic;
          throw refusal;
        }
        tenantId = client.tenant_id;
        if (client.revoked_at) {
          throw new OAuthError("unauthorized_client", "This client was revoked; it may not obtain tokens.");
        }
        const scopes = grantedScopes(client.scope.split(" ").filter(Boolean), request.scope);
        const scope = scopes.join(" ");
        const issuedAt = Math.floor(now.getTime() / 1000);
        // RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; plus the tenant and scope claims of every
        // token this service accepts.
        const accessToken = await deps.keys.signAccessToken({
          iss: deps.issuer,
          aud: deps.issuer,
          sub: client.id,
          client_id: client.id,
          [deps.tenantClaim]: client.tenant_id,
          scope,
          iat: issuedAt,
          nbf: issuedAt,
          exp: issuedAt + deps.ttlSeconds,
          jti: randomUUID(),
        });
        await deps.store.transaction((tx) =>
          deps.record(
            tx,
            { tenantId: client.tenant_id, subject: `oauth-client:${client.id}`, requestId: call.requestId },
            { action: "oauth.token_issued", outcome: "success", details: { clientId: client.id, scope } },
          ),
        );
        return { access_token: accessToken, token_type: "Bearer", expires_in: deps.ttlSeconds, scope };
      } catch (error) {
        if (error instanceof OAuthError) throw await refuse(call, claimed, error, tenantId);
        throw error;
      }
    },
  };
}

export type AccessTokenService = ReturnType<typeof createAccessTokenService>;
