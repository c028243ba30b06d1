// Delivers queued webhooks per Standard Webhooks, fairly between tenants. A sender keeps up to `concurrency`
// attempts in flight: it claims due deliveries into its free slots under a lease (several processes never send
// the same attempt at once), and claims again the moment an attempt ends, so a slow receiver holds its own
// slot and never the others. The claim (store/webhook-repo.ts) gives a tenant at most `tenantConcurrency`
// attempts in flight over all processes and skips endpoints whose circuit is open: one tenant's hanging
// endpoints or backlog cannot hold back another tenant's deliveries. Each attempt is signed and POSTed with a
// connect timeout and a response timeout; 2xx ends it, anything else is retried on the back-off schedule until
// the last attempt fails it. The outcome and the endpoint's circuit breaker (failures in a row; open for a
// cool-down from the `breakerFailures`-th) are written in one transaction, held in the store so that every
// process sees the same circuit. The address is resolved and checked at every attempt, and the connection
// goes to that very address.
import { randomUUID } from "node:crypto";
import { lookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import { isIP, type LookupFunction } from "node:net";
import type { Logger } from "pino";
import { signWebhook } from "../client/verify-webhook.js";
import {
  blockedAddressReason,
  hostOf,
  nextAttemptAt,
  RETRY_DELAYS_MS,
  WEBHOOK_DEFAULTS,
  type WebhookLimits,
} from "../domain/webhooks.js";
import type { KeyProvider } from "../keys/key-provider.js";
import type { Clock } from "../lib/clock.js";
import type { Store } from "../store/db.js";
import type { AttemptOutcome, ClaimedDelivery, WebhookRepo } from "../store/webhook-repo.js";

export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface WebhookSenderDeps extends Partial<Omit<WebhookLimits, "endpointsPerTenant">> {
  store: Pick<Store, "transaction">;
  deliveries: Pick<
    WebhookRepo,
    "claimDue" | "finishAttempt" | "recordEndpointSuccess" | "recordEndpointFailure"
  >;
  keys: Pick<KeyProvider, "openWebhookSecret">;
  clock: Clock;
  retryDelaysMs?: readonly number[];
  /** Host name → addresses; the system resolver by default (tests map names to chosen addresses). */
  resolveHost?: (host: string) => Promise<ResolvedAddress[]>;
  logger?: Pick<Logger, "info" | "warn">;
}

/** What one attempt came to: a status code, or the class of error that stopped it. */
interface AttemptResult {
  statusCode: number | null;
  error: string | null;
  /** A refusal by policy, not a failure of the receiver: retrying cannot help. */
  permanent?: boolean;
}

const USER_AGENT = "cardvault-webhooks/1";

const systemResolve = async (host: string): Promise<ResolvedAddress[]> =>
  lookup(host, { all: true, verbatim: true });

export function createWebhookSender(deps: WebhookSenderDeps) {
  const timeoutMs = deps.timeoutMs ?? WEBHOOK_DEFAULTS.timeoutMs;
  const connectTimeoutMs = Math.min(deps.connectTimeoutMs ?? WEBHOOK_DEFAULTS.connectTimeoutMs, timeoutMs);
  const concurrency = deps.concurrency ?? WEBHOOK_DEFAULTS.concurrency;
  const tenantConcurrency = deps.tenantConcurrency ?? WEBHOOK_DEFAULTS.tenantConcurrency;
  const breakerFailures = deps.breakerFailures ?? WEBHOOK_DEFAULTS.breakerFailures;
  const breakerCooldownMs = deps.breakerCooldownMs ?? WEBHOOK_DEFAULTS.breakerCooldownMs;
  const delays = deps.retryDelaysMs ?? RETRY_DELAYS_MS;
  const resolveHost = deps.resolveHost ?? systemResolve;
  // One lease covers resolving plus the slowest attempt, with room to spare.
  const leaseMs = 2 * timeoutMs + 30_000;
  const inFlight = new Set<Promise<void>>();
  let claiming: Promise<number> | undefined;
  let claimAgain = false;
  let stopping = false;

  async function attempt(delivery: ClaimedDelivery): Promise<AttemptResult> {
    const url = new URL(delivery.url);
    const host = hostOf(url);
    let addresses: ResolvedAddress[];
    try {
      addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await resolveHost(host);
    } catch (error) {
      return { statusCode: null, error: `dns_error: ${errorCode(error)}` };
    }
    if (addresses.length === 0) return { statusCode: null, error: "dns_error: no address" };
    if (delivery.webhooks_allow_private !== 1) {
      // Every address is checked, not only the one used: a name must not half-point inside.
      for (const { address } of addresses) {
        const reason = blockedAddressReason(address);
        if (reason) {
          return {
            statusCode: null,
            error: `blocked_address: ${host} resolves to a ${reason} address, which this tenant may not use`,
            permanent: true,
          };
        }
      }
    }
    const secret = await deps.keys.openWebhookSecret(delivery.secret_sealed, {
      tenantId: delivery.tenant_id,
      endpointId: delivery.endpoint_id,
    });
    const timestamp = Math.floor(deps.clock.now().getTime() / 1000);
    const headers = {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(delivery.payload)),
      "user-agent": USER_AGENT,
      "webhook-id": delivery.event_id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signWebhook(
        { id: delivery.event_id, timestamp, payload: delivery.payload },
        secret,
      ),
    };
    return post(url, addresses[0]!, headers, delivery.payload, { connectTimeoutMs, timeoutMs });
  }

  async function deliver(delivery: ClaimedDelivery, token: string): Promise<void> {
    const startedAt = deps.clock.now();
    let result: AttemptResult;
    try {
      result = await attempt(delivery);
    } catch (error) {
      // Our side failed (e.g. a key is missing): recorded and retried like a receiver failure.
      result = { statusCode: null, error: `internal_error: ${errorCode(error)}` };
    }
    const attempts = delivery.attempts + 1;
    const ok = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
    const next = ok || result.permanent ? null : nextAttemptAt(attempts, startedAt, delays);
    const now = deps.clock.now();
    const outcome: AttemptOutcome = {
      status: ok ? "succeeded" : next ? "pending" : "failed",
      attempts,
      next_attempt_at: next?.toISOString() ?? null,
      last_attempt_at: startedAt.toISOString(),
      last_status_code: result.statusCode,
      last_error: ok ? null : result.error,
      updated_at: now.toISOString(),
    };
    const failuresInRow = await deps.store.transaction(async (tx) => {
      // A lease lost meanwhile (expired and claimed again, or the endpoint deleted) records nothing.
      if (!(await deps.deliveries.finishAttempt(delivery.id, token, outcome, tx))) return undefined;
      if (ok) return deps.deliveries.recordEndpointSuccess(delivery.endpoint_id, tx).then(() => 0);
      // A refusal by policy says nothing about the receiver: the breaker counts receivers' failures.
      if (result.permanent) return undefined;
      return deps.deliveries.recordEndpointFailure(
        { id: delivery.endpoint_id, tenantId: delivery.tenant_id },
        {
          breakerFailures,
          now: now.toISOString(),
          openUntil: new Date(now.getTime() + breakerCooldownMs).toISOString(),
        },
        tx,
      );
    });
    // No URL (it may hold the receiver's own token), no payload, no secret.
    deps.logger?.info(
      {
        deliveryId: delivery.id,
        endpointId: delivery.endpoint_id,
        eventId: delivery.event_id,
        attempt: attempts,
        statusCode: result.statusCode,
        error: outcome.last_error,
        status: outcome.status,
      },
      "webhook attempt",
    );
    if (failuresInRow !== undefined && failuresInRow >= breakerFailures) {
      deps.logger?.warn(
        {
          endpointId: delivery.endpoint_id,
          tenantId: delivery.tenant_id,
          failuresInRow,
          cooldownMs: breakerCooldownMs,
        },
        "webhook endpoint circuit open: not tried until its cool-down is over",
      );
    }
  }

  /** Runs an attempt in a slot; when it ends, the slot is filled again at once. */
  function occupySlot(attempt: Promise<void>): void {
    const slot: Promise<void> = attempt
      .catch((error: unknown) =>
        // Our store failed: the lease runs out and the attempt is made again.
        deps.logger?.warn({ err: errorCode(error) }, "webhook attempt not recorded"),
      )
      .finally(() => {
        inFlight.delete(slot);
        if (stopping) return;
        fill().catch((error: unknown) =>
          deps.logger?.warn({ err: errorCode(error) }, "webhook claim failed; retried on the next pass"),
        );
      });
    inFlight.add(slot);
  }

  /** Claims due deliveries into the free slots and starts them; claims again when a slot freed meanwhile. */
  async function claimIntoFreeSlots(): Promise<number> {
    let started = 0;
    do {
      claimAgain = false;
      const free = concurrency - inFlight.size;
      if (stopping || free <= 0) break;
      const now = deps.clock.now();
      const token = randomUUID();
      const claimed = await deps.deliveries.claimDue({
        now: now.toISOString(),
        leaseUntil: new Date(now.getTime() + leaseMs).toISOString(),
        token,
        limit: free,
        tenantShare: tenantConcurrency,
        breakerFailures,
      });
      for (const delivery of claimed) occupySlot(deliver(delivery, token));
      started += claimed.length;
    } while (claimAgain);
    return started;
  }

  /** One claimer per sender: a fill asked for while one runs makes that one claim again. */
  function fill(): Promise<number> {
    if (claiming) {
      claimAgain = true;
      return claiming.then(() => 0);
    }
    claiming = claimIntoFreeSlots().finally(() => {
      claiming = undefined;
    });
    return claiming;
  }

  /** Resolves once no attempt is in flight and no claim is running. */
  async function idle(): Promise<void> {
    while (claiming || inFlight.size > 0) await Promise.allSettled([claiming, ...inFlight]);
  }

  return {
    name: "webhook-sender",

    /**
     * Starts attempts for the deliveries due now, as many as there are free slots, and returns how many it
     * started without waiting for them: an attempt's end fills its slot again, and the next pass picks up what
     * fell due meanwhile, so neither waits on a slow receiver.
     */
    runOnce(): Promise<number> {
      return fill();
    },

    /** Waits until nothing is in flight: what was due is sent, and what its ends made due too. */
    idle,

    /** Starts nothing new and waits for the attempts in flight; unfinished claims expire with their lease. */
    async stop(): Promise<void> {
      stopping = true;
      await idle();
    },
  };
}

