// Idempotency-Key (and Thredd's IdempotencyKey) for POST routes. The key is claimed atomically in the store
// before the handler runs; the response is kept for the configured TTL (24 h by default) and replayed to every
// retry with the same request. The same key with a different request is refused; a retry that arrives while
// the first is still running waits briefly for its answer. Keys belong to a tenant and a caller (the token's
// subject): two callers of one tenant never see each other's answers.
import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../domain/errors.js";
import type { Clock } from "../lib/clock.js";
import type { IdempotencyRepo } from "../store/idempotency-repo.js";

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
const PENDING_LEASE_MS = 60_000;
const WAIT_FOR_FIRST_MS = 2_000;
const POLL_MS = 25;

declare module "fastify" {
  interface FastifyContextConfig {
    idempotent?: boolean;
  }
  interface FastifyRequest {
    idempotencyClaim?: { tenantId: string; key: string };
    /** Set by the error handler: the answer is a failure to retry as it is (domain/errors.ts isTransient). */
    transientFailure?: boolean;
  }
}

interface StoredResponse {
  contentType: string | null;
  body: string;
}

/** The hooks of an idempotent route: claim or replay before the handler, keep the answer after it. */
export function idempotencyHooks(deps: { idempotency: IdempotencyRepo; clock: Clock; ttlHours: number }) {
  const { idempotency: repo, clock } = deps;

  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.principal) return;
    const header = request.headers["idempotency-key"] ?? request.headers.idempotencykey;
    if (header === undefined) return;
    const presented = Array.isArray(header) ? header[0] : header;
    if (presented === undefined || !KEY_PATTERN.test(presented)) {
      throw new AppError("validation_failed", "Idempotency-Key must be 1–255 printable ASCII characters.", {
        fields: { "Idempotency-Key": ["must be 1–255 printable ASCII characters"] },
      });
    }
    const tenantId = request.principal.tenantId;
    // Scoped to the caller as well as the tenant: one caller's key never replays another caller's answer. A
    // key has no spaces (KEY_PATTERN), so the first space of the stored key ends it.
    const key = `${presented} ${request.principal.subject}`;
    const fingerprint = requestFingerprint(request);
    const deadline = performance.now() + WAIT_FOR_FIRST_MS;

    for (;;) {
      const now = clock.now();
      const claimed = await repo.claim({
        tenant_id: tenantId,
        key,
        fingerprint,
        state: "pending",
        response_status: null,
        response_body: null,
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + PENDING_LEASE_MS).toISOString(),
      });
      if (claimed) {
        request.idempotencyClaim = { tenantId, key };
        return;
      }
      const existing = await repo.find(tenantId, key);
      if (!existing) continue;
      if (existing.expires_at <= now.toISOString()) {
        await repo.deleteExpired(tenantId, key, now.toISOString());
        continue;
      }
      if (existing.fingerprint !== fingerprint) {
        throw new AppError(
          "idempotency_key_reused",
          "This Idempotency-Key was already used for a different request; use a new key for a new request.",
        );
      }
      if (existing.state === "done" && existing.response_status !== null) {
        return replay(reply, existing.response_status, existing.response_body);
      }
      if (performance.now() >= deadline) {
        throw new AppError(
          "idempotency_in_progress",
          "A request with this Idempotency-Key is still being processed; retry shortly.",
        );
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };

  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const claim = request.idempotencyClaim;
    if (!claim) return payload;
    request.idempotencyClaim = undefined;
    // A failure to retry is not an answer to keep: the retry with the same key must be able to go through.
    if (reply.statusCode >= 500 || request.transientFailure) {
      await repo.release(claim.tenantId, claim.key);
      return payload;
    }
    const stored: StoredResponse = {
      contentType: (reply.getHeader("content-type") as string | undefined) ?? null,
      body:
        typeof payload === "string"
          ? payload
          : payload === null || payload === undefined
            ? ""
            : String(payload),
    };
    const expiresAt = new Date(clock.now().getTime() + deps.ttlHours * 3_600_000).toISOString();
    await repo.complete(claim.tenantId, claim.key, {
      status: reply.statusCode,
      body: JSON.stringify(stored),
      expiresAt,
    });
    return payload;
  };

  return { preHandler, onSend };
}

function replay(reply: FastifyReply, status: number, raw: string | null): FastifyReply {
  const stored = JSON.parse(raw ?? '{"contentType":null,"body":""}') as StoredResponse;
  reply.status(status).header("idempotent-replayed", "true");
  if (stored.contentType) reply.type(stored.contentType);
  return reply.send(stored.body === "" ? undefined : stored.body);
}

/** Same route, same path parameters, same body (canonical JSON) → same request. */
function requestFingerprint(request: FastifyRequest): string {
  return createHash("sha256")
    .update(`${request.method} ${request.routeOptions.url ?? ""}\n`)
    .update(canonicalJson(request.params))
    .update("\n")
    .update(canonicalJson(request.body ?? null))
    .digest("base64url");
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