export type WebhookSender = ReturnType<typeof createWebhookSender>;

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && /^[A-Za-z0-9_]{1,40}$/.test(code)) return code;
  return error instanceof Error ? error.name : "unknown";
}

/** Status text as a receiver sent it, printable and short: it is a hint for people, never a body. */
function shortText(text: string | undefined): string {
  return (text ?? "").replace(/[^\x20-\x7e]/g, "").slice(0, 40);
}

/**
 * One POST to the address already checked (the lookup is pinned to it). The connection must be ready (TCP, and
 * TLS for https) within the connect timeout, so an address that never completes a handshake costs that much,
 * not the response timeout; the response headers must come within the response timeout of the start.
 */
function post(
  url: URL,
  pinned: ResolvedAddress,
  headers: Record<string, string>,
  body: string,
  limits: { connectTimeoutMs: number; timeoutMs: number },
): Promise<AttemptResult> {
  const pinnedLookup: LookupFunction = (_host, options, callback) => {
    if (options.all) callback(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  };
  return new Promise((resolve) => {
    let gaveUp: string | undefined;
    const request = (url.protocol === "https:" ? https : http).request(
      url,
      { method: "POST", headers, agent: false, lookup: pinnedLookup },
      (response) => {
        clearTimers();
        const statusCode = response.statusCode ?? 0;
        // The body is never read: it could echo what we sent, and we have no use for it.
        response.destroy();
        const ok = statusCode >= 200 && statusCode < 300;
        resolve({
          statusCode,
          error: ok ? null : `http_${statusCode} ${shortText(response.statusMessage)}`.trim(),
        });
      },
    );
    const giveUp = (reason: string) => () => {
      gaveUp = reason;
      request.destroy();
    };
    const connectTimer = setTimeout(
      giveUp(`connect_timeout: no connection within ${limits.connectTimeoutMs} ms`),
      limits.connectTimeoutMs,
    );
    const responseTimer = setTimeout(
      giveUp(`timeout: no response within ${limits.timeoutMs} ms`),
      limits.timeoutMs,
    );
    const clearTimers = () => {
      clearTimeout(connectTimer);
      clearTimeout(responseTimer);
    };
    request.once("socket", (socket) => {
      socket.once(url.protocol === "https:" ? "secureConnect" : "connect", () => clearTimeout(connectTimer));
    });
    request.on("error", (error) => {
      clearTimers();
      resolve({ statusCode: null, error: gaveUp ?? `network_error: ${errorCode(error)}` });
    });
    request.end(body);
  });
}
